"""Run C' (PROTOCOL E2): SGD with Nesterov momentum 0.9, lr 1e-2 and decoupled weight decay 0.5, 2000 paper steps
on the 4000-step cosine schedule (so it matches runs A-C step for step), with the early-stop rule at step 2000:
stop if val > early_stop_max_val and best p_ood < early_stop_min_p_ood (paper: 5.1 and 0.02; cpu/tiny: the loss
threshold rescaled to the vocabulary, see drift/train/control_runs.py). Both thresholds are config fields, recorded in
run.json and overridable. Writes <out>/C_prime; a finished run is skipped, a killed one resumed.

Examples:
    python sgd_nesterov_run.py --preset cpu --seed 42 --out runs/ctrl_s42
    python sgd_nesterov_run.py --preset cpu --seed 42 --out runs/ctrl_s42 early_stop_max_val=4.0
    python sgd_nesterov_run.py --preset paper --seed 42 --out runs/ctrl_s42
"""
import sys
from pathlib import Path

from drift import cli
from drift.train import distributed as dist
from drift.run.checkpoint import RunError, read_metrics
from drift.config import ConfigError
from drift.train.control_runs import RERUN_HINT, control_config, early_stop_decision, ensure_run


PROG = "sgd_nesterov_run.py"


def main(argv=None) -> int:
    parser = cli.parser(PROG, __doc__)
    cli.add_config_args(parser)
    parser.add_argument("--out", type=cli.path("a directory"),
                        help="directory of the control runs (default: runs/ctrl_s<seed>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = cli.parse(parser, argv)
    try:
        seed = args.seed if args.seed is not None else 42
        run_dir = Path(args.out or f"runs/ctrl_s{seed}") / "C_prime"
        cfg = control_config(args.preset, seed, "C_prime", args.overrides)
        res = ensure_run(cfg, run_dir, progress=not args.no_progress, argv=sys.argv if argv is None else argv,
                         kind="controls")
        t = cfg.train
        rule = early_stop_decision(read_metrics(run_dir), t.early_stop_step, t.early_stop_max_val,
                                   t.early_stop_min_p_ood)
    except (ConfigError, RunError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if not dist.is_main():  # under torchrun every rank trains; one reports
        return 0
    verdict = {True: "fired (run stopped)", False: "did not fire", None: "not reached"}[rule["fires"]]
    val = "n/a" if rule["val_loss"] is None else f"{rule['val_loss']:.3f}"
    print(f"sgd_nesterov_run.py: C': {res['action']}, {res['status']}; early-stop rule at step {rule['stop_step']} "
          f"{verdict}: val {val} (> {rule['max_val']}?), best p_ood {rule['best_p_ood']:.3f} "
          f"(< {rule['min_p_ood']}?) -> {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG, RERUN_HINT))
