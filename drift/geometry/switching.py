"""Switching (PROTOCOL A11): peaks and troughs of the p_ood series, the peak -> trough pairs, the geometry of a
switch displacement against the backbone, and the dimension spanned by several switches.

    ext = find_peaks_troughs(p_ood)
    pairs = switch_pairs(ext["peaks"], ext["troughs"])
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from drift.geometry.jsonable import jsonable
from drift.geometry.pca import PCAResult
from drift.geometry.trajectory import Trajectory


def find_peaks_troughs(values: Sequence[float], prominence: float = 0.03, span: int = 3) -> dict:
    """PROTOCOL A11 extrema of a p_ood series (interior points only; endpoints lack a neighbour).

    Peak: strict local max with value - max(min of up to `span` previous values, min of up to `span` next
    values) >= prominence. Trough: strict local min with min(max of previous, max of next) - value >= prominence.
    """
    v = np.asarray(values, dtype=np.float64)
    out = {"peaks": [], "peak_prominence": [], "troughs": [], "trough_depth": []}
    for i in range(1, v.size - 1):
        prev, nxt = v[max(0, i - span):i], v[i + 1:i + 1 + span]
        if v[i] > v[i - 1] and v[i] > v[i + 1]:
            prom = v[i] - max(prev.min(), nxt.min())
            if prom >= prominence - 1e-12:  # tolerate rounding at the frozen threshold
                out["peaks"].append(i)
                out["peak_prominence"].append(float(prom))
        elif v[i] < v[i - 1] and v[i] < v[i + 1]:
            depth = min(prev.max(), nxt.max()) - v[i]
            if depth >= prominence - 1e-12:
                out["troughs"].append(i)
                out["trough_depth"].append(float(depth))
    return out


def switch_pairs(peaks: Sequence[int], troughs: Sequence[int]) -> list[tuple[int, int]]:
    """Each peak with the first trough after it (peaks with no later trough are dropped)."""
    t = np.sort(np.asarray(troughs, dtype=np.int64))
    pairs = []
    for p in peaks:
        j = int(np.searchsorted(t, p, side="right"))
        if j < t.size:
            pairs.append((int(p), int(t[j])))
    return pairs


def extended_switch_pairs(peaks: Sequence[int], troughs: Sequence[int]) -> list[tuple[int, int]]:
    """Each peak with its next and its previous trough, without duplicates. Consecutive peak/trough events are
    always one of these, so this also covers the 'consecutive events' of the reference analysis."""
    t = np.sort(np.asarray(troughs, dtype=np.int64))
    pairs: list[tuple[int, int]] = []
    for p in peaks:
        j = int(np.searchsorted(t, p, side="right"))
        for k in (j, j - 1):
            if 0 <= k < t.size and (int(p), int(t[k])) not in pairs:
                pairs.append((int(p), int(t[k])))
    return pairs


def switch_geometry(traj: Trajectory, peak_step: int, trough_step: int, pca: PCAResult) -> dict:
    """A11 per scope: v_sw = (theta_peak - theta_trough)/||.||; c = |<v_sw, v_b>|, c^2 (backbone share),
    1 - c^2 (transverse share), and E_{2:6} = sum_{k=2..6} <v_sw_perp, v_k>^2 with v_sw_perp the renormalized
    residual of v_sw after removing v_b (also the un-residualized variant)."""
    if pca.basis_steps is None:
        raise ValueError("switch_geometry needs a Gram-route PCAResult")
    disp = traj.diff(peak_step, trough_step)
    v_sw = traj.normalize(disp)
    proj = traj.inner(pca.directions, v_sw)  # <v_sw, v_k>, k = 1..K
    c = abs(float(proj[0]))
    others = pca.directions[1:6]
    residual = v_sw - float(proj[0]) * pca.directions[0]
    res_norm = traj.norm(residual)
    e_perp = float(np.sum(traj.inner(others, residual / res_norm) ** 2)) if res_norm > 0 else math.nan
    return {
        "peak_step": int(peak_step), "trough_step": int(trough_step), "displacement_norm": traj.norm(disp),
        "c": c, "c2": c * c, "transverse_share": 1.0 - c * c,
        "e_2_6": e_perp, "e_2_6_unresidualized": float(np.sum(proj[1:6] ** 2)),
        "n_components_used": int(others.shape[0]),
    }


def displacement_dimension(traj: Trajectory, pairs: Sequence[tuple[int, int]], threshold: float = 0.1) -> dict:
    """Pairwise cosines of the displacements theta_peak - theta_trough (step pairs) and sequential Gram-Schmidt.

    residual_norms[k] = distance of unit displacement k from the span of displacements 0..k-1 (1 = new direction,
    0 = already spanned). effective_dim = number of residual norms above `threshold`.
    """
    D = np.array([traj.normalize(traj.diff(p, t)) for p, t in pairs]).reshape(len(pairs), traj.T)
    cos = traj.inner(D, D)
    basis: list[np.ndarray] = []
    residuals = []
    for d in D:
        r = d.copy()
        for _ in range(2):  # a second pass restores orthogonality lost to cancellation
            for q in basis:
                r = r - float(traj.inner(q, r)) * q
        n = traj.norm(r)
        residuals.append(n)
        if n > 1e-8:
            basis.append(r / n)
    residuals = np.array(residuals)
    off = np.abs(cos - np.diag(np.diag(cos)))
    return jsonable({"pairs": pairs, "cos": cos, "max_abs_offdiag_cos":
            float(off.max()) if len(pairs) > 1 else math.nan, "residual_norms": residuals,
            "threshold": float(threshold), "effective_dim": int(np.sum(residuals > threshold))})
