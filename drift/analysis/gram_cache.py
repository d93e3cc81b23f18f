"""The Gram cache of a run: analysis/gram_cache.npz, the anchored T x T Gram of every scope (trunk, block{l},
block{l}+ln) over every step asked for so far, with the content id of each checkpoint it was computed from
(drift/run/provenance.py) and a digest of its own content. A request the cache covers reads no checkpoint (only
the small digest table of each, to check the ids); otherwise one streaming pass computes the union and rewrites the
cache. A cache that is damaged, was written before ids were recorded, or whose checkpoints changed (or are gone) is
recomputed, with one note on stderr; it is never reused. Analyses (trajectory, update alignment, controls) call
trajectory_grams rather than gram_stream.gram_matrices.

    grams = trajectory_grams("runs/cpu_s42", [1, 200, 400], ["trunk", "block0"])   # {scope: T x T float64}
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from drift.atomic import atomic_path
from drift.run import checkpoint as ck
from drift.run import provenance
from drift.geometry.trajectory import Trajectory
from drift.analysis import gram_stream
from drift.run.params import all_scopes, n_layer_of
from drift.run.info import analysis_dir

GRAM_CACHE = "gram_cache.npz"
_FIELDS = ("steps", "scopes", "ids", "grams")


def _digest(cache: dict) -> str:
    return provenance.content_digest(*(np.asarray(cache[k]) for k in _FIELDS))


def _unusable(run_dir, cache: dict | None, error: str | None) -> str | None:
    """Why the cache cannot be reused (None: it can)."""
    if error is not None:
        return f"is damaged ({error})"
    if "ids" not in cache or "digest" not in cache:
        return "was written before the ids of its checkpoints were recorded"
    if _digest(cache) != str(cache["digest"]):
        return "is damaged (its content does not match its digest)"
    steps = cache["steps"].tolist()
    now = provenance.checkpoint_ids(run_dir, steps)
    changed = [s for s, i in zip(steps, cache["ids"].tolist()) if now[s] != i]
    if changed:
        return f"was computed from checkpoint {ck.ckpt_path(run_dir, changed[0])}, which changed or is gone since"
    return None


def _read_cache(run_dir) -> dict | None:
    """The cache if it exists, is intact and every checkpoint it was built from is unchanged; otherwise None, with
    one note on stderr when a file was there."""
    path = Path(run_dir) / "analysis" / GRAM_CACHE
    if not path.exists():
        return None
    cache, error = None, None
    try:
        with np.load(path, allow_pickle=False) as z:
            cache = {k: z[k] for k in z.files}
    except Exception as e:  # numpy and zipfile raise several types (BadZipFile, EOFError, ValueError, ...)
        error = f"{type(e).__name__}: {str(e)[:80]}"
    why = _unusable(run_dir, cache, error)
    if why is not None:
        print(f"note: {path} {why}; recomputing it", file=sys.stderr)
        return None
    return cache


def _write_cache(run_dir, steps: list[int], scopes: list[str], ids: list[str], grams: dict) -> None:
    path = analysis_dir(run_dir) / GRAM_CACHE
    cache = {"steps": np.asarray(steps, dtype=np.int64), "scopes": np.asarray(scopes), "ids": np.asarray(ids),
             "grams": np.stack([grams[s] for s in scopes])}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **cache, digest=np.asarray(_digest(cache)))


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
    ids = provenance.checkpoint_ids(run_dir, all_steps)  # before the pass: a file changed during it mismatches later
    grams = gram_stream.gram_matrices(run_dir, all_steps, all_names, progress=progress)
    if None not in ids.values():
        _write_cache(run_dir, all_steps, all_names, [ids[s] for s in all_steps], grams)
    return _cache_slice({"steps": np.asarray(all_steps), "scopes": np.asarray(all_names),
                         "grams": np.stack([grams[s] for s in all_names])}, steps, scopes)
