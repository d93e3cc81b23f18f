"""Eval-set size on a real run: score every checkpoint on fresh OOD eval sets of several sizes and count the p_ood
drops each size calls significant (the probe study's rule). Writes a table, JSON and a figure.

    python -m experiments.eval_size runs/cpu_s42                         # sizes 256 1024 4096
    python -m experiments.eval_size runs/cpu_s42 --sizes 256 512 1024 2048 4096

The run needs its checkpoints (a main run of the cpu preset has 51). About 8 minutes for the cpu preset's 51
checkpoints at the default sizes on 2 cores. Output: experiments/results/eval_size_<run>.{md,json,pdf,png}.
"""
import sys
from pathlib import Path

from drift import cli
from drift.run import checkpoint as ck
from drift.studies import eval_size as es
from drift.report import plotting as pl


def main(argv=None) -> int:
    parser = cli.parser("eval_size", __doc__)
    parser.add_argument("run", type=cli.path("a run directory"), help="a finished run directory with its checkpoints")
    parser.add_argument("--sizes", nargs="+", type=cli.whole(1, 1_000_000, "an eval-set size, e.g. 1024"),
                        default=[256, 1024, 4096],
                        help="eval-set sizes; the largest is the reference curve (default 256 1024 4096)")
    parser.add_argument("--out", type=cli.path("a directory"), default="experiments/results", help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = cli.parse(parser, argv)
    args.run, args.out = Path(args.run), Path(args.out)
    if len(set(args.sizes)) < 2 or min(args.sizes) < 1:
        parser.error("--sizes needs at least two distinct positive sizes (the largest is the reference)")
    try:
        summary = es.summarize_sizes(es.score_sizes(args.run, args.sizes, progress=not args.no_progress))
    except (ck.RunError, FileNotFoundError) as e:
        print(f"eval_size: error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"eval_size_{args.run.name}"
    ck.atomic_write_json(summary, stem.with_suffix(".json"))
    ck.atomic_write_text(es.table_markdown(summary), stem.with_suffix(".md"))
    pl.save_figure(es.fig_eval_sizes(summary), stem)
    print(es.table_markdown(summary), end="")
    print(f"wrote {stem}.md, .json, .pdf, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
