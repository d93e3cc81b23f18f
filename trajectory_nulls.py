"""Null bands for every trajectory statistic a claim reads: the run against a matched random walk (N1), its own
updates with random signs (N2) and in random order (N3), all from the cached Gram matrices (issue 9).

Examples:
    python trajectory_nulls.py runs/cpu_s42                        # 200 draws per null -> analysis/nulls.json
    python trajectory_nulls.py runs/cpu_s42 --draws 500 --seed 1 --workers 2
    python trajectory_nulls.py runs/tiny_s1 --draws 20 --no-figures
    python trajectory_nulls.py runs/ctrl_s42 --controls     # Table 4-5 windows -> runs/ctrl_s42/analysis/nulls.json
    python trajectory_nulls.py runs/beta2_s42 --beta2       # C14, C17-C19 -> runs/beta2_s42/analysis/nulls.json

Needs analysis/trajectory_pca.json (run `python trajectory_pca_uncentered.py RUN` first): its steps, window and
split are reused so the observed values equal the ones reported, and its Gram cache means no checkpoint is read.
Writes analysis/nulls.json = {"results": {"nulls", "level", "key_null", "rule", "dims", "steps", "window",
"statistics": {name: {"observed", "N1": {"median", "lo", "hi", "n"}, "N2": .., "N3": ..}}, "spectra": {same, per
component}, "draws": {null: {name: [value per draw]}}}} and figures/nulls_spectrum.pdf|png.
--controls and --beta2 write their own layouts (controls_main, beta2_main; drift/nulls/beta2.py states the beta2
rule).
"""
import sys
from pathlib import Path

from drift import cli
from drift.analysis.backbone import prepare
from drift.run import checkpoint as ck
from drift.run import provenance
from drift.run.checkpoint import RunError
from drift.config import ConfigError
from drift.nulls.beta2 import beta2_nulls
from drift.nulls.trajectory import NULLS, control_window_nulls, null_statistics
from drift.run.info import add_check_args, checked_run, figures_dir, read_analysis, run_block, write_analysis
from drift.run.kinds import require_kind

PROG = "trajectory_nulls.py"
HEADLINE = ("trunk_pc1_raw", "trunk_pc1_rownorm", "trunk_pc2_rownorm", "blocks_pc1_raw_min",
            "blocks_adjacent_cos_min", "trunk_f_b_final", "rho_min", "phase_abs_cos", "handoff_margin",
            "update_block0_mean_abs_cos")


def summary_lines(res: dict) -> list[str]:
    lines = [f"{'statistic':<28} {'observed':>9}  " + "  ".join(f"{k + ' median [lo, hi]':>27}" for k in res["nulls"])]
    for key in HEADLINE:
        e = res["statistics"].get(key)
        if e is None:
            continue
        cells = "  ".join(f"{e[k]['median']:>9.4f} [{e[k]['lo']:.4f}, {e[k]['hi']:.4f}]" for k in res["nulls"])
        lines.append(f"{key:<28} {e['observed']:>9.4f}  {cells}")
    return lines


# The mode of this script that takes each kind of directory (drift/run/kinds.py).
FLAGS = {"main": f"{PROG} RUN (no --controls or --beta2)", "controls": "--controls", "beta2": "--beta2"}


