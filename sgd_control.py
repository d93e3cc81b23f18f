"""Optimizer controls A, B and C (PROTOCOL E2): AdamW, plain SGD and momentum SGD on the main run's model and data,
and B0 (plain SGD with weight decay 0, not in the paper: is SGD's collinearity more than weight-decay shrinkage?),
4000 paper steps with their own cosine schedule and the 52-checkpoint dense schedule (scaled for cpu/tiny by the
rule in drift/train/control_runs.py). Each run gets its own subdirectory; finished runs are skipped, killed ones resumed.
Run C' (Nesterov SGDW with the early-stop rule) has its own script, sgd_nesterov_run.py.

Examples:
    python sgd_control.py --preset cpu --seed 42 --out runs/ctrl_s42              # A, B, B0, C (cpu: 1,600 steps each)
    python sgd_control.py --preset cpu --seed 42 --out runs/ctrl_s42 --runs A C
    python sgd_control.py --preset paper --seed 42 --out runs/ctrl_s42            # the paper's controls (GPU)
    python sgd_control.py --preset tiny --out /tmp/ctrl total_steps=8             # overrides apply to every run

Then: python sgd_control_analysis.py runs/ctrl_s42 ; python sgd_matched_valloss.py runs/ctrl_s42
"""
import sys
from pathlib import Path

from drift import cli
from drift.train import distributed as dist
from drift.run.checkpoint import RunError
from drift.config import ConfigError
from drift.train.control_runs import RERUN_HINT, RUN_LABELS, control_config, ensure_run


def train_controls(preset: str, seed: int | None, out: Path, runs: list[str], overrides: list[str],
                   progress: bool, argv: list[str], script: str) -> int:
    """Train (or resume, or skip) each control run; prints one status line per run. Every run's config is checked
    before the first one trains."""
    configs = {run: control_config(preset, seed, run, overrides) for run in runs}
    for run, cfg in configs.items():
        res = ensure_run(cfg, out / run, progress=progress, argv=argv, kind="controls")
        wall = f"{res['wall_s']:.0f} s" if res["wall_s"] is not None else "?"
        extra = f" at step {res['diverged_step']}" if res["status"] == "diverged" else ""
        if dist.is_main():  # under torchrun every rank trains; one reports
            print(f"{script}: {run} ({RUN_LABELS[run]}): {res['action']}, {res['status']}{extra}, loop time {wall} "
                  f"-> {out / run}")
    return 0


PROG = "sgd_control.py"


def main(argv=None) -> int:
    parser = cli.parser(PROG, __doc__)
    cli.add_config_args(parser)
    parser.add_argument("--out", type=cli.path("a directory"),
                        help="directory of the control runs (default: runs/ctrl_s<seed>)")
    parser.add_argument("--runs", nargs="+", default=["A", "B", "B0", "C"], choices=["A", "B", "B0", "C"],
                        help="which controls to train (default: A B B0 C; B0 = plain SGD with weight decay 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = cli.parse(parser, argv)
    try:
        seed = args.seed if args.seed is not None else 42
        out = Path(args.out or f"runs/ctrl_s{seed}")
        return train_controls(args.preset, seed, out, args.runs, args.overrides, not args.no_progress,
                              sys.argv if argv is None else argv, PROG)
    except (ConfigError, RunError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG, RERUN_HINT))
