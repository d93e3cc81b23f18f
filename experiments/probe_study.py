"""Probe-scaling study: train the configs of drift/studies/probe_study.py (one run at a time, resumable) and write the
table and the figure of p_in / p_ood against probe sequences seen, with the paper's seed-42 points overlaid.

    python -m experiments.probe_study --list                          # the grid, what each config varies
    python -m experiments.probe_study --run p20_T2500_w150 --seeds 42 271
    python -m experiments.probe_study --run all                       # everything not finished yet
    python -m experiments.probe_study --summarize                     # table + figure from what exists
    python -m experiments.probe_study --summarize --adopt runs/cpu_s271   # a cpu-preset main run counts as its config's

Runs go to runs/probe_study/<config>_s<seed> (not committed); the table (markdown + JSON) and the figure go to
experiments/results/ (committed). Killing it loses at most the steps since the run's last resume state.
The table is cumulative: --summarize keeps every row of the committed JSON whose run is no longer on disk (each row
carries its probe curves), so a study spread over machines whose runs/ does not survive loses nothing.
"""
import sys
from pathlib import Path

from drift import cli
from drift.run import checkpoint as ck
from drift.report import plotting as pl
from drift.studies import probe_study as ps
from drift.config import ConfigError


def main(argv=None) -> int:
    parser = cli.parser("probe_study", __doc__)
    parser.add_argument("--root", type=cli.path("a directory"), default="runs/probe_study",
                        help="where the study runs live")
    parser.add_argument("--out", type=cli.path("a directory"), default="experiments/results",
                        help="table and figure directory")
    parser.add_argument("--list", action="store_true", help="print the grid and exit")
    parser.add_argument("--run", nargs="+", metavar="CONFIG", choices=["all", *(spec.name for spec in ps.STUDY)],
                        help="configs to train ('all' for the whole grid)")
    parser.add_argument("--seeds", nargs="+", type=cli.SEED, default=list(ps.SEEDS), help="seeds (default 42 271)")
    parser.add_argument("--summarize", action="store_true", help="write the table and the figure")
    parser.add_argument("--adopt", nargs="+", type=cli.path("a run directory"), default=[], metavar="RUN",
                        help="runs trained elsewhere (e.g. cpu-preset main runs) that train a study config exactly; "
                             "the table counts each as that config's run for its seed")
    parser.add_argument("--threads", type=cli.whole(1, 1024, "a thread count, e.g. 2"), default=None,
                        help="torch threads per run (default: the config's, 1, so a study can share the machine; "
                             "2 on an otherwise idle 2-core machine is about 1.8x faster)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = cli.parse(parser, argv)
    args.root, args.out, args.adopt = Path(args.root), Path(args.out), [Path(a) for a in args.adopt]
    if not (args.list or args.run or args.summarize):
        parser.error("nothing to do: pass --list, --run CONFIG... or --summarize")
    if args.list:
        for spec in ps.STUDY:
            print(f"{spec.name:18s} {spec.why:45s} {spec.base}: {' '.join(spec.overrides)}")
    try:
        specs = ps.STUDY if args.run == ["all"] else [ps.find(n) for n in args.run or []]
        for spec in specs:
            for seed in args.seeds:
                run_dir = ps.train_one(spec, seed, args.root, progress=not args.no_progress,
                                       threads=args.threads)
                print(f"{run_dir}: {ck.read_json(run_dir / 'run.json')['status']}", flush=True)
                if args.summarize:
                    write_results(args.root, args.out, args.adopt)
        if args.summarize and not specs:  # after a training, the loop above has just written them
            write_results(args.root, args.out, args.adopt)
    except (KeyError, ValueError, ConfigError, ck.RunError) as e:
        print(f"probe_study: error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    return 0


def write_results(root: Path, out: Path, adopt=()) -> None:
    recorded = ck.read_json(out / "probe_study.json")["runs"] if (out / "probe_study.json").exists() else []
    rows = ps.merge_recorded(ps.summarize(root, adopted=adopt), recorded)
    if not rows:
        print(f"probe_study: no study runs under {root} yet", file=sys.stderr)
        return
    out.mkdir(parents=True, exist_ok=True)
    ck.atomic_write_json({"runs": rows, "verdicts": ps.config_verdicts(rows)}, out / "probe_study.json")
    (out / "probe_study.md").write_text(ps.table_markdown(rows))
    paths = pl.save_figure(ps.fig_probe_study(rows), out / "probe_study")
    print(f"wrote {out / 'probe_study.md'}, {out / 'probe_study.json'}, {', '.join(map(str, paths))}")


if __name__ == "__main__":
    sys.exit(main())
