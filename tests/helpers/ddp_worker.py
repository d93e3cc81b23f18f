"""Launched by tests/test_distributed.py under torchrun (2 processes, gloo); not a test module itself.

    torchrun --standalone --nproc_per_node=2 tests/helpers/ddp_worker.py ROOT KILL_STEP

Records every file each rank writes under ROOT (atomic renames and metrics appends), then trains the tiny preset
three times: ROOT/fresh from scratch; ROOT/resumed_1to2, a run the test killed in one process, resumed here; and
ROOT/killed_2, stopped on every rank at KILL_STEP for the test to resume in one process. Writes
ROOT/writes.rank<r>.json: the list of [kind, path relative to ROOT] this rank wrote.
"""
import json
import os
import sys
from pathlib import Path

import drift.train.trainer as tr
from drift.run import checkpoint as ck
from drift.train import distributed as dist
from drift.config import resolve


class Killed(Exception):
    pass


def main(root: Path, kill_step: int) -> None:
    log = []
    real_replace, real_append = os.replace, ck.append_jsonl

    def logged_replace(src, dst, *args, **kwargs):
        if Path(dst).is_relative_to(root):
            log.append(["replace", str(Path(dst).relative_to(root))])
        return real_replace(src, dst, *args, **kwargs)

    def logged_append(path, record):
        log.append(["append", str(Path(path).relative_to(root))])
        return real_append(path, record)

    os.replace, ck.append_jsonl = logged_replace, logged_append
    tr.train(resolve("tiny", seed=1), root / "fresh", progress=False)
    tr.train(resolve("tiny", seed=1), root / "resumed_1to2", resume=True, progress=False)

    original = tr._train_step

    def killing_step(model, fwd, opt, ctx, step, state):
        if step == kill_step:  # on every rank, before the step's all_reduce: no collective is left waiting
            raise Killed
        return original(model, fwd, opt, ctx, step, state)

    tr._train_step = killing_step
    try:
        tr.train(resolve("tiny", seed=1), root / "killed_2", progress=False)
    except Killed:
        pass
    tr._train_step = original
    (root / f"writes.rank{dist.rank()}.json").write_text(json.dumps(log))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), int(sys.argv[2]))
