"""Checkpoint integrity: a sha256 of every tensor, written at save and checked whenever an analysis reads it.

torch.load does not check the zip CRCs, so bytes flipped inside a stored tensor load without complaint and turn
into wrong numbers with exit status 0. A checkpoint therefore carries {"sha256": {key: hex digest of the tensor's
raw bytes}} beside its model state; `checkpoint.load_checkpoint` compares every tensor it returns, and the
streaming reader of `trajectory.py` compares each tensor as it reads it. Per-tensor digests (rather than one per
file) let a reader that pulls a single tensor out of many files verify exactly the bytes it uses. hashlib runs
SHA-256 at ~1.4 GB/s here (SHA-NI) and releases the GIL on large buffers, so hashing overlaps other work.

Checkpoints written before the digests existed still load, with one UnverifiedCheckpointWarning per run
directory; `--add` stores digests in them (after which later changes are caught).

    python -m drift.run.integrity runs/cpu_s42            # check every checkpoint; exit 1 if one is damaged
    python -m drift.run.integrity runs/old_run --add      # store digests in checkpoints that have none
"""
from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import warnings
from pathlib import Path

import torch

FIELD = "sha256"  # the checkpoint dict's key holding {tensor key: hex digest}


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint without stored digests (written before they existed) was read without verification."""


def tensor_bytes(t: torch.Tensor):
    """The tensor's data as a flat uint8 numpy view (copied only if it is not contiguous)."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def digest(buf) -> str:
    return hashlib.sha256(buf).hexdigest()


def state_digests(state: dict) -> dict[str, str]:
    return {k: digest(tensor_bytes(t)) for k, t in state.items()}


def corrupt_message(path, key: str) -> str:
    path = Path(path)
    return (f"checkpoint {path} is corrupt: tensor {key} does not match the sha256 stored when it was saved (the "
            f"file changed on disk); list every damaged checkpoint and the command that retrains the run with: "
            f"python -m drift.run.integrity {path.parent}")


def first_mismatch(state: dict, digests: dict[str, str], keys=None) -> str | None:
    """The first key of `keys` (default: all of `state`) whose bytes do not hash to the stored digest."""
    for k in state if keys is None else keys:
        if digests.get(k) != digest(tensor_bytes(state[k])):
            return k
    return None


_warned: set[str] = set()


def warn_unverified(path) -> None:
    """One warning per run directory and process: a trajectory of old checkpoints is one problem, not 51."""
    run_dir = str(Path(path).resolve().parent)
    if run_dir in _warned:
        return
    _warned.add(run_dir)
    warnings.warn(f"checkpoint {path} has no stored sha256 digests (written before they existed), so it and the "
                  f"other such checkpoints in {Path(path).parent} are read unverified; store digests with: "
                  f"python -m drift.run.integrity {Path(path).parent} --add", UnverifiedCheckpointWarning, stacklevel=3)


def _retrain_hint(run_dir: Path) -> str:
    """The train.py command recorded in run.json, pointed at a fresh directory (training is deterministic)."""
    import json
    try:
        argv = list(json.loads((run_dir / "run.json").read_text()).get("argv") or [])
    except (OSError, ValueError):
        argv = []
    generic = (f"retrain the run into a new directory with the command recorded in {run_dir / 'run.json'} "
               f"(\"argv\"), then replace the damaged files")
    if not argv or not str(argv[0]).endswith("train.py") or "--resume" in argv:
        return generic
    out = f"{str(run_dir).rstrip('/')}_retrained"
    argv = ["python", "train.py"] + argv[1:]
    if "--out" in argv[:-1]:
        argv[argv.index("--out") + 1] = out
    else:
        argv += ["--out", out]
    return "retrain it (deterministic on CPU), then replace the damaged files: " + shlex.join(argv)


def check_run(run_dir, add: bool = False) -> tuple[list[str], list[str], list[str]]:
    """(ok, corrupt, unverified) checkpoint file names of a run; with add=True unverified files get digests."""
    from drift.run import checkpoint as ck
    ok, corrupt, unverified = [], [], []
    for step in ck.list_steps(run_dir):
        path = ck.ckpt_path(run_dir, step)
        try:
            ckpt = ck.load_checkpoint_file(path, step, verify=False)
        except ck.RunError:
            corrupt.append(path.name)
            continue
        if FIELD not in ckpt:
            unverified.append(path.name)
            if add:
                ckpt[FIELD] = state_digests(ckpt["model"])
                ck.atomic_torch_save(ckpt, path)
        elif first_mismatch(ckpt["model"], ckpt[FIELD]) is None:
            ok.append(path.name)
        else:
            corrupt.append(path.name)
    return ok, corrupt, unverified


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="run directory holding ckpt_*.pt")
    p.add_argument("--add", action="store_true", help="store digests in checkpoints that have none (trusting "
                   "their current contents)")
    args = p.parse_args(argv)
    from drift.run.checkpoint import RunError
    try:
        ok, corrupt, unverified = check_run(args.run_dir, add=args.add)
    except RunError as e:
        print(f"integrity: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.run_dir}: {len(ok)} verified, {len(corrupt)} corrupt, {len(unverified)} without digests"
          + (" (digests added)" if args.add and unverified else ""))
    for name in corrupt:
        print(f"corrupt: {args.run_dir / name}")
    if unverified and not args.add:
        print(f"without digests: {', '.join(unverified)}; add them with: python -m drift.run.integrity "
              f"{args.run_dir} --add")
    if corrupt:
        print(_retrain_hint(args.run_dir))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
