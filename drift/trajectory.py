"""Streaming access to a checkpoint trajectory: Gram matrices and materialized directions.

Every geometry analysis needs only the T x T Gram matrix of the checkpoint vectors (drifts, windows, phases and
directions are linear combinations of checkpoints; see geometry.py). `gram_matrices` builds it for many parameter
scopes in one pass: for each parameter tensor, the T checkpoints' copies are read (T x n), and column chunks of it
(float64) are multiplied into the Grams of the scopes that contain it. Peak memory is one tensor's rows plus the
Grams, never T x D; every byte of every file is read once.

I/O: the checkpoints are opened memory-mapped (which validates every file up front and gives each tensor's
shape and dtype), but their data is read with positioned reads (`os.preadv`) at the tensor's offset in the file,
located through the checkpoint's zip directory. Page-faulting a mapped tensor reads it a few pages at a time and
ran 3-6x slower than the disk; large positioned reads run at disk speed, and a background thread reads the next
tensor while the current one is multiplied. Files whose layout cannot be verified fall back to the mapped tensors.

Integrity: each tensor's bytes are hashed (sha256) as they are read and compared with the digest the checkpoint
stored at save (drift/integrity.py), so a file damaged on disk stops the analysis with its name instead of
silently changing the Grams.

Rows are anchored at the first step (theta_t - theta_first) before the product: differences cancel the anchor
exactly in every drift formula, and anchoring keeps float64 cancellation error far below the smallest drifts.

    grams = gram_matrices("runs/cpu_s42", steps, ["trunk", "block0"])
    vecs = materialize("runs/cpu_s42", steps, {"v_b": ("trunk", coeffs)})
"""
from __future__ import annotations

import os
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm import tqdm

from drift import checkpoint as ck
from drift import integrity
from drift.params import scope_keys

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # zip local file header: 30 bytes, name/extra lengths last


def open_trajectory(run_dir, steps: list[int]) -> tuple[list[dict], list[dict | None]]:
    """Memory-map every checkpoint up front, so a missing or unreadable file is reported before any work is done.
    Returns the states and each file's stored digests (None for files written before digests existed): the
    tensors are verified as they are read, not here, so every byte is read once."""
    ckpts = [ck.load_checkpoint(run_dir, s, mmap=True, verify=False) for s in steps]
    digests = [c.get(integrity.FIELD) for c in ckpts]
    for s, d in zip(steps, digests):
        if d is None:
            integrity.warn_unverified(ck.ckpt_path(run_dir, s))
    return [c["model"] for c in ckpts], digests


def _record_offsets(path) -> list[tuple[int, int]] | None:
    """(data offset, size) of every stored tensor record in a torch zip checkpoint, sorted; None if any record
    is compressed or the zip cannot be parsed (the caller then falls back to the mapped tensors)."""
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
            out = []
            for info in zf.infolist():
                if "/data/" not in info.filename or info.file_size == 0:
                    continue
                if info.compress_type != zipfile.ZIP_STORED:
                    return None
                f.seek(info.header_offset)
                fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
                if fields[0] != 0x04034B50:  # the local-header signature
                    return None
                out.append((info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1], info.file_size))
            return sorted(out)
    except (OSError, zipfile.BadZipFile, struct.error):
        return None


def tensor_offsets(path, state: dict) -> dict[str, int] | None:
    """File offset of every contiguous tensor of an mmap-loaded state dict, or None if unverifiable.

    All storages of a mapped checkpoint are slices of one mapping of the whole file, so storage pointers sorted
    by address pair one-to-one with the zip's data records sorted by offset; the pairing is accepted only if
    every pointer minus its record offset gives the same mapping base."""
    records = _record_offsets(path)
    storages = {}
    for t in state.values():
        if t.numel() > 0:
            st = t.untyped_storage()
            storages[st.data_ptr()] = st.nbytes()
    if records is None or len(records) != len(storages):
        return None
    ptrs = sorted(storages)
    bases = {p - off for p, (off, _) in zip(ptrs, records)}
    if len(bases) != 1 or any(storages[p] != size for p, (_, size) in zip(ptrs, records)):
        return None
    base = bases.pop()
    return {k: t.untyped_storage().data_ptr() - base + t.storage_offset() * t.element_size()
            for k, t in state.items() if t.numel() > 0 and t.is_contiguous()}


