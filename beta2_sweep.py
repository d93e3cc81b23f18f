"""beta2 sweep (PROTOCOL E3, A13): run A's config (AdamW, the control schedule with 52 dense checkpoints) with
beta2 changed, then per run the trunk geometry: row-normalized PC1/PC2 (full denominator) and raw PC1 of the drifts
theta_s - theta_1 for s >= the first regular checkpoint, drift ||theta_last - theta_1||, best p_ood, the update
alignment (mean and early, s <= half the run), the gamma fits of |a| and ||r|| on (0, T/2], (T/2, T], (0, T], the
corr(p_ood, ||r||) on the same windows, and the [600, 2000]-window variant of section 4.7. A run that diverges is
kept as a row marked "diverged at step s" with whatever was measured. Finished runs are skipped, so the sweep can be
re-run to add p_probe variants; the table covers every run under --out.

Writes <out>/b<beta2>[_p<p_probe>]/ runs, <out>/analysis/beta2_sweep.json and .csv, <out>/figures/beta2_sweep.*.

Examples:
    python beta2_sweep.py --preset cpu --seed 42 --out runs/beta2_s42
    python beta2_sweep.py --preset cpu --seed 42 --out runs/beta2_s42 --beta2 0.95 0.0 --p-probe 0.20
    python beta2_sweep.py --out runs/beta2_s42 --analyze-only
    python beta2_sweep.py --preset cpu --seed 42 --out runs/beta2_s42 --beta2 0.8 --train-only   # one run (make -j)
    python beta2_sweep.py --preset cpu --seed 42 --out runs/beta2_s42 --reuse runs/ctrl_s42/A  # b0.95 = run A: copied
    torchrun --standalone --nproc_per_node=2 beta2_sweep.py --preset paper --out runs/beta2_s42   # 2 GPUs per run
"""
import sys
from pathlib import Path

from drift import cli
from drift.train import distributed as dist
from drift.report import plotting as pl
from drift.report.figures import figure_beta2
from drift.run.checkpoint import RunError, list_steps
from drift.config import ConfigError, resolve
from drift.train.control_runs import RERUN_HINT, beta2_config, beta2_run_name, ensure_run, reuse_finished
from drift.analysis.beta2 import beta2_table
from drift.analysis.table_csv import flat_row, write_csv
from drift.run.info import add_check_args, analysis_dir, figures_dir, run_block, write_analysis

COLUMNS = ["name", "beta2", "p_probe", "status", "marker", "final_val", "best_p_ood", "pc1", "pc2", "raw_pc1",
           "drift", "pc1_common", "drift_common", "common_last_step", "mean_abs_cos", "early_abs_cos",
           "early_corr", "window_pc1", "window_abs_cos", "wall_s", "note",
           "paper_pc1", "paper_raw_pc1", "paper_drift", "paper_best_p_ood", "paper_mean_abs_cos",
           "paper_early_abs_cos", "paper_early_corr", "paper_window_pc1", "paper_window_abs_cos"]


PROG = "beta2_sweep.py"


def run_sweep(args, argv) -> None:
    """Train (or resume, or skip) every run; every run's config is checked before the first one trains."""
    default_p = resolve(args.preset, args.seed).train.p_probe
    configs = {Path(args.out) / beta2_run_name(beta2, args.p_probe, default_p):
               beta2_config(args.preset, args.seed, beta2, args.p_probe, args.overrides) for beta2 in args.beta2}
    for run_dir, cfg in configs.items():
        copied = None
        if args.reuse and not (run_dir / "run.json").exists():
            why_not = dist.on_main(reuse_finished, args.reuse, cfg, run_dir, "beta2", argv)
            if why_not is None:
                copied = f"copied from {args.reuse}, which trained this config"
            elif dist.is_main():
                print(f"beta2_sweep.py: {run_dir.name}: not copied from --reuse: {why_not}")
        res = ensure_run(cfg, run_dir, progress=not args.no_progress, argv=argv, kind="beta2")
        extra = f" at step {res['diverged_step']}" if res["status"] == "diverged" else ""
        if dist.is_main():
            print(f"beta2_sweep.py: {run_dir.name}: {copied or res['action']}, {res['status']}{extra}, "
                  f"loop time {res['wall_s'] or 0:.0f} s")


def main(argv=None) -> int:
    parser = cli.parser(PROG, __doc__)
    cli.add_config_args(parser)
    parser.add_argument("--out", type=cli.path("a directory"), help="sweep directory (default: runs/beta2_s<seed>)")
    parser.add_argument("--beta2", nargs="+", type=cli.number(0, 1, "Adam's beta2, e.g. 0.95", hi_open=True),
                        default=[0.99, 0.95, 0.90, 0.80, 0.0], help="beta2 of each run (default: 0.99 0.95 0.9 0.8 0)")
    parser.add_argument("--p-probe", type=cli.number(0, 1, "a probability, e.g. 0.2"), default=None,
                        help="probe rate of the sweep runs (default: the preset's p_probe: 0.10 for paper, 0.20 for "
                             "cpu; the paper's sweep probably used 0.20)")
    parser.add_argument("--reuse", type=cli.path("a run directory"), metavar="RUN",
                        help="a finished run to copy instead of training a sweep run whose config it trained exactly "
                             "(the same seed's control run A is the sweep's run at A's beta2); runs of any other "
                             "config train as usual")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--analyze-only", action="store_true", help="no training; tabulate the runs under --out")
    only.add_argument("--train-only", action="store_true",
                      help="train (or resume) the runs and stop; no table (parallel jobs, then --analyze-only)")
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    add_check_args(parser)
    args = cli.parse(parser, argv)
    args.seed = 42 if args.seed is None else args.seed
    args.out = args.out or f"runs/beta2_s{args.seed}"
    try:
        if not args.analyze_only:
            run_sweep(args, sys.argv if argv is None else argv)
        if args.train_only or not dist.is_main():  # the table is written once, by rank 0
            return 0
        results = beta2_table(args.out, args.allow_missing, args.allow_running)
    except (ConfigError, RunError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    path = write_analysis(args.out, "beta2_sweep", results, params={"scope": "trunk", "ref_step": 1},
                          inputs={r["name"]: r["run_dir"] for r in results["rows"]},
                          run={r["name"]: run_block(r["run_dir"], list_steps(r["run_dir"])) for r in results["rows"]})
    write_csv(analysis_dir(args.out) / "beta2_sweep.csv", [flat_row(r) for r in results["rows"]], COLUMNS)
    if not args.no_figure:
        pl.save_figure(figure_beta2(results), figures_dir(args.out) / "beta2_sweep")
    for r in results["rows"]:
        pc = "n/a" if r.get("pc1") is None else f"PC1 {r['pc1']:.1f}% raw {r['raw_pc1']:.1f}% drift {r['drift']:.3g}"
        if r.get("pc1_common") is not None:
            pc += f" | to step {r['common_last_step']}: PC1 {r['pc1_common']:.1f}%"
        best = float("nan") if r["best_p_ood"] is None else r["best_p_ood"]
        print(f"{r['name']:12s} best p_ood {best:.3f} {pc} {r['marker']} {r.get('note') or ''}")
    print(f"beta2_sweep.py: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG, RERUN_HINT))
