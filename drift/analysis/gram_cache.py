"""The Gram cache of a run: analysis/gram_cache.npz, the anchored T x T Gram of every scope (trunk, block{l},
block{l}+ln) over every step asked for so far, keyed by the steps, the scopes and each checkpoint file's size and
mtime. A request the cache covers reads no checkpoint; otherwise one streaming pass computes the union and
rewrites the cache. Analyses (trajectory, update alignment, controls) call trajectory_grams rather than
gram_stream.gram_matrices.

    grams = trajectory_grams("runs/cpu_s42", [1, 200, 400], ["trunk", "block0"])   # {scope: T x T float64}
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from drift.atomic import atomic_path
from drift.run import checkpoint as ck
from drift.geometry.trajectory import Trajectory
from drift.analysis import gram_stream
from drift.run.params import all_scopes, n_layer_of
from drift.run.info import analysis_dir

GRAM_CACHE = "gram_cache.npz"


def file_stats(run_dir, steps: Sequence[int]) -> np.ndarray | None:
    """(T, 2) int64 [size, mtime_ns] per checkpoint file, or None if one is missing."""
    try:
        return np.array([[st.st_size, st.st_mtime_ns] for st in (os.stat(ck.ckpt_path(run_dir, s)) for s in steps)],
                        dtype=np.int64).reshape(len(steps), 2)
    except FileNotFoundError:
        return None


def _read_cache(run_dir) -> dict | None:
    """The cache if it exists, parses and still matches every checkpoint file it was built from."""
    path = Path(run_dir) / "analysis" / GRAM_CACHE
    try:
        with np.load(path, allow_pickle=False) as z:
            cache = {k: z[k] for k in ("steps", "scopes", "stats", "grams")}
    except (OSError, KeyError, ValueError):
        return None
    stats = file_stats(run_dir, cache["steps"].tolist())
    if stats is None or not np.array_equal(stats, cache["stats"]):
        return None
    return cache


def _write_cache(run_dir, steps: list[int], scopes: list[str], stats: np.ndarray, grams: dict) -> None:
    path = analysis_dir(run_dir) / GRAM_CACHE
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, steps=np.asarray(steps, dtype=np.int64), scopes=np.asarray(scopes), stats=stats,
                 grams=np.stack([grams[s] for s in scopes]))


def _cache_slice(cache: dict, steps: list[int], scopes: list[str]) -> dict[str, np.ndarray]:
    """Grams over `steps`, re-anchored at steps[0] (as gram_matrices would return them)."""
    cached_steps = cache["steps"]
    names = cache["scopes"].tolist()
    out = {}
    for scope in scopes:
        traj = Trajectory(cached_steps, cache["grams"][names.index(scope)])
        out[scope] = traj.drift_gram(steps[0], steps)
    return out


def trajectory_grams(run_dir, steps: Sequence[int], scopes: Sequence[str],
                     progress: bool = True) -> dict[str, np.ndarray]:
    """{scope: Gram of theta_s - theta_steps[0] over `steps`}, from analysis/gram_cache.npz when it covers the
    request; otherwise one streaming pass over the union of the request and the cache (all block scopes
    included), which then replaces the cache."""
    steps, scopes = sorted(int(s) for s in steps), list(dict.fromkeys(scopes))
    cache = _read_cache(run_dir)
    if cache is not None and set(steps) <= set(cache["steps"].tolist()) \
            and set(scopes) <= set(cache["scopes"].tolist()):
        return _cache_slice(cache, steps, scopes)
    all_steps, all_names = set(steps), list(scopes)
    if cache is not None:
        all_steps |= set(cache["steps"].tolist())
        all_names += cache["scopes"].tolist()
    state = ck.load_checkpoint(run_dir, steps[0], mmap=True, verify=False)["model"]  # keys only; read below
    all_names += all_scopes(n_layer_of(state.keys()))
    all_steps, all_names = sorted(all_steps), list(dict.fromkeys(all_names))
    grams = gram_stream.gram_matrices(run_dir, all_steps, all_names, progress=progress)
    stats = file_stats(run_dir, all_steps)
    if stats is not None:
        _write_cache(run_dir, all_steps, all_names, stats, grams)
    return _cache_slice({"steps": np.asarray(all_steps), "scopes": np.asarray(all_names),
                         "grams": np.stack([grams[s] for s in all_names])}, steps, scopes)
