"""Independent experiments in parallel under GNU make's job server (`make reproduce -j N`): a slot per job, and a
check that a parallel build computed the same numbers as a sequential one.

`slot` runs one command holding one of S slots, each an flock'ed file in a lock directory: with --gpus the job
sees only the slot's GPU (CUDA_VISIBLE_DEVICES), with --threads it gets OMP_NUM_THREADS and, when the machine has
the cores, its own block of them. make decides how many jobs run (-j); the slots only decide where each one runs,
and a job that finds every slot taken waits for one, so -j larger than the slot count is safe. The kernel releases
a slot when its holder exits, even on a crash, so nothing stale is left behind. A caller may pass a hook that
receives the command's wall time, counted from the moment it holds its slot, when the command succeeds
(`python -m drift.run.stages slot` writes the stage's stamp with it).

`compare` walks two roots and checks that every analysis/*.json holds the same numbers (timing fields and the
root's own path aside).

    python -m drift.jobs slot --gpus 0,1,2,3 --lock-dir runs/.slots --log runs/x.log -- python train.py ...
    python -m drift.jobs slot --threads 2 --lock-dir runs/.slots -- ./run_seed.sh 42
    python -m drift.jobs compare runs/ci_j1 runs/ci_j2
"""
from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from drift import cli

PROG = "python -m drift.jobs"

# Keys whose values measure time or record when something ran, not what was computed (and any "seconds*" key,
# e.g. the Fisher analysis's seconds_gradients).
TIMING_KEYS = {"created", "wall_s", "timers", "start_time", "end_time", "elapsed_s", "seconds"}


def is_timing(key: str) -> bool:
    return key in TIMING_KEYS or key.startswith("seconds")


def acquire_slot(lock_dir: Path, n_slots: int, poll_s: float = 0.5):
    """(slot index, open lock file): the first free slot, waiting until one is free. Keep the file open to hold it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(n_slots):
            f = open(lock_dir / f"slot{i}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return i, f
            except BlockingIOError:
                f.close()
        time.sleep(poll_s)


def slot_env(slot: int, gpus: list[str] | None, threads: int | None, env: dict) -> tuple[dict, list[int] | None]:
    """The job's environment and, when there are enough cores for every slot, its CPU block."""
    env = {**env, "DRIFT_SLOT": str(slot)}
    cores = None
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot]
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        available = sorted(os.sched_getaffinity(0))
        if (slot + 1) * threads <= len(available):
            cores = available[slot * threads:(slot + 1) * threads]
    return env, cores


