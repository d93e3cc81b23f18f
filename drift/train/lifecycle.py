"""A training run's directory from the writer's side: everything train() does to runs/<name>/ besides the loop's own
checkpoints and eval records.

Before anything is written, --out / --resume are checked (read only); then the directory is created and locked for
the whole training (drift.run.lock), stale temporaries are removed, a restart clears the run's files and everything
derived from them (DERIVED_OUTPUTS: analyses, figures, reheating runs, stage stamps), and the checks are repeated
under the lock. run.json is the run's record: its provenance at the start, "running" again on resume,
the final status at the end, "diverged" / "interrupted" / "failed" when it stops early. resume.pt holds the
optimizer, RNG and loop state; resuming truncates metrics.jsonl to its step.

Under torchrun the checks, the lock and every write are rank 0's; the other ranks follow its decisions (an error
there is raised on every rank).

    check_before_writing(cfg, run_dir, resume, restart)
    with locked_run(cfg, run_dir, resume, restart):
        ...   # train
"""
from __future__ import annotations

import contextlib
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from drift import alloc
from drift.config import DERIVED, Config
from drift.run import checkpoint as ck
from drift.run.info import COMPLETED
from drift.run.lock import RunLock, refuse_if_held, remove_stale_temps
from drift.train import distributed as dist

# Files a training run writes at the top of its directory; --restart removes them and the checkpoints.
RUN_FILES = ("run.json", "metrics.jsonl", "codewords.json", "resume.pt")
# What was made from those files, stale once the run starts over, so --restart removes it too: the analyses (with
# the Gram and directions caches in analysis/), the figures, the reheating runs started from the last checkpoint,
# the stage stamps (with make's job logs) and run_seed.sh's environment snapshot.
DERIVED_OUTPUTS = ("analysis/", "figures/", "reheat/", ".stages/", "environment.txt")  # "/": a directory
FINAL = COMPLETED  # a run that reached its end or its early stop: `--resume` has nothing left to do


def restart_hint(run_dir: Path) -> str:
    return f"start it over with `python train.py --restart {run_dir}`"


# --------------------------------------------------------------------------------------------------------------
# Before training: check, create, lock, clear
# --------------------------------------------------------------------------------------------------------------

def check_run_dir(cfg: Config, run_dir: Path, resume: bool, locked: bool = False) -> None:
    """Read-only checks of --out / --resume, done before anything is written (and again under the lock)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ck.RunError(f"--out {run_dir} is a file, not a run directory; choose another --out")
    if not locked:
        refuse_if_held(run_dir)  # a live writer is the first thing to report
    run_json = run_dir / "run.json"
    if resume:
        if not run_json.exists():
            raise ck.RunError(f"--resume: {run_dir} holds no run.json; start it without --resume")
        # through Config, so a field added after the run started reads as its default (not as a difference)
        saved, current = ck.read_config(run_dir).to_dict(), cfg.to_dict()
        for d in (saved, current):  # DERIVED fields are set when the run starts; all else must agree
            for part in d.values():
                for k in DERIVED:
                    part.pop(k, None)
        if saved != current:
            raise ck.RunError(f"--resume: the config differs from {run_json}; resume without overrides")
        if not (run_dir / "resume.pt").exists() and ck.read_json(run_json).get("status") not in FINAL:
            raise ck.RunError(f"{run_dir} has no resume point (resume.pt): it stopped before its first checkpoint; "
                              f"{restart_hint(run_dir)}")
        return
    if run_json.exists() or any(ck.CKPT_RE.match(p.name) for p in run_dir.glob("ckpt_*.pt")):
        if (run_dir / "resume.pt").exists():
            raise ck.RunError(f"{run_dir} already holds a run; continue it with `python train.py --resume "
                              f"{run_dir}` or choose another --out")
        raise ck.RunError(f"{run_dir} already holds a run that stopped before its first checkpoint (no resume.pt); "
                          f"{restart_hint(run_dir)}, or choose another --out")


def check_before_writing(cfg: Config, run_dir: Path, resume: bool, restart: bool) -> None:
    """Rank 0's read-only checks (none for a restart, whose files are cleared under the lock)."""
    if not restart:
        dist.on_main(check_run_dir, cfg, run_dir, resume)


