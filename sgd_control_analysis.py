"""Table 4 (PROTOCOL A12): per optimizer control, the final val loss, best p_ood, and the trunk geometry of the
standard window (paper: checkpoints 600..2000 every 50, anchored at 600; cpu: 60..200 every 5): row-normalized
PC1 % (full and top-10 denominators), k95, k99 and drift ||theta_end - theta_anchor||. Extras: the update
alignment cos(theta_t - theta_{t-200}, window PC1) at t = 1000, 1600, 2200, 3000, 3800 (scaled) and the
within-window rolling PC1 (sub-window 5). A diverged or early-stopped run is a marked row. Runs whose model or data
differ are refused.

Writes <root>/analysis/sgd_control.json and .csv, and <root>/figures/sgd_control.{pdf,png}.

Examples:
    python sgd_control_analysis.py runs/ctrl_s42
    python sgd_control_analysis.py runs/ctrl_s42 --no-figure
"""
import sys
from pathlib import Path

from drift import cli
from drift.report import plotting as pl
from drift.report.figures import figure_sgd_control
from drift.run.checkpoint import RunError, list_steps
from drift.config import ConfigError
from drift.analysis.controls import control_table
from drift.analysis.table_csv import flat_row, write_csv
from drift.run.info import add_check_args, analysis_dir, figures_dir, run_block, write_analysis

COLUMNS = ["run", "optimizer", "status", "marker", "final_step", "final_val", "best_p_ood", "best_p_ood_step",
           "pc1", "pc1_top10", "k95", "k99", "drift", "wall_s", "paper_final_val", "paper_best_p_ood", "paper_pc1",
           "paper_k95", "paper_drift"]


PROG = "sgd_control_analysis.py"


def main(argv=None) -> int:
    parser = cli.parser(PROG, __doc__)
    parser.add_argument("root", type=cli.path("a directory"),
                        help="directory holding the control runs A, B, C, C_prime")
    parser.add_argument("--no-figure", action="store_true", help="skip the figure")
    add_check_args(parser)
    args = cli.parse(parser, argv)
    try:
        results = control_table(args.root, args.allow_missing, args.allow_running)
    except (ConfigError, RunError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    root = Path(args.root)
    path = write_analysis(root, "sgd_control", results, params={"window": "first dense_ckpt window",
                                                                "row_normalized": True, "scope": "trunk"},
                          inputs={r["run"]: r["run_dir"] for r in results["rows"]},
                          run={r["run"]: run_block(r["run_dir"], list_steps(r["run_dir"])) for r in results["rows"]})
    write_csv(analysis_dir(root) / "sgd_control.csv", [flat_row(r) for r in results["rows"]], COLUMNS)
    if not args.no_figure:
        pl.save_figure(figure_sgd_control(results), figures_dir(root) / "sgd_control")
    for r in results["rows"]:
        geo = "n/a" if r["pc1"] is None else f"PC1 {r['pc1']:.1f}% k95 {r['k95']} k99 {r['k99']} drift {r['drift']:.3g}"
        val, best = (float("nan") if r[k] is None else r[k] for k in ("final_val", "best_p_ood"))
        print(f"{r['run']:8s} {r['optimizer']:14s} val {val:.3f} best p_ood {best:.3f} {geo} {r['marker']}")
    print(f"sgd_control_analysis.py: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
