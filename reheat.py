"""Reheating (PROTOCOL E4, A14): from a main run's late low-p_ood checkpoint, a fresh optimizer (same kind, betas and weight
decay), lambda = 4 throughout, warmup 200 then cosine to the 10% floor over 2000 steps (scaled by main-run length /
10,000: cpu 20 and 200), an eval and a checkpoint every 100 (cpu: 10). Per peak LR: peak p_ood and its step, the
first step with p_ood >= 0.60, p_ood at the end, the start p_ood; and a(t), ||r(t)|| of every reheating checkpoint
against the main run's step-1 reference and its trunk backbone v_b.

Start (--from): auto (default) is the last checkpoint when its p_ood <= 0.35, else the checkpoint with the lowest
p_ood after the run's p_ood peak (C20 is about re-entry from the late low-p_ood state); "last" or a step number
force one. The choice and its reason are recorded in reheat.json.

Writes <run>/reheat/lr<value>/ runs, <run>/analysis/reheat.json and .csv, <run>/figures/reheat.{pdf,png}.

Examples:
    python reheat.py runs/cpu_s42 --lrs 1e-3 6e-4 3e-4
    python reheat.py runs/paper_s42 --lrs 1e-3 6e-4 3e-4
    python reheat.py runs/cpu_s42 --lrs 6e-4 --analyze-only
    python reheat.py runs/cpu_s42 --lrs 6e-4 --train-only          # one run, no table (parallel make jobs)
    torchrun --standalone --nproc_per_node=2 reheat.py runs/paper_s42   # 2 GPUs per run
"""
import sys
from pathlib import Path

from drift import cli
from drift.run import checkpoint as ck
from drift.run import provenance
from drift.train import distributed as dist
from drift.report import plotting as pl
from drift.report.figures import figure_reheat
from drift.config import ConfigError
from drift.train.control_runs import RERUN_HINT, ensure_run, reheat_config, reheat_run_name
from drift.analysis.reheat import check_reheat_start, reheat_start, reheat_table
from drift.analysis.table_csv import flat_row, write_csv
from drift.run.info import add_check_args, analysis_dir, checked_run, figures_dir, write_analysis
from drift.run.kinds import require_kind

COLUMNS = ["lr", "name", "status", "start_p_ood", "step1", "peak", "peak_step", "first_above", "end", "end_step",
           "a_start", "a_end", "r_start", "r_end", "wall_s", "paper_peak", "paper_peak_step", "paper_first_060",
           "paper_end"]


PROG = "reheat.py"


def main(argv=None) -> int:
    parser = cli.parser(PROG, __doc__)
    parser.add_argument("run", type=cli.path("a run directory"), help="the main run directory")
    parser.add_argument("--from", dest="start", default="auto",
                        type=cli.matching(r"auto|last|\d+", "auto, last or a checkpoint step", "e.g. 4000"),
                        help="start checkpoint: auto (default, see above), last, or a step")
    parser.add_argument("--lrs", nargs="+", type=cli.number(0, None, "a peak learning rate, e.g. 6e-4", lo_open=True),
                        default=[1e-3, 6e-4, 3e-4], help="peak learning rates")
    parser.add_argument("--threshold", type=cli.number(0, 1, "a p_ood level, e.g. 0.6"), default=0.60,
                        help="re-entry threshold on p_ood (default 0.60)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--analyze-only", action="store_true", help="no training; tabulate existing reheat runs")
    only.add_argument("--train-only", action="store_true", help="train (or resume) the runs and stop; no table")
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    add_check_args(parser)
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides for the reheat runs (anywhere on the line)")
    args = cli.parse(parser, argv)
    main_dir = Path(args.run)
    try:
        require_kind(main_dir, "main", "reheat.py")  # before anything is trained into it
        main_run = checked_run(main_dir, args)
        start, reason = reheat_start(main_run, args.start)
        init = str(ck.ckpt_path(main_dir, start))
        if dist.is_main():
            print(f"reheat.py: starting from {reason}")
        dirs = {lr: main_dir / "reheat" / reheat_run_name(lr) for lr in args.lrs}
        for d in dirs.values():
            check_reheat_start(d, init)
        configs = {} if args.analyze_only else {lr: reheat_config(main_run.config, lr, args.overrides) for lr in dirs}
        for lr, cfg in configs.items():  # every config is checked before the first run trains
            res = ensure_run(cfg, dirs[lr], init_from=init, progress=not args.no_progress,
                             argv=sys.argv if argv is None else argv, kind="reheat")
            if dist.is_main():
                print(f"{PROG}: lr {lr:g}: {res['action']}, {res['status']}, loop time {res['wall_s'] or 0:.0f} s")
        if args.train_only or not dist.is_main():  # the table is written once, by rank 0
            return 0
        results = reheat_table(main_dir, dirs, args.threshold, start, reason)
    except (ConfigError, ck.RunError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    path = write_analysis(main_dir, "reheat", results,
                          params={"lrs": args.lrs, "threshold": args.threshold, "init_from": init,
                                  "start": args.start},
                          inputs={str(k): str(v) for k, v in dirs.items()}, steps=main_run.steps,
                          provenance=provenance.record(main_dir, main_run.steps, main_run.steps, {
                              "analysis/directions.pt": results["backbone"]["digest"]}, runs=dirs.values()))
    rows = []
    for r in results["rows"]:
        k = r["coords"]
        rows.append({**flat_row(r), "start_p_ood": results["start_p_ood"], "a_start": k["a"][0], "a_end": k["a"][-1],
                     "r_start": k["residual_norm"][0], "r_end": k["residual_norm"][-1]})
        print(f"lr {r['lr']:g}: start {results['start_p_ood'] or 0:.3f} peak {r['peak'] or 0:.3f} @ {r['peak_step']}, "
              f"first >= {args.threshold} at {r['first_above']}, end {r['end'] or 0:.3f}; a {k['a'][0]:.3g} -> "
              f"{k['a'][-1]:.3g}, ||r|| {k['residual_norm'][0]:.3g} -> {k['residual_norm'][-1]:.3g}")
    write_csv(analysis_dir(main_dir) / "reheat.csv", rows, COLUMNS)
    if not args.no_figure:
        pl.save_figure(figure_reheat([results], [Path(main_dir).name], [main_run.switch_step]),
                       figures_dir(main_dir) / "reheat")
    print(f"reheat.py: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG, RERUN_HINT))