@contextlib.contextmanager
def locked_run(cfg: Config, run_dir: Path, resume: bool, restart: bool):
    """Create run_dir, hold its lock (rank 0) for the body, and prepare it under the lock."""
    dist.on_main(_make_run_dir, run_dir)
    with _run_lock(run_dir):
        dist.on_main(_prepare_locked, cfg, run_dir, resume, restart)
        yield


def clear_run(run_dir: Path) -> list[str]:
    """Remove the run's files, checkpoints and DERIVED_OUTPUTS (rank 0, run lock held); returns what went, e.g.
    ["analysis/", "run.json", "8 checkpoints"]. A reheating run still training (its own lock held) is refused
    before anything is removed."""
    reheat = run_dir / "reheat"
    for sub in sorted(reheat.iterdir()) if reheat.is_dir() and not reheat.is_symlink() else ():
        if sub.is_dir():
            refuse_if_held(sub)
    named = {p: p.name + "/" if p.is_dir() else p.name for p in run_dir.iterdir()}
    gone = [p for p, name in named.items() if name in RUN_FILES or name in DERIVED_OUTPUTS or ck.CKPT_RE.match(name)]
    names = sorted(named[p] for p in gone if not ck.CKPT_RE.match(p.name))
    n_ckpt = len(gone) - len(names)
    for p in gone:
        if p.is_dir() and not p.is_symlink():  # a symlinked directory: the link goes, not what it points to
            shutil.rmtree(p)
        else:
            p.unlink()
    return names + ([f"{n_ckpt} checkpoint{'s' * (n_ckpt != 1)}"] if n_ckpt else [])


def _make_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ck.RunError(f"cannot create the run directory {run_dir}: {e.strerror}") from None


@contextlib.contextmanager
def _run_lock(run_dir: Path):
    """The run directory's lock, held by rank 0 for the whole training; the other ranks, which write nothing, take
    none. A refusal on rank 0 is raised on every rank."""
    lock = RunLock(run_dir) if dist.is_main() else None
    dist.on_main(_acquire, lock)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _acquire(lock: RunLock) -> None:
    lock.acquire()


def _prepare_locked(cfg: Config, run_dir: Path, resume: bool, restart: bool) -> None:
    """With the lock held (rank 0): remove stale temporary files, then clear the run for a restart or check the
    directory again (another writer may have started it between the first check and the lock)."""
    for p in remove_stale_temps(run_dir):
        print(f"{run_dir}: removed the stale temporary file {p.name}", file=sys.stderr)
    if restart:
        removed = clear_run(run_dir)
        print(f"{run_dir}: restarting from step 0; removed {', '.join(removed) or 'nothing'}", file=sys.stderr)
    else:
        check_run_dir(cfg, run_dir, resume, locked=True)


# --------------------------------------------------------------------------------------------------------------
# run.json: provenance, resumed, stopped, diverged
# --------------------------------------------------------------------------------------------------------------

def provenance(cfg: Config, argv: list[str] | None, device: torch.device, extra: dict, ckpt_steps: list[int],
               eval_steps: list[int], run_id: str, kind: str) -> dict:
    """A new run's record. run_id (drift/run/checkpoint.py) and kind (drift/run/kinds.py) are written here once and
    never changed: resume keeps the record; --restart, which deletes every checkpoint, writes a new record (a new
    run_id, the same kind)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"run_id": run_id, "kind": kind,
            "config": cfg.to_dict(), "argv": argv if argv is not None else sys.argv, "git_commit": commit,
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
            "device": str(device), "host": platform.node(),
            # which CPU kernels ran (e.g. AVX2, AVX512): loop times are only comparable on the same capability
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "allocator": dict(alloc.STATE),  # drift/alloc.py: whether glibc's malloc was tuned (speed only)
            "start_time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "ckpt_steps": ckpt_steps, "eval_steps": eval_steps,
            "lambda_switch_step": cfg.train.lambda_switch_step, "status": "running", **extra}


def write_record(run_dir: Path, info: dict) -> None:
    """run.json, rank 0 only."""
    if dist.is_main():
        ck.atomic_write_json(info, run_dir / "run.json")


def read_record(run_dir: Path) -> dict:
    """run.json as rank 0 reads it, on every rank."""
    return dist.on_main(ck.read_json, run_dir / "run.json")


def mark_resumed(run_dir: Path, info: dict) -> None:
    """run.json says "running" again, without the previous stop's error, divergence and end time."""
    for key in ("error", "diverged_step", "end_time"):
        info.pop(key, None)
    info["status"] = "running"
    if dist.world() != info.get("world_size", 1):
        info["resumed_world_size"] = dist.world()
    write_record(run_dir, info)