def n_slots(gpus: list[str] | None, threads: int | None) -> int:
    if gpus:
        return len(gpus)
    return max(1, len(os.sched_getaffinity(0)) // threads) if threads else 1


def run_in_slot(cmd: list[str], lock_dir: Path, gpus: list[str] | None, threads: int | None,
                log: Path | None, on_success: Callable[[float], int] | None = None) -> int:
    """Run the command in a free slot and return its exit status; when it succeeds and on_success is given, return
    on_success(seconds the command ran) instead."""
    if not gpus and not threads:  # nothing to pin (e.g. under Slurm, which pins the job itself)
        return _timed(cmd, os.environ.copy(), None, log, on_success)
    slot, held = acquire_slot(lock_dir, n_slots(gpus, threads))
    try:
        env, cores = slot_env(slot, gpus, threads, os.environ.copy())
        where = f"GPU {gpus[slot]}" if gpus else f"{threads} thread(s)" + (f" on cores {cores}" if cores else "")
        print(f"[slot {slot}: {where}] {' '.join(cmd)}" + (f"  (log: {log})" if log else ""), flush=True)
        return _timed(cmd, env, cores, log, on_success)
    finally:
        held.close()


def _timed(cmd: list[str], env: dict, cores: list[int] | None, log: Path | None,
           on_success: Callable[[float], int] | None) -> int:
    started = time.monotonic()
    rc = _run(cmd, env, cores, log)
    return on_success(time.monotonic() - started) if rc == 0 and on_success else rc


def _run(cmd: list[str], env: dict, cores: list[int] | None, log: Path | None) -> int:
    preexec = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    if log is None:
        return subprocess.run(cmd, env=env, preexec_fn=preexec).returncode
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        rc = subprocess.run(cmd, env=env, preexec_fn=preexec, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        print("\n".join(tail) + f"\nfailed (exit {rc}): {' '.join(cmd)}; full log in {log}", file=sys.stderr)
    return rc


# --------------------------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------------------------

def diff_values(a, b, where: str, root_a: str, root_b: str, out: list[str]) -> None:
    """Append to `out` every place where a and b differ: numbers exactly (NaN equals NaN), strings after mapping
    root_a to root_b, timing keys ignored."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if is_timing(k):
                continue
            if k not in a or k not in b:
                out.append(f"{where}/{k}: only in {'the first' if k in a else 'the second'}")
            else:
                diff_values(a[k], b[k], f"{where}/{k}", root_a, root_b, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            diff_values(x, y, f"{where}[{i}]", root_a, root_b, out)
    elif isinstance(a, str) and isinstance(b, str):
        if a.replace(root_a, root_b) != b:
            out.append(f"{where}: {a!r} vs {b!r}")
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif type(a) is not type(b) or a != b:
        out.append(f"{where}: {a!r} vs {b!r}")


def compare_roots(root_a: Path, root_b: Path) -> tuple[list[str], list[str]]:
    """(files compared, differences) over every analysis/*.json below the two roots."""
    files_a = {p.relative_to(root_a) for p in root_a.rglob("analysis/*.json")}
    files_b = {p.relative_to(root_b) for p in root_b.rglob("analysis/*.json")}
    diffs = [f"{p}: only under {root_a}" for p in sorted(files_a - files_b)]
    diffs += [f"{p}: only under {root_b}" for p in sorted(files_b - files_a)]
    for rel in sorted(files_a & files_b):
        a, b = (_load(r / rel) for r in (root_a, root_b))
        diff_values(a, b, str(rel), str(root_a), str(root_b), diffs)
    return sorted(str(p) for p in files_a & files_b), diffs


class CompareError(RuntimeError):
    """An analysis file that cannot be read; the message names it."""


def _load(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # ValueError: invalid JSON or UTF-8
        raise CompareError(f"{path} cannot be read as JSON ({type(e).__name__}); rebuild it") from None


def add_slot_arguments(s: argparse.ArgumentParser) -> None:
    """The options of `slot`, shared with `python -m drift.run.stages slot`."""
    s.add_argument("--gpus", type=cli.matching(r"\d+(,\d+)*", "comma-separated GPU ids", "e.g. 0,1,2,3"),
                   help="comma-separated GPU ids, one slot each (e.g. 0,1,2,3,4,5,6,7)")
    s.add_argument("--threads", type=cli.whole(1, 4096, "threads per job, e.g. 2"),
                   help="CPU threads per job (without --gpus: slots = cores // threads)")
    s.add_argument("--lock-dir", type=cli.path("a directory"), default="runs/.slots",
                   help="where the slot lock files live (default runs/.slots)")
    s.add_argument("--log", type=cli.path("a file"),
                   help="append the command's output to this file instead of the terminal")
    s.add_argument("cmd", nargs=argparse.REMAINDER, help="-- the command and its arguments")


def slot_call(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple:
    """run_in_slot's arguments from parsed slot options (a one-line error when no command was given)."""
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("slot: give the command after --, e.g. python -m drift.jobs slot --threads 2 -- make x")
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else None
    return cmd, Path(args.lock_dir), gpus, args.threads, Path(args.log) if args.log else None


def main(argv=None) -> int:
    parser = cli.parser(PROG, __doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=cli.Parser)
    s = sub.add_parser("slot", help="run a command in a free GPU / CPU slot")
    add_slot_arguments(s)
    c = sub.add_parser("compare", help="check two roots hold the same analysis numbers")
    c.add_argument("root_a", type=cli.path("a directory"))
    c.add_argument("root_b", type=cli.path("a directory"))
    args = cli.parse(parser, argv)
    if args.command == "slot":
        return run_in_slot(*slot_call(args, parser))
    root_a, root_b = Path(args.root_a), Path(args.root_b)
    for r in (root_a, root_b):
        if not r.is_dir():
            print(f"drift.jobs compare: error: {r} is not a directory; build it first (make analyses ROOT={r})",
                  file=sys.stderr)
            return 2
    try:
        files, diffs = compare_roots(root_a, root_b)
    except CompareError as e:
        print(f"drift.jobs compare: error: {e}", file=sys.stderr)
        return 2
    if not files:
        print(f"drift.jobs compare: error: no analysis/*.json under {root_a}; nothing was compared", file=sys.stderr)
        return 2
    for d in diffs[:40]:
        print(d)
    print(f"compared {len(files)} analysis files: " + (f"{len(diffs)} differences" if diffs else "identical numbers"))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
