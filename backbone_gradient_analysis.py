"""Gradient alignment with the backbone and the noise floor (PROTOCOL A9, claim C12, Fig 2).

At each selected checkpoint, draw fresh training mini-batches from a batch stream independent of training,
compute the gradient of the composite loss L_LM + lambda * L_probe (lambda as in training at that step), restricted
to the scope and flattened in the canonical order, and report |cos(g, v_b)| (mean +- std over batches) for the
composite, LM-only and probe-only gradients (probe-less batches skipped), with the parallel energy fraction.
Floors: sqrt(2/(pi D)), 1/sqrt(D), and an empirical one (|cos| of the same gradients with random directions).
The update/gradient ratio uses mean |cos(u, v_b)| from analysis/update_alignment.json (computed if missing).
A control reports the composite |cos| with the gradient flattened in module order (PROTOCOL 8.9b).

Default checkpoints: step 1 and the paper's {800, 1800, ..., 9800} scaled to the run's length.
Writes analysis/gradient_alignment.json and figures/gradient_alignment.{pdf,png} (Fig 2).

--equal-horizon: C12 at equal horizon instead (drift/analysis/horizon.py): from each of those checkpoints s to the
next regular checkpoint s', the update theta_s' - theta_s against the sum of the gradients, at theta_s, of the
training batches of steps s+1..s' (the single-batch gradient covers one step, the update many). Writes
analysis/gradient_horizon.json; about (s' - s) training steps of compute per checkpoint.

    python backbone_gradient_analysis.py runs/cpu_s42
    python backbone_gradient_analysis.py runs/cpu_s42 --scope block0+ln --n-batches 16
    python backbone_gradient_analysis.py runs/paper_s42 --steps 1 800 1800 2800
    python backbone_gradient_analysis.py runs/cpu_s42 --equal-horizon
"""
from __future__ import annotations

import sys
from pathlib import Path

from drift import cli
from drift.analysis.gradients import gradient_alignment_analysis
from drift.analysis.horizon import horizon_analysis
from drift.paper import PAPER_C12
from drift.report.figures import figure_alignment
from drift.report.rules import THRESHOLDS
from drift.report.run_figures import run_script
from drift.run.info import add_check_args, checked_run

PROG = "backbone_gradient_analysis.py"


def parse_args(argv):
    p = cli.parser(PROG, __doc__)
    p.add_argument("run_dir", type=cli.path("a run directory"), help="run directory (runs/<name>)")
    p.add_argument("--steps", type=cli.STEP, nargs="+", default=None, help="checkpoint steps (default: see above)")
    p.add_argument("--n-batches", type=cli.whole(1, cli.MAX_DRAWS, "e.g. 8"), default=8,
                   help="mini-batches per checkpoint (default: 8)")
    p.add_argument("--scope", type=cli.SCOPE, default="block0", help="block<l>, block<l>+ln or trunk (default: block0)")
    p.add_argument("--n-random", type=cli.whole(1, cli.MAX_DRAWS, "e.g. 32"), default=32,
                   help="random directions for the empirical floor (default: 32)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the random directions (default: 0)")
    p.add_argument("--equal-horizon", action="store_true",
                   help="compare updates with the same steps' summed gradients (see above)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_check_args(p)
    return cli.parse(p, argv)


def report(results: dict) -> None:
    s, f = results["summary"], results["floors"]
    print(f"scope {results['scope']}, D = {f['D']:,}")
    print(f"{'step':>7}{'|cos(g,v_b)|':>14}{'+-':>10}{'LM':>10}{'probe':>10}{'|cos(u,v_b)|':>14}{'ratio':>8}")
    for row, per in zip(results["steps"], s["per_step"]):
        c = row["composite"]["abs_cos"]
        lm = row["lm"]["abs_cos"]["mean"]
        probe = row["probe"]["abs_cos"]["mean"] if "probe" in row else float("nan")
        print(f"{row['step']:>7}{c['mean']:14.2e}{c['std']:10.1e}{lm:10.2e}{probe:10.2e}"
              f"{per['update_abs_cos_nearest']:14.3f}{per['ratio']:8.0f}")
    print(f"mean |cos(g, v_b)| = {s['grad_mean_abs_cos']:.2e}; floors: sqrt(2/(pi D)) = "
          f"{f['abs_cos_mean_asymptotic']:.2e}, 1/sqrt(D) = {f['cos_rms']:.2e}, empirical = {s['empirical_floor']:.2e}")
    print(f"control, gradient flattened in module order (reference-code mismatch): mean |cos| = "
          f"{s['grad_module_order_mean_abs_cos']:.2e}")
    print(f"gradient / floor = {s['grad_over_floor_asymptotic']:.2f}; mean |cos(u, v_b)| = "
          f"{s['update_mean_abs_cos']:.3f}; update / gradient = {s['update_over_grad']:.0f}x")
    print(f"paper (C12): {PAPER_C12}")


def report_horizon(results: dict) -> None:
    s = results["summary"]
    print(f"scope {results['scope']}, D = {results['floors']['D']:,}; equal horizon (update vs summed gradient)")
    print(f"{'interval':>13}{'|cos(u,v_b)|':>14}{'|cos(G,v_b)|':>14}{'|cos(u,G)|':>12}")
    for r in results["intervals"]:
        print(f"{r['start']:>6}-{r['end']:<6}{r['update_abs_cos']:14.3f}{r['summed_grad_abs_cos']:14.2e}"
              f"{r['update_summed_grad_abs_cos']:12.3f}")
    factor = THRESHOLDS["update_over_grad"]
    print(f"update / summed gradient = {s['update_over_summed_grad']:.1f}x (rule: >= {factor:g}x): "
          f"{'held' if s['update_over_summed_grad'] >= factor else 'not held'}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.equal_horizon:
        def compute_horizon():
            checked_run(args.run_dir, args, require_steps=0)
            return horizon_analysis(args.run_dir, args.steps, args.scope, not args.no_progress)
        return run_script(PROG, args.run_dir, "gradient_horizon", compute_horizon, None, report_horizon)

    def compute():
        checked_run(args.run_dir, args, require_steps=0)
        return gradient_alignment_analysis(args.run_dir, args.steps, args.n_batches, args.scope, args.n_random,
                                           args.seed, not args.no_progress)

    return run_script(PROG, args.run_dir, "gradient_alignment", compute,
                      lambda results: figure_alignment([results], [Path(args.run_dir).name]), report)


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
