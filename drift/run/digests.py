"""Checkpoint digests: a 128-bit XXH3 hash of every tensor, written at save and checked whenever an analysis reads it.

torch.load does not check the zip CRCs, so bytes flipped inside a stored tensor load without complaint and turn
into wrong numbers with exit status 0. A checkpoint therefore carries {FIELD: {key: hex digest of the tensor's raw
bytes}} beside its model state; `checkpoint.load_checkpoint` compares every tensor it returns, and the streaming
reader of `analysis/gram_stream.py` compares each tensor as it reads it. Per-tensor digests (rather than one per
file) let a reader that pulls a single tensor out of many files verify exactly the bytes it uses.

The hash is XXH3-128 (the `xxhash` package): the check is against accidental damage (a bad disk, a truncated copy,
a flipped byte), not against an adversary, so a cryptographic hash buys nothing, and sha256 at ~1.4 GB/s per core
cost about as much as reading a warm trajectory itself; XXH3-128 runs at ~20 GB/s on one core, and its 128 bits
make an accidental collision as unlikely as sha256's. Checkpoints written with sha256 digests (before the switch)
keep them and are checked with sha256: `stored()` returns the algorithm with the digests.

Checkpoints written before any digests existed still load, with one UnverifiedCheckpointWarning per run
directory; `python -m drift.run.integrity RUN --add` stores digests in them (after which later changes are caught).

This module is a leaf (no drift imports): checkpoint.py writes and checks the digests through it, and the
repair command in integrity.py reads checkpoints through checkpoint.py.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch
import xxhash

FIELD = "xxh3_128"  # the checkpoint dict's key holding {tensor key: hex digest} in checkpoints written now
_HASHES = {"xxh3_128": xxhash.xxh3_128_hexdigest, "sha256": lambda buf: hashlib.sha256(buf).hexdigest()}
LEGACY_FIELDS = ("sha256",)  # read and checked, never written


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint without stored digests (written before they existed) was read without verification."""


def tensor_bytes(t: torch.Tensor):
    """The tensor's data as a flat uint8 numpy view (copied only if it is not contiguous)."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def digest(buf, algo: str = FIELD) -> str:
    return _HASHES[algo](buf)


def state_digests(state: dict, algo: str = FIELD) -> dict[str, str]:
    return {k: digest(tensor_bytes(t), algo) for k, t in state.items()}


def stored(ckpt: dict) -> tuple[str, dict[str, str]] | None:
    """(algorithm, {key: digest}) a checkpoint carries, or None when it was written before digests existed."""
    for algo in (FIELD, *LEGACY_FIELDS):
        if algo in ckpt:
            return algo, ckpt[algo]
    return None


def corrupt_message(path, key: str) -> str:
    path = Path(path)
    return (f"checkpoint {path} is corrupt: tensor {key} does not match the digest stored when it was saved (the "
            f"file changed on disk); list every damaged checkpoint and the command that retrains the run with: "
            f"python -m drift.run.integrity {path.parent}")


def first_mismatch(state: dict, digests: dict[str, str], keys=None, algo: str = FIELD) -> str | None:
    """The first key of `keys` (default: all of `state`) whose bytes do not hash to the stored digest."""
    for k in state if keys is None else keys:
        if digests.get(k) != digest(tensor_bytes(state[k]), algo):
            return k
    return None


_warned: set[str] = set()


def warn_unverified(path) -> None:
    """One warning per run directory and process: a trajectory of old checkpoints is one problem, not 51."""
    run_dir = str(Path(path).resolve().parent)
    if run_dir in _warned:
        return
    _warned.add(run_dir)
    warnings.warn(f"checkpoint {path} has no stored digests (written before they existed), so it and the "
                  f"other such checkpoints in {Path(path).parent} are read unverified; store digests with: "
                  f"python -m drift.run.integrity {Path(path).parent} --add", UnverifiedCheckpointWarning, stacklevel=3)
