"""Backbones of windows of a trajectory: rolling windows (PROTOCOL A4), the early and late phases and their
handoff (A5, C8), and the geometry of one checkpoint window (A12).

    rolling = rolling_backbone(traj, window=10)             # PC1 per window, adjacent-window |cos| rho
    window_geometry(traj, [600, 650, 700])                  # rho_1, k95, k99, drift of one window
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from drift.geometry.jsonable import jsonable
from drift.geometry.pca import RANK_RTOL, drift_pca
from drift.geometry.trajectory import Trajectory


@dataclass
class RollingResult:
    """PC1 per window and the adjacent-window |cos| series rho (placed at the mean of the two centers)."""

    variant: str
    window: int
    first_steps: np.ndarray
    last_steps: np.ndarray
    centers: np.ndarray
    pc1_fraction: np.ndarray
    directions: np.ndarray
    rho: np.ndarray
    rho_steps: np.ndarray

    def summary(self) -> dict:
        if self.rho.size == 0:
            return {"rho_mean": math.nan, "rho_max": math.nan, "rho_min": math.nan, "rho_argmin_step": None}
        i = int(np.argmin(self.rho))
        return {"rho_mean": float(self.rho.mean()), "rho_max": float(self.rho.max()),
                "rho_min": float(self.rho[i]), "rho_argmin_step": float(self.rho_steps[i])}

    def to_dict(self) -> dict:
        d = jsonable({k: v for k, v in dataclasses.asdict(self).items() if k != "directions"})
        d.update(self.summary())
        return d


def _window_pc1s(traj: Trajectory, C: np.ndarray, G: np.ndarray, row_normalize: bool) -> tuple[np.ndarray,
                                                                                              np.ndarray]:
    """PC1 of many equal-sized windows at once (one batched eigh): C (nw, w, T) row coefficients, G (nw, w, w)
    their Grams. Returns (directions (nw, T), PC1 fractions with the full denominator), each direction
    sign-fixed as in pca_rows (<x_last, v_1> > 0 for the window's last raw row)."""
    if row_normalize:
        norms2 = np.einsum("kii->ki", G)
        if np.any(norms2 <= 0):
            raise ValueError("row-normalization needs every drift row to be non-zero")
        scale = 1.0 / np.sqrt(norms2)
        G = G * scale[:, :, None] * scale[:, None, :]
        Cu = C * scale[:, :, None]
    else:
        Cu = C
    G = 0.5 * (G + np.swapaxes(G, 1, 2))
    evals, U = np.linalg.eigh(G)
    lam = np.clip(evals[:, -1], 0.0, None)
    total = np.clip(evals, 0.0, None).sum(axis=1)
    if np.any(total <= 0) or np.any(lam <= RANK_RTOL * lam.max()):
        raise ValueError("all drift rows of a window are zero")
    directions = np.einsum("kw,kwt->kt", U[:, :, -1], Cu) / np.sqrt(lam)[:, None]
    last = np.einsum("kt,ts,ks->k", C[:, -1, :], traj.P, directions)
    directions *= np.where(last < 0, -1.0, 1.0)[:, None]
    return directions, lam / total


def _rolling_result(traj: Trajectory, variant: str, window: int, firsts, lasts, directions: np.ndarray,
                    pc1: np.ndarray) -> RollingResult:
    directions = np.asarray(directions).reshape(len(firsts), traj.T)
    centers = 0.5 * (np.asarray(firsts, dtype=np.float64) + np.asarray(lasts, dtype=np.float64))
    rho = np.abs(np.einsum("ij,ij->i", directions[:-1] @ traj.P, directions[1:]))
    return RollingResult(variant, window, np.asarray(firsts, dtype=np.int64), np.asarray(lasts, dtype=np.int64),
                         centers, np.asarray(pc1, dtype=np.float64), directions, rho,
                         0.5 * (centers[:-1] + centers[1:]))


def rolling_backbone(traj: Trajectory, steps: Sequence[int] | None = None, window: int = 10) -> RollingResult:
    """A4 (paper section 4.2, trunk): windows of `window` consecutive checkpoints, drifts relative to the window's
    first checkpoint (window-1 rows), row-normalized, PC1 sign-fixed. Center = (first + last) / 2."""
    steps = traj.steps if steps is None else np.asarray(steps, dtype=np.int64)
    nw = steps.size - window + 1
    if nw < 1:
        return _rolling_result(traj, "window_ref_row_normalized", window, [], [], np.zeros((0, traj.T)), [])
    idx = traj.indices(steps)
    starts = np.arange(nw)
    r = idx[starts]                                              # each window's anchor
    R = idx[starts[:, None] + np.arange(1, window)[None, :]]     # its rows
    P = traj.P
    pr = P[R, r[:, None]]
    # the pairing of drift_gram: (P_RR - P_rR) - (P_Rr - P_rr)
    G = (P[R[:, :, None], R[:, None, :]] - pr[:, None, :]) - (pr[:, :, None] - P[r, r][:, None, None])
    C = np.zeros((nw, window - 1, traj.T))
    k, j = np.meshgrid(np.arange(nw), np.arange(window - 1), indexing="ij")
    C[k, j, R] = 1.0
    C[k, j, r[:, None].repeat(window - 1, axis=1)] -= 1.0
    directions, pc1 = _window_pc1s(traj, C, G, row_normalize=True)
    return _rolling_result(traj, "window_ref_row_normalized", window, steps[:nw], steps[window - 1:],
                           directions, pc1)


def rolling_backbone_global_ref(traj: Trajectory, ref_step: int, row_steps: Sequence[int] | None = None,
                                window: int = 10) -> RollingResult:
    """A4 per-block variant (paper section 3.2, "0.997-0.998"): raw drifts from the global `ref_step`, windows of
    `window` consecutive drift rows, adjacent-window |cos|. Never mix with `rolling_backbone`."""
    if row_steps is None:
        row_steps = traj.steps[traj.steps > ref_step]
    row_steps = np.asarray(row_steps, dtype=np.int64)
    nw = row_steps.size - window + 1
    if nw < 1:
        return _rolling_result(traj, "global_ref_raw", window, [], [], np.zeros((0, traj.T)), [])
    # Every window's rows are rows of one drift matrix: build its coefficients and Gram once, then slice.
    Call, Gall = traj.drift_coefs(ref_step, row_steps), traj.drift_gram(ref_step, row_steps)
    sl = np.arange(nw)[:, None] + np.arange(window)[None, :]
    directions, pc1 = _window_pc1s(traj, Call[sl], Gall[sl[:, :, None], sl[:, None, :]], row_normalize=False)
    return _rolling_result(traj, "global_ref_raw", window, row_steps[:nw], row_steps[window - 1:], directions, pc1)


def phase_backbones(traj: Trajectory, ref_step: int, split_step: int, steps: Sequence[int] | None = None,
                    rolling: RollingResult | None = None) -> dict:
    """A5: v_E = row-norm PC1 of drifts from ref over (ref, split]; v_L = row-norm PC1 of drifts from split over
    the checkpoints after split. `steps` restricts the candidate checkpoints (default: all). With `rolling`,
    also A_E(i) = |<v_roll(i), v_E>| and A_L(i) at the window centers."""
    steps = traj.steps if steps is None else np.asarray(steps, dtype=np.int64)
    early = drift_pca(traj, ref_step, steps[(steps > ref_step) & (steps <= split_step)], row_normalize=True)
    late = drift_pca(traj, split_step, steps[steps > split_step], row_normalize=True)
    v_e, v_l = early.backbone, late.backbone
    cos = abs(float(traj.inner(v_e, v_l)))
    out = {
        "ref_step": int(ref_step), "split_step": int(split_step),
        "early_pc1_full": early.rho1, "early_pc1_top10": float(early.fractions_top10[0]),
        "late_pc1_full": late.rho1, "late_pc1_top10": float(late.fractions_top10[0]),
        "abs_cos": cos, "angle_deg": math.degrees(math.acos(min(cos, 1.0))),
        "early_rows": jsonable(early.row_steps), "late_rows": jsonable(late.row_steps),
        "v_early": v_e, "v_late": v_l,
    }
    if rolling is not None:
        out["centers"] = rolling.centers
        out["A_E"] = np.abs(rolling.directions @ traj.P @ v_e)
        out["A_L"] = np.abs(rolling.directions @ traj.P @ v_l)
    return jsonable(out)
HANDOFF_AFTER = 0.2  # C8: the handoff is read over window centres in (switch, switch + 0.2 T]


def handoff_margin(centers: Sequence[float], a_e: Sequence[float], a_l: Sequence[float], switch: float,
                   total: float, after: float = HANDOFF_AFTER) -> float:
    """A5 handoff: min(mean(A_E - A_L) over centres <= switch, mean(A_L - A_E) over centres in
    (switch, switch + after * total]). Positive iff v_E leads before the switch and v_L after it; NaN when
    either range has no window centre."""
    c, e, l = (np.asarray(x, dtype=np.float64) for x in (centers, a_e, a_l))
    before = c <= switch
    post = (c > switch) & (c <= switch + after * total)
    if not before.any() or not post.any():
        return math.nan
    return float(min((e[before] - l[before]).mean(), (l[post] - e[post]).mean()))


def window_geometry(traj: Trajectory, window_steps: Sequence[int]) -> dict:
    """A12: anchor = first checkpoint of the window, rows = the later ones minus it, row-normalized uncentered PCA;
    rho_1 (full and top-10 denominators), k95, k99 and drift = ||theta_end - theta_anchor||."""
    w = np.asarray(window_steps, dtype=np.int64)
    pca = drift_pca(traj, int(w[0]), w[1:], row_normalize=True, n_directions=1)
    return {"window_steps": jsonable(w), "anchor_step": int(w[0]), "n_rows": int(w.size - 1),
            "rho1_full": pca.rho1, "rho1_top10": float(pca.fractions_top10[0]),
            "k95": pca.k95, "k99": pca.k99, "drift": traj.norm(traj.diff(int(w[-1]), int(w[0])))}
