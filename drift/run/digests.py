"""Checkpoint digests: a sha256 of every tensor, written at save and checked whenever an analysis reads it.

torch.load does not check the zip CRCs, so bytes flipped inside a stored tensor load without complaint and turn
into wrong numbers with exit status 0. A checkpoint therefore carries {"sha256": {key: hex digest of the tensor's
raw bytes}} beside its model state; `checkpoint.load_checkpoint` compares every tensor it returns, and the
streaming reader of `analysis/gram_stream.py` compares each tensor as it reads it. Per-tensor digests (rather than one per
file) let a reader that pulls a single tensor out of many files verify exactly the bytes it uses. hashlib runs
SHA-256 at ~1.4 GB/s here (SHA-NI) and releases the GIL on large buffers, so hashing overlaps other work.

Checkpoints written before the digests existed still load, with one UnverifiedCheckpointWarning per run
directory; `python -m drift.run.integrity RUN --add` stores digests in them (after which later changes are caught).

This module is a leaf (no drift imports): checkpoint.py writes and checks the digests through it, and the
repair command in integrity.py reads checkpoints through checkpoint.py.
"""
from __future__ import annotations

import hashlib
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
