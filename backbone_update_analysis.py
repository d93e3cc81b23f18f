"""Update alignment with the backbone (PROTOCOL A8, claim C11, Fig 2's line).

For every update u = theta_s - theta_s' between consecutive regular checkpoints (the first is step 1 -> the first
regular checkpoint), C = <u, v_b> / ||u||, signed and |C|, labeled at the interval end and midpoint; the first
persistent sign flip and mean |C| on each side of it. v_b = raw uncentered PC1 of the scope's drifts from step 1
(per block: the 4 trunk matrices, and block+ln for the paper comparison); for the trunk also the row-normalized
A2 backbone. Runs with dense checkpoints (or an explicit --lag) also get the overlapping-update variant: every
checkpoint s with a checkpoint at s - lag. Everything comes from the cached Gram matrices; no direction is built.

Writes analysis/update_alignment.json and figures/update_alignment.{pdf,png}.

    python backbone_update_analysis.py runs/cpu_s42
    python backbone_update_analysis.py runs/cpu_s42 --scope block0 block0+ln trunk
    python backbone_update_analysis.py runs/beta2_095 --scope trunk --backbone-rows all --early-step 2000
"""
from __future__ import annotations

import sys

from drift import cli
from drift.analysis.updates import update_alignment_analysis
from drift.paper import PAPER_C11
from drift.report.run_figures import figure_update_alignment, run_script
from drift.config import MAX_STEPS
from drift.run.info import add_check_args, checked_run

PROG = "backbone_update_analysis.py"


def parse_args(argv):
    p = cli.parser(PROG, __doc__)
    p.add_argument("run_dir", type=cli.path("a run directory"), help="run directory (runs/<name>)")
    p.add_argument("--scope", type=cli.SCOPE, nargs="+", default=None,
                   help="parameter scopes: trunk, block<l>, block<l>+ln (default: trunk, every block, every block+ln)")
    p.add_argument("--lag", type=cli.whole(1, MAX_STEPS, "a lag in steps, e.g. the run's ckpt_every"), default=None,
                   help="overlapping-update lag in steps (default: the run's ckpt_every, used when it has dense "
                        "checkpoints)")
    p.add_argument("--early-step", type=cli.number(0, MAX_STEPS, "a step of the run"), default=None,
                   help="'early' mean |C| over updates ending at or before this step (default: half the run)")
    p.add_argument("--persist", type=cli.whole(1, cli.MAX_DRAWS, "e.g. 2"), default=2,
                   help="points a sign flip must persist (default: 2)")
    p.add_argument("--backbone-rows", choices=("regular", "all"), default="regular",
                   help="drift rows of v_b: the regular checkpoints (default) or every checkpoint (beta2 sweep)")
    add_check_args(p)
    return cli.parse(p, argv)


def report(results: dict) -> None:
    print(f"{'scope':<14}{'v_b':<16}{'mean|C|':>9}{'max|C|':>9}{'@step':>8}{'flip@end':>10}"
          f"{'|C| before':>12}{'|C| after':>11}")
    for scope, entry in results["scopes"].items():
        for kind, e in entry.items():
            s = e["consecutive_summary"]
            flip = "-" if s["flip_end_step"] is None else f"{s['flip_end_step']:.0f}"
            print(f"{scope:<14}{kind:<16}{s['mean_abs_cos']:9.3f}{s['max_abs_cos']:9.3f}"
                  f"{s['max_abs_cos_end_step']:8.0f}{flip:>10}{s['mean_abs_cos_before_flip']:12.3f}"
                  f"{s['mean_abs_cos_after_flip']:11.3f}")
            if "overlapping_summary" in e:
                o = e["overlapping_summary"]
                print(f"{'':<14}{'  overlapping':<16}{o['mean_abs_cos']:9.3f}  (n={o['n_updates']}, "
                      f"early mean {o['mean_abs_cos_early']:.3f})")
    print(f"paper (C11): {PAPER_C11}")


def main(argv=None) -> int:
    args = parse_args(argv)

    def compute():
        checked_run(args.run_dir, args, require_steps=0)
        return update_alignment_analysis(args.run_dir, args.scope, args.lag, args.early_step, args.persist,
                                         args.backbone_rows)

    return run_script(PROG, args.run_dir, "update_alignment", compute, figure_update_alignment, report)


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
