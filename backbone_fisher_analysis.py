"""Fisher curvature along the backbone (PROTOCOL A10, claim C13, Fig 3).

At each selected checkpoint: M fresh mini-batches, the mini-batch-mean gradient of the composite loss (model in
eval mode, training lambda at that step) restricted to the trunk, stacked into G (M x D). Rayleigh quotients
q(v) = ||G v||^2 / M of the empirical Fisher for v_b (raw trunk PC1), v_PC2, v_sw (the trunk switching
direction) and K Gaussian directions orthogonal to v_b and to each other; anisotropy alpha = q(v_b) / mean q(w_k);
the top eigenpair of G G^T / M, lambda_1 and |<u_1, v_b>|. All quotients come from one product G @ V.
A control repeats q(v_b) and alpha with G re-flattened in module order, the reference code's order mismatch
(PROTOCOL 8.9b), to show how much of the paper's values that mismatch can explain.

Default checkpoints: the first regular one after step 1, the early p_ood peak and its trough, the first after
the lambda switch, the highest later peak (if any) and the last. Reports seconds per checkpoint.
Writes analysis/fisher.json and figures/fisher.{pdf,png} (Fig 3).

    python backbone_fisher_analysis.py runs/cpu_s42
    python backbone_fisher_analysis.py runs/paper_s42 --steps 200 1800 4800 9600 --m 32 --k 10
"""
from __future__ import annotations

import sys
from pathlib import Path

from drift import cli
from drift.analysis.fisher import fisher_analysis
from drift.paper import PAPER_C13
from drift.report.figures import figure_fisher
from drift.report.run_figures import run_script
from drift.run.info import add_check_args, checked_run

PROG = "backbone_fisher_analysis.py"


def parse_args(argv):
    p = cli.parser(PROG, __doc__)
    p.add_argument("run_dir", type=cli.path("a run directory"), help="run directory (runs/<name>)")
    p.add_argument("--steps", type=cli.STEP, nargs="+", default=None, help="checkpoint steps (default: see above)")
    p.add_argument("--m", type=cli.whole(1, cli.MAX_DRAWS, "e.g. 32"), default=32,
                   help="mini-batches (rows of G) per checkpoint (default: 32)")
    p.add_argument("--k", type=cli.whole(1, cli.MAX_DRAWS, "e.g. 10"), default=10,
                   help="random directions orthogonal to v_b (default: 10)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the random directions (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_check_args(p)
    return cli.parse(p, argv)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2e}"


def report(results: dict) -> None:
    print(f"{'step':>7} {'roles':<24}{'q(v_b)':>10}{'q(v_sw)':>10}{'q(v_PC2)':>10}{'mean q(w)':>11}"
          f"{'alpha':>8}{'lambda_1':>10}{'|<u1,v_b>|':>11}{'s':>7}{'alpha(mod.order)':>17}")
    for r in results["steps"]:
        print(f"{r['step']:>7} {','.join(r['roles']):<24}{_fmt(r['q']['v_b']):>10}{_fmt(r['q']['v_sw']):>10}"
              f"{_fmt(r['q']['v_pc2']):>10}{_fmt(r['q_random_mean']):>11}{r['alpha']:8.2f}{r['lambda_1']:10.2e}"
              f"{r['u1_overlap']['v_b']:11.3f}{r['seconds']:7.1f}{r['module_order']['alpha']:17.2f}")
    s = results["summary"]
    print(f"q_b last/first = {s['q_b_last_over_first']:.3g}; alpha max {s['alpha_max']:.2f} at step "
          f"{s['alpha_max_step']}; {s['seconds_per_checkpoint']:.1f} s per checkpoint")
    print(f"paper (C13): {PAPER_C13}")


def main(argv=None) -> int:
    args = parse_args(argv)

    def compute():
        checked_run(args.run_dir, args, require_steps=0)
        return fisher_analysis(args.run_dir, args.steps, args.m, args.k, args.seed, not args.no_progress)

    return run_script(PROG, args.run_dir, "fisher", compute,
                      lambda results: figure_fisher([results], [Path(args.run_dir).name]), report)


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