class _RowReader:
    """Reads one tensor from every checkpoint into a (T, n) tensor: positioned reads where offsets are known,
    the mapped tensors otherwise."""

    def __init__(self, run_dir, steps: list[int], states: list[dict], digests: list[dict | None]):
        self.states, self.digests = states, digests
        self.paths = [ck.ckpt_path(run_dir, s) for s in steps]
        self.offsets = [tensor_offsets(p, st) if hasattr(os, "preadv") else None
                        for p, st in zip(self.paths, states)]
        self.fds = [os.open(p, os.O_RDONLY) if off is not None else None for p, off in zip(self.paths, self.offsets)]

    def read(self, key: str) -> torch.Tensor:
        first = self.states[0][key]
        n, dtype = first.numel(), first.dtype
        rows = torch.empty((len(self.states), n * first.element_size()), dtype=torch.uint8)
        for i, (st, off, fd) in enumerate(zip(self.states, self.offsets, self.fds)):
            t = st[key]
            if t.numel() != n or t.dtype != dtype:
                raise ck.RunError(f"parameter {key} changes shape along the trajectory; the runs/steps do not match")
            if fd is not None and key in off:
                buf = rows[i].numpy()
                if os.preadv(fd, [buf], off[key]) != buf.nbytes:
                    raise ck.RunError(f"checkpoint {self.paths[i]} is truncated; delete it and rerun training "
                                      f"with --resume, or drop the step from the analysis (--steps)")
            else:
                rows[i].view(dtype).copy_(t.reshape(-1))
            if self.digests[i] is not None and self.digests[i].get(key) != integrity.digest(rows[i].numpy()):
                raise ck.RunError(integrity.corrupt_message(self.paths[i], key))
        return rows.view(dtype)

    def close(self) -> None:
        for fd in self.fds:
            if fd is not None:
                os.close(fd)


def _accumulate(rows: torch.Tensor, chunk: int) -> np.ndarray:
    """Anchored Gram of one tensor's (T, n) rows, in float64 column chunks.

    numpy rather than torch here: the mixed-precision subtract converts and anchors in one pass, and `b @ b.T`
    runs as a symmetric rank-k update (half the flops of a general product). Chunks of ~32k columns keep the
    float64 block in cache between the subtract and the product; with both, a chunk costs 2-3x less."""
    if rows.dtype not in (torch.float32, torch.float64):
        rows = rows.float()  # bf16/fp16 checkpoints: numpy has no bf16
    x = rows.numpy()
    T, n = x.shape
    out = np.zeros((T, T))
    buf = np.empty((T, min(chunk, n)))
    for lo in range(0, n, chunk):
        block = buf[:, :min(chunk, n - lo)]
        np.subtract(x[:, lo:lo + chunk], x[0, lo:lo + chunk].astype(np.float64), out=block)
        out += block @ block.T
    return out


def gram_matrices(run_dir, steps: list[int], scopes: list[str], chunk: int = 1 << 15,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """{scope: anchored Gram P[i, j] = <theta_i - theta_0, theta_j - theta_0>} over `steps` (float64)."""
    states, digests = open_trajectory(run_dir, steps)
    keys_of = {s: scope_keys(states[0].keys(), s) for s in scopes}
    all_keys = sorted(set().union(*keys_of.values()))
    reader = _RowReader(run_dir, steps, states, digests)
    per_key: dict[str, np.ndarray] = {}
    try:
        # One reader thread: the next tensor's reads overlap this tensor's products (both release the GIL).
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(reader.read, all_keys[0])
            for i, key in enumerate(tqdm(all_keys, desc="gram", disable=not progress, dynamic_ncols=True)):
                rows = pending.result()
                if i + 1 < len(all_keys):
                    pending = pool.submit(reader.read, all_keys[i + 1])
                per_key[key] = _accumulate(rows, chunk)
                del rows
    finally:
        reader.close()
    return {s: sum(per_key[k] for k in keys_of[s]) for s in scopes}


def materialize(run_dir, steps: list[int], directions: dict[str, tuple[str, np.ndarray]],
                progress: bool = True) -> dict[str, torch.Tensor]:
    """Turn coefficient vectors over `steps` into explicit parameter-space vectors (float32, canonical order):
    v = sum_t c_t * theta_t, streamed one checkpoint at a time (memory: one checkpoint plus the outputs)."""
    out: dict[str, torch.Tensor] = {}
    keys_of: dict[str, list[str]] = {}
    # One file at a time, read whole: a sequential read beats page-faulting a mapped file.
    for i, (step, state) in enumerate(tqdm(ck.iter_checkpoints(run_dir, steps, mmap=False), total=len(steps),
                                           desc="directions", disable=not progress, dynamic_ncols=True)):
        flats: dict[str, torch.Tensor] = {}  # one concatenation per scope and checkpoint
        for name, (scope, coeffs) in directions.items():
            c = float(coeffs[i])
            if c == 0.0:
                continue
            if scope not in flats:
                keys_of.setdefault(scope, scope_keys(state.keys(), scope))
                flats[scope] = torch.cat([state[k].reshape(-1).to(torch.float64) for k in keys_of[scope]])
            if name in out:
                out[name].add_(flats[scope], alpha=c)
            else:
                out[name] = flats[scope] * c
    return {k: v.to(torch.float32) for k, v in out.items()}


def flat_vector(state: dict, scope: str) -> torch.Tensor:
    """One checkpoint's `scope` vector in canonical order (float32)."""
    return torch.cat([state[k].reshape(-1).float() for k in scope_keys(state.keys(), scope)])
