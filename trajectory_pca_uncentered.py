"""Uncentered PCA of a run's parameter trajectory: the backbone, the residual and their dynamics (PROTOCOL A1-A7,
A11), from one streaming pass over the checkpoints.

Examples:
    python trajectory_pca_uncentered.py runs/cpu_s42
    python trajectory_pca_uncentered.py runs/paper_s42 --save-directions     # also analysis/directions.pt
    python trajectory_pca_uncentered.py runs/cpu_s42 --window 8 --split-step 400 --no-figures
    python trajectory_pca_uncentered.py runs/cpu_s42 --steps 1 20 40 60 80 100

Reads run.json, metrics.jsonl and the checkpoints (the regular ones after --ref-step, unless --steps is given);
writes analysis/trajectory_pca.json (layout: drift/analysis/backbone.py), analysis/gram_cache.npz (reused by the other
analyses) and figures/trajectory_*.pdf|png, and prints a short summary.
"""
import math
import sys

from drift import cli
from drift.analysis.backbone import analyze_run, save_directions
from drift.report.run_figures import draw_figures
from drift.run import provenance
from drift.run.checkpoint import RunError
from drift.config import MAX_STEPS, ConfigError
from drift.run.info import add_check_args, checked_run, write_analysis


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _num(x, fmt: str = ".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def summary_lines(r: dict) -> list[str]:
    """The headline numbers, with the paper's s42 values for comparison."""
    t, b, roll, ph = r["trunk"], r["blocks"], r["rolling"]["trunk"], r["phases"]
    pc1 = [x for x in b["pc1"]["block+ln"] if x is not None and not math.isnan(x)]
    lines = [
        f"rows: {len(r['setup']['row_steps'])} checkpoints {r['setup']['row_steps'][0]}..{r['setup']['row_steps'][-1]}"
        f" from step {r['setup']['ref_step']}; switch {r['setup']['switch_step']}, split {r['setup']['split_step']}",
        f"trunk PC1 row-norm {_pct(t['pc1_rownorm_top10'])} (top-10 denom; full {_pct(t['pc1_rownorm_full'])}), "
        f"PC2 {_pct(t['pc2_rownorm_top10'])}, raw PC1 {_pct(t['pc1_raw_full'])}   [paper 71.4 / 12.1 / 79.1]",
        f"per-block raw PC1 (+ln) {_pct(min(pc1) if pc1 else None)}-{_pct(max(pc1) if pc1 else None)}   "
        f"[paper 77.9-81.2]",
        f"f_b final {_num(t['f_b_final'])}, time-mean {_num(t['f_b_mean'])}   [paper 0.68-0.72; repo 0.865 final]",
        f"rho mean {_num(roll['rho_mean'])}, min {_num(roll['rho_min'])} at {_num(roll['rho_argmin_step'], '.0f')}"
        f"   [paper 0.800, 0.749 at ~5000]",
    ]
    if "skipped" in ph:
        lines.append(f"phases: skipped ({ph['skipped']})")
    else:
        lines.append(f"phase PC1 early {_pct(ph['early_pc1_full'])}, late {_pct(ph['late_pc1_full'])}, "
                     f"|cos| {_num(ph['abs_cos'])} = {_num(ph['angle_deg'], '.1f')} deg   [paper 60.0/81.3, 0.323]")
    sw = r["switching"]
    if sw["first"]:
        s = sw["first"]["summary"]["block+ln"]
        lines.append(f"first switch {sw['first_pair']}: per-block c {_num(s['c_min'])}-{_num(s['c_max'])}, "
                     f"E_2:6 {_pct(s['e_2_6_min'])}-{_pct(s['e_2_6_max'])}; trunk dimension "
                     f"{sw['dimension']['effective_dim']} of {len(sw['dimension']['pairs'])} displacements")
    else:
        lines.append("switching: no p_ood peak->trough pair")
    return lines


PROG = "trajectory_pca_uncentered.py"


def main(argv=None) -> int:
    p = cli.parser(PROG, __doc__)
    p.add_argument("run_dir", type=cli.path("a run directory"),
                   help="run directory (run.json, metrics.jsonl, ckpt_*.pt)")
    p.add_argument("--ref-step", type=cli.STEP, default=1, help="reference checkpoint theta_ref (default 1)")
    p.add_argument("--window", type=cli.WINDOW, default=10, help="rolling-window length in checkpoints (default 10)")
    p.add_argument("--split-step", type=cli.whole(1, MAX_STEPS, "a step inside the run"),
                   help="phase split (default: the lambda switch from run.json)")
    p.add_argument("--stride", type=cli.whole(1, MAX_STEPS, "a multiple of the run's ckpt_every"),
                   help="step stride of the A1 subsampled variant (default 2 x ckpt_every)")
    p.add_argument("--steps", type=cli.STEP, nargs="+", help="analysis steps (default: the regular checkpoints)")
    p.add_argument("--no-figures", action="store_true", help="write the JSON only")
    p.add_argument("--save-directions", action="store_true",
                   help="also write analysis/directions.pt (one more pass over the checkpoints)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_check_args(p)
    args = cli.parse(p, argv)
    try:
        run = checked_run(args.run_dir, args)
        results = analyze_run(run, ref_step=args.ref_step, window=args.window, split_step=args.split_step,
                              stride=args.stride, steps=args.steps, progress=not args.no_progress)
        params = {"ref_step": args.ref_step, "window": args.window, "split_step": results["setup"]["split_step"],
                  "stride": results["setup"]["stride"], "allow_missing": args.allow_missing,
                  "allow_running": args.allow_running}
        steps = results["setup"]["analysis_steps"]
        path = write_analysis(run.run_dir, "trajectory_pca", results, params,
                              {"steps": steps, "ref_step": args.ref_step},
                              provenance=provenance.record(run.run_dir, steps, run.steps))
        if not args.no_figures:
            draw_figures(results, run.run_dir)
        if args.save_directions:
            save_directions(run.run_dir, args.ref_step, results["setup"]["analysis_steps"],
                            progress=not args.no_progress)
    except (RunError, ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(results)))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
