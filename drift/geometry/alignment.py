"""Alignment of updates with the backbone (PROTOCOL A8): cos(theta_s - theta_s', v_b) over consecutive or lagged
updates, its first persistent sign flip, and the isotropic noise floors of |cos| in D dimensions.

    out = update_alignment(traj, backbone, lag=200)         # cos, abs_cos, mean_abs_cos, flip_end_step ...
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from drift.geometry.jsonable import jsonable
from drift.geometry.trajectory import Trajectory


def first_persistent_sign_flip(values: Sequence[float], persist: int = 2) -> int | None:
    """Index of the first point whose sign is opposite to the series' initial sign and stays opposite for at
    least `persist` consecutive points (that point included); None if there is none.

    The initial sign is that of the first non-zero value; zeros never count as flipped. A one-point excursion
    does not count, and neither does a later return to the initial sign.
    """
    v = np.asarray(values, dtype=np.float64)
    nonzero = np.flatnonzero(v != 0)
    if nonzero.size == 0:
        return None
    flipped = v * np.sign(v[nonzero[0]]) < 0
    for j in range(v.size - persist + 1):
        if flipped[j:j + persist].all():
            return j
    return None


def update_pairs(traj: Trajectory, steps: Sequence[int] | None = None, lag: int | None = None) -> list:
    """(start, end) step pairs: consecutive checkpoints of `steps`, or every (s - lag, s) with both present."""
    steps = traj.steps if steps is None else np.asarray(steps, dtype=np.int64)
    if lag is None:
        return [(int(a), int(b)) for a, b in zip(steps[:-1], steps[1:])]
    present = set(int(s) for s in steps)
    return [(int(s) - lag, int(s)) for s in steps if int(s) - lag in present]


def update_alignment(traj: Trajectory, backbone: np.ndarray, steps: Sequence[int] | None = None,
                     lag: int | None = None, early_step: float | None = None, persist: int = 2) -> dict:
    """A8: C = <theta_s - theta_s', v_b> / ||theta_s - theta_s'||, signed and absolute, for the update pairs of
    `update_pairs`. Reports both labels (interval end, midpoint), the first persistent sign flip
    (`first_persistent_sign_flip`) with mean |C| before/after it, and mean |C| over ends <= early_step."""
    v = traj.normalize(backbone)
    pairs = update_pairs(traj, steps, lag)
    U = np.array([traj.diff(b, a) for a, b in pairs]).reshape(len(pairs), traj.T)
    norms = np.sqrt(np.clip(np.einsum("ij,ij->i", U @ traj.P, U), 0.0, None))
    C = (U @ traj.P @ v) / norms
    ends = np.array([b for _, b in pairs], dtype=np.float64)
    mids = np.array([0.5 * (a + b) for a, b in pairs], dtype=np.float64)
    j = first_persistent_sign_flip(C, persist) if C.size else None
    absC = np.abs(C)
    before = absC if j is None else absC[:j]
    after = absC[j:] if j is not None else absC[:0]
    out = {
        "pairs": pairs, "end_steps": ends, "mid_steps": mids, "cos": C, "abs_cos": absC,
        "mean_abs_cos": float(absC.mean()) if C.size else math.nan,
        "flip_rule": f"first point of opposite sign to the initial one that persists >= {persist} points",
        "flip_index": j,
        "flip_end_step": float(ends[j]) if j is not None else None,
        "flip_mid_step": float(mids[j]) if j is not None else None,
        "mean_abs_cos_before_flip": float(before.mean()) if before.size else math.nan,
        "mean_abs_cos_after_flip": float(after.mean()) if after.size else math.nan,
    }
    if early_step is not None:
        sel = ends <= early_step
        out["early_step"] = float(early_step)
        out["mean_abs_cos_early"] = float(absC[sel].mean()) if sel.any() else math.nan
    return jsonable(out)


def iso_abs_cos_mean(D: int, exact: bool = True) -> float:
    """E|cos| between a fixed unit vector and an isotropic random direction in R^D.

    Exact: Gamma(D/2) / (sqrt(pi) Gamma((D+1)/2)); asymptotic (the paper's line): sqrt(2/(pi D)).
    """
    if exact:
        return math.exp(math.lgamma(D / 2) - math.lgamma((D + 1) / 2)) / math.sqrt(math.pi)
    return math.sqrt(2.0 / (math.pi * D))


def iso_cos_rms(D: int) -> float:
    """RMS cosine with an isotropic random direction in R^D (exact)."""
    return 1.0 / math.sqrt(D)