def controls_main(args) -> int:
    """<controls>/analysis/nulls.json: {"nulls", "level", "key_null", "rows": {run: {window: {"window_steps",
    "statistics": {"pc1" | "k95": {"observed", "N1", "N2", "N3"}}}}}} (window "standard" = Table 4's)."""
    try:
        require_kind(args.run_dir, "controls", "--controls", FLAGS)  # before anything is computed or written
        res = control_window_nulls(args.run_dir, args.draws, args.seed, args.nulls, log=print)
        path = write_analysis(args.run_dir, "nulls", res, {"draws": args.draws, "seed": args.seed,
                                                           "nulls": args.nulls})
    except (RunError, ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    for run, windows in res["rows"].items():
        for label, w in windows.items() if "note" not in windows else []:
            e = (w.get("statistics") or {}).get("pc1")
            if e:
                print(f"{run} {label}: PC1 {e['observed']:.1f}%, N1 [{e['N1']['lo']:.1f}, {e['N1']['hi']:.1f}]")
    print(f"wrote {path}")
    return 0


def beta2_main(args) -> int:
    """<beta2>/analysis/nulls.json: {"nulls", "level", "key_null", "rule", "statistics": {name: claim},
    "common_last_step", "groups": {p_probe: [runs by decreasing beta2]}, "set_aside": [runs], "runs": {run: {"beta2",
    "p_probe", "dim", "lag", "spans", "statistics": {name: {"observed", "N1", "N2", "N3"}}, "draws": {null: {name:
    [value per draw]}}}}, "trends": {p_probe: {name: {"claim", "high", "low", "beta2", "observed", "N1", ..}}}}."""
    try:
        require_kind(args.run_dir, "beta2", "--beta2", FLAGS)
        res = beta2_nulls(args.run_dir, args.draws, args.seed, args.nulls, args.allow_missing, args.allow_running,
                          log=print)
        path = write_analysis(args.run_dir, "nulls", res, {"draws": args.draws, "seed": args.seed,
                                                           "nulls": args.nulls},
                              run={n: run_block(Path(args.run_dir) / n) for n in res["runs"]})
    except (RunError, ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    for group, trends in res["trends"].items():
        for stat, e in trends.items():
            if "note" not in e:
                print(f"p_probe {group} {stat} ({e['claim']}): net fall {e['high']} -> {e['low']} "
                      f"{e['observed']:.4g}, N1 [{e['N1']['lo']:.4g}, {e['N1']['hi']:.4g}]")
    print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    p = cli.parser(PROG, __doc__)
    p.add_argument("run_dir", type=cli.path("a run directory"),
                   help="run directory with analysis/trajectory_pca.json (with --controls / --beta2: the control or "
                        "beta2-sweep directory)")
    p.add_argument("--draws", type=cli.DRAWS, default=200, help="draws per null (default 200; at least 20)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="base seed of the draws (default 0)")
    p.add_argument("--nulls", nargs="+", default=list(NULLS), choices=NULLS, help="which nulls (default all)")
    p.add_argument("--workers", type=cli.WORKERS, default=1, help="processes sharing the draws (results do not change)")
    p.add_argument("--no-figures", action="store_true", help="write the JSON only")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--controls", action="store_true",
                      help="run_dir is an optimizer-control directory: bands of its Table 4-5 windows instead")
    kind.add_argument("--beta2", action="store_true",
                      help="run_dir is a beta2-sweep directory: bands of the statistics of C14 and C17-C19 instead")
    add_check_args(p)
    args = cli.parse(p, argv)
    if args.controls:
        return controls_main(args)
    if args.beta2:
        return beta2_main(args)
    try:
        run = checked_run(args.run_dir, args)  # a running or holed run is refused, as in every analysis
        traj = read_analysis(run.run_dir, "trajectory_pca", "trajectory_pca_uncentered.py")
        traj_digest = provenance.analysis_digest(run.run_dir / "analysis" / "trajectory_pca.json")
        prm, inp = traj["params"], traj["inputs"]
        # read back from a file and fed into the computation: checked as the options that produced them were
        ref, steps, split, stride, window = (ck.field(prm, "ref_step", "int", at_least=0),
                                             ck.field(inp, "steps", "ints", at_least=0),
                                             ck.field(prm, "split_step", "int", at_least=0),
                                             ck.field(prm, "stride", "int", at_least=1),
                                             ck.field(prm, "window", "int", at_least=2))
        su = prepare(run, ref, steps, split, stride, progress=False)
        res = null_statistics(su, args.draws, args.seed, window, args.nulls, args.workers,
                              log=lambda m: print(m, flush=True))
        path = write_analysis(run.run_dir, "nulls", res, {"draws": args.draws, "seed": args.seed,
                                                          "nulls": args.nulls, "window": prm["window"]},
                              {"trajectory_pca": prm, "steps": inp["steps"]},
                              provenance=provenance.record(run.run_dir, inp["steps"], run.steps, {
                                  "analysis/trajectory_pca.json": traj_digest}))
        if not args.no_figures:
            from drift.report.figures import figure_null_spectrum
            from drift.report.plotting import save_figure
            save_figure(figure_null_spectrum([res]), figures_dir(run.run_dir) / "nulls_spectrum")
    except (RunError, ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(res)))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