def mark_stopped(run_dir: Path, status: str, error: BaseException) -> None:
    """Best effort: on a read-only disk run.json cannot be rewritten either (analyses then see no lock holder)."""
    what = "KeyboardInterrupt (Ctrl-C)" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
    try:
        info = ck.read_json(run_dir / "run.json")
        info.update(status=status, error=what[:300],
                    end_time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        ck.atomic_write_json(info, run_dir / "run.json")
    except (ck.RunError, OSError, ValueError):
        pass


def mark_diverged(run_dir: Path, step: int) -> None:
    """A divergence record in metrics.jsonl and run.json (rank 0); every rank waits for them."""
    if dist.is_main():
        ck.append_jsonl(run_dir / "metrics.jsonl", {"step": step, "diverged": True})
        info = ck.read_json(run_dir / "run.json")
        info.update(status="diverged", diverged_step=step)
        ck.atomic_write_json(info, run_dir / "run.json")
    dist.barrier()


# --------------------------------------------------------------------------------------------------------------
# resume.pt: the loop's state, saved at every checkpoint and loaded to resume
# --------------------------------------------------------------------------------------------------------------

def save_resume(run_dir: Path, model, opt, state, run_id: str | None) -> None:
    """`state`: the loop's step, best_p_ood, sums and timers (trainer.LoopState); `run_id`: run.json's."""
    ck.atomic_torch_save({"step": state.step, "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "torch_rng": torch.get_rng_state(), "best_p_ood": state.best_p_ood,
                          "sums": state.sums, "timers": state.timers, ck.RUN_ID: run_id}, run_dir / "resume.pt")


def load_resume(run_dir: Path, model, opt, expected: str | None) -> dict:
    """Restore model, optimizer and RNG from resume.pt, refusing one of another run than `expected` (run.json's
    run_id); truncate metrics.jsonl to its step (rank 0). Returns the loop state's fields (step, best_p_ood, sums,
    timers)."""
    path = run_dir / "resume.pt"
    if not path.exists():
        raise ck.RunError(f"{path} is missing: the run stopped before its first checkpoint; {restart_hint(run_dir)}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ck.RunError(f"{path} is corrupt ({type(e).__name__}); {restart_hint(run_dir)}") from None
    if expected is not None and saved.get(ck.RUN_ID) != expected:  # a legacy run (no run_id): nothing to compare
        whose = f"run {saved[ck.RUN_ID]}" if saved.get(ck.RUN_ID) else "no recorded run"
        raise ck.RunError(f"{path} belongs to {whose}, not to the run of {run_dir} (run {expected}): it was copied in "
                          f"from another run; {restart_hint(run_dir)}")
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    if dist.is_main():
        truncate_metrics(run_dir / "metrics.jsonl", saved["step"])
    return {k: saved[k] for k in ("step", "best_p_ood", "sums", "timers")}


def truncate_metrics(path: Path, step: int) -> None:
    """Drop eval records written after the resume point, so the resumed run does not log them twice."""
    if path.exists():
        records = [r for r in ck.read_metrics(path.parent) if r["step"] <= step]
        ck.atomic_write_text("".join(json.dumps(r) + "\n" for r in records), path)
