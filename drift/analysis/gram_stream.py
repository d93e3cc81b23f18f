"""Streaming access to a checkpoint trajectory: Gram matrices and materialized directions.

Every geometry analysis needs only the T x T Gram matrix of the checkpoint vectors (drifts, windows, phases and
directions are linear combinations of checkpoints; see geometry.py). `gram_matrices` builds it for many parameter
scopes in one pass: each parameter tensor's T copies (one per checkpoint) give that tensor's Gram once, in column
chunks, and a scope's Gram is the sum of its tensors' (the trunk's is the sum of the blocks'). Peak memory is a
few tensors' rows plus the Grams, never T x D; every byte of every file is read once.

I/O: the checkpoints are opened memory-mapped (which validates every file up front and gives each tensor's
shape and dtype); each tensor's data is then mapped on its own at its offset in the file, located through the
checkpoint's zip directory, so hashing and products read the page cache with no copy, and the pages leave the
process (and its RSS) with the tensor. A prefetch thread asks the kernel to read the next tensors
(posix_fadvise WILLNEED) while the current one is hashed and multiplied, so a cold read runs at disk speed
instead of faulting a few pages at a time. Files whose layout cannot be verified fall back to the mapped tensors.

Integrity: each tensor's bytes are hashed (XXH3-128, or sha256 in older checkpoints) and compared with the digest the checkpoint stored at save
(drift/run/digests.py), so a file damaged on disk stops the analysis with its name instead of silently changing
the Grams. Hashes and column slices of the products are jobs of one thread pool (both release the GIL).

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

from drift.run import checkpoint as ck
from drift.run import digests as dg
from drift.run.params import scope_keys

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # zip local file header: 30 bytes, name/extra lengths last


def open_trajectory(run_dir, steps: list[int]) -> tuple[list[dict], list[dict | None]]:
    """Memory-map every checkpoint up front, so a missing or unreadable file is reported before any work is done.
    Returns the states and each file's stored digests (None for files written before digests existed): the
    tensors are verified as they are read, not here, so every byte is read once."""
    ckpts = [ck.load_checkpoint(run_dir, s, mmap=True, verify=False) for s in steps]
    ck.check_same_tensors([ck.ckpt_path(run_dir, s) for s in steps], [c["model"] for c in ckpts])
    digests = [dg.stored(c) for c in ckpts]
    for s, d in zip(steps, digests):
        if d is None:
            dg.warn_unverified(ck.ckpt_path(run_dir, s))
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


class _Rows:
    """One tensor of every checkpoint, as T flat numpy rows that views the files themselves.

    Where a file's tensor offsets are known, each row is a read-only np.memmap of exactly that tensor's bytes:
    no copy into a buffer, so hashing and the products read the page cache directly, and the mapping (and the
    pages it counts towards RSS) goes when the rows are dropped. Otherwise the row is the mapped torch tensor."""

    def __init__(self, key: str, paths, states: list[dict], offsets: list[dict | None]):
        first = states[0][key]
        self.key, self.n, self.dtype = key, first.numel(), first.dtype
        self.raw: list[np.ndarray] = []  # uint8 views, for hashing
        for path, st, off in zip(paths, states, offsets):
            t = st[key]
            if t.numel() != self.n or t.dtype != self.dtype:
                raise ck.RunError(f"parameter {key} changes shape along the trajectory; the runs/steps do not match")
            if off is not None and key in off:
                nbytes = self.n * t.element_size()
                if off[key] + nbytes > os.path.getsize(path):
                    raise ck.RunError(f"checkpoint {path} is truncated; find every damaged checkpoint with: "
                                      f"python -m drift.run.integrity {path.parent}")
                self.raw.append(np.memmap(path, np.uint8, "r", off[key], (nbytes,)))
            else:
                self.raw.append(dg.tensor_bytes(t))
        self.values = [self._as_float(r) for r in self.raw]

    def _as_float(self, raw: np.ndarray) -> np.ndarray:
        if self.dtype == torch.float32:
            return raw.view(np.float32)
        if self.dtype == torch.float64:
            return raw.view(np.float64)
        # bf16/fp16 checkpoints: numpy has no bf16, so widen once (a copy, but these files are half the size)
        return torch.from_numpy(raw.copy()).view(self.dtype).float().numpy()


def _prefetch(paths, offsets: list[dict | None], key: str, nbytes: int) -> None:
    """Ask the kernel to read this tensor of every file into the page cache now (asynchronous readahead), so the
    workers' page faults on the mapped rows find the data there; without it a mapped read faults in a few
    pages at a time and ran 3-6x slower than the disk."""
    for path, off in zip(paths, offsets):
        if off is not None and key in off:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, off[key], nbytes, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)


def _gram_part(values: list[np.ndarray], lo: int, hi: int, chunk: int, float32: bool) -> np.ndarray:
    """Anchored Gram of columns [lo, hi) of the rows: sum over column chunks of B B^T, B = rows - row 0.

    B is float64 (the difference of two float32 values of similar size is exact in it), the product is a symmetric rank-k update
    (`b @ b.T`: half the flops of a general product), and a (T, chunk) block stays in cache between the subtract
    and the product. float32=True runs B and the chunk products in float32, accumulated in float64 across
    chunks: faster (README, Benchmarks), but its PC1 share is 2.0-2.5e-9 off a float64 Gram (the target is 1e-9;
    the error is the float32 sums inside BLAS) and re-anchored window Grams lose ~1e-7 relative, so it is off by
    default."""
    T = len(values)
    dtype = np.float32 if float32 and values[0].dtype == np.float32 else np.float64
    out = np.zeros((T, T))
    buf = np.empty((T, min(chunk, hi - lo)), dtype)
    for a in range(lo, hi, chunk):
        b = min(chunk, hi - a)
        block = buf[:, :b]
        anchor = values[0][a:a + b].astype(dtype)
        for i, v in enumerate(values):
            np.subtract(v[a:a + b], anchor, out=block[i], dtype=dtype)
        out += block @ block.T
    return out


def _check_digest(path, key: str, raw: np.ndarray, expected: str | None, algo: str) -> None:
    if expected != dg.digest(raw, algo):
        raise ck.RunError(dg.corrupt_message(path, key))


def gram_matrices(run_dir, steps: list[int], scopes: list[str], chunk: int = 1 << 13, progress: bool = True,
                  workers: int = 0, float32: bool = False) -> dict[str, np.ndarray]:
    """{scope: anchored Gram P[i, j] = <theta_i - theta_0, theta_j - theta_0>} over `steps` (float64).

    Each tensor's Gram is computed once and the scopes sum them (a block is 4 tensors, the trunk 4 x n_layer).
    Work is a pipeline over tensors: a prefetch thread keeps the page cache ahead of the workers, and a pool of
    `workers` threads (default: the CPUs torch may use) takes the tensor's hashes (one per file) and column
    slices of its products, all releasing the GIL. BLAS is held to one thread per call so the pool's threads do
    not oversubscribe the cores. float32=True: see _gram_part."""
    from threadpoolctl import threadpool_limits

    states, digests = open_trajectory(run_dir, steps)
    keys_of = {s: scope_keys(states[0].keys(), s) for s in scopes}
    all_keys = sorted(set().union(*keys_of.values()))
    paths = [ck.ckpt_path(run_dir, s) for s in steps]
    offsets = [tensor_offsets(p, st) if hasattr(os, "posix_fadvise") else None for p, st in zip(paths, states)]
    workers = workers or max(1, torch.get_num_threads())
    nbytes = {k: states[0][k].numel() * states[0][k].element_size() for k in all_keys}
    per_key: dict[str, np.ndarray] = {}
    in_flight: list[tuple[str, list, list]] = []  # (key, product futures, hash futures), oldest first

    def finish_oldest():
        key, parts, hashes = in_flight.pop(0)
        for h in hashes:
            h.result()  # raises RunError naming the file whose bytes do not match
        per_key[key] = sum(f.result() for f in parts)

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(1) as prefetcher, \
            ThreadPoolExecutor(workers) as pool:
        ahead = [prefetcher.submit(_prefetch, paths, offsets, k, nbytes[k]) for k in all_keys[:2]]
        try:
            for i, key in enumerate(tqdm(all_keys, desc="gram", disable=not progress, dynamic_ncols=True)):
                ahead.pop(0).result()
                if i + 2 < len(all_keys):
                    ahead.append(prefetcher.submit(_prefetch, paths, offsets, all_keys[i + 2], nbytes[all_keys[i + 2]]))
                rows = _Rows(key, paths, states, offsets)
                hashes = [pool.submit(_check_digest, p, key, r, d[1].get(key), d[0])
                          for p, r, d in zip(paths, rows.raw, digests) if d is not None]
                # Slices of ~1M columns: enough jobs to share between workers, few enough to cost nothing.
                bounds = np.linspace(0, rows.n, max(workers, -(-rows.n // (1 << 20))) + 1).astype(int)
                parts = [pool.submit(_gram_part, rows.values, lo, hi, chunk, float32)
                         for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
                in_flight.append((key, parts, hashes))
                del rows  # the futures hold the rows; the mappings close when they finish
                if len(in_flight) > 1:  # two tensors in flight keep the pool busy across tensor boundaries
                    finish_oldest()
            while in_flight:
                finish_oldest()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
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
