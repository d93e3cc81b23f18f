"""Launched by tests/test_distributed.py under torchrun (2 processes, gloo); not a test module itself.

    torchrun --standalone --nproc_per_node=2 tests/helpers/lost_rank_worker.py OUT KILL_STEP

Runs train.py's main on the tiny preset into OUT; rank 1's process kills itself with SIGKILL at step KILL_STEP, as
the out-of-memory killer would. Each rank's stderr (file descriptor 2, so the C++ side's lines too) goes to
OUT.rank<r>.stderr for the test to read. SIGTERM is ignored: torchrun sends it to the surviving rank when its
monitor notices the dead one, at a moment that races with rank 0's own report; the test checks that report.
"""
import os
import signal
import sys

import drift.train.trainer as tr
import train
from drift.train import distributed as dist


def main(out: str, kill_step: int) -> int:
    err = os.open(f"{out}.rank{os.environ['RANK']}.stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(err, 2)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    original = tr._train_step

    def step_or_die(model, fwd, opt, ctx, step, state):
        if step == kill_step and dist.rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(model, fwd, opt, ctx, step, state)

    tr._train_step = step_or_die
    return train.main(["--preset", "tiny", "--seed", "1", "--out", out, "--no-progress"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
