"""Geometry of a parameter trajectory, computed from its Gram matrix alone.

A trajectory is T checkpoint vectors theta_0..theta_{T-1} (trunk, or one block). D can be 25M, so the D x T
matrix is never built: the I/O layer streams the checkpoints once and hands over the T x T float64 Gram matrix
P[i, j] = <theta_i, theta_j>. Every analysis here (PROTOCOL section 5: A1-A5, A8, A11, A12, A13) is a function
of P and the step list.

Conventions
- Any direction is a linear combination of checkpoints, stored as a coefficient vector c in R^T
  (v = sum_t c_t theta_t); <v, w> = c^T P d. Drifts theta_t - theta_ref, updates theta_s - theta_s' and
  switching displacements theta_peak - theta_trough have coefficients +1 / -1, and every direction built from
  them has coefficients that sum to zero. So P may be the Gram of theta_t - theta_a for any anchor a (the
  I/O layer anchors at the first checkpoint, which keeps far more digits than raw P): the results are identical.
  A direction becomes an explicit vector through a second pass over the checkpoints
  (`drift.analysis.gram_stream.materialize`; `materialize_dense` for an in-memory matrix).
- Uncentered PCA of drift rows X (optionally row-normalized, x_t / ||x_t||) is the eigendecomposition of the
  row Gram X X^T: sigma_k^2 = eigenvalues, u_k = eigenvectors, v_k = X^T u_k / sigma_k.
- Sign convention: v_1 is flipped so that <x_last, v_1> > 0 (x_last = the last row's raw drift). For k >= 2,
  which the paper leaves unsigned, the row with the largest |coordinate| gets a positive coordinate.
- Explained fractions are reported twice: `fractions_full` (all sigma^2 in the denominator, the definition) and
  `fractions_top10` (only the top 10, the reference code's randomized-SVD quirk, PROTOCOL 8.5).

`dense_pca` does the same PCA with numpy's SVD on an explicit matrix: the reference for the tests, and usable
on small problems. Results convert to JSON with `jsonable`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

TOP_K_DENOMINATOR = 10  # the reference code's randomized SVD keeps 10 singular values (PROTOCOL A2)
RANK_RTOL = 1e-12  # components with sigma^2 below this fraction of sigma_1^2 have no meaningful direction


# --------------------------------------------------------------------------------------------------------------
# Trajectory: steps + Gram matrix, and coefficient-vector algebra
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trajectory:
    """Checkpoint steps (strictly increasing) and the T x T Gram matrix P of their parameter vectors."""

    steps: np.ndarray
    P: np.ndarray

    def __post_init__(self) -> None:
        steps = np.asarray(self.steps, dtype=np.int64).reshape(-1)
        P = np.asarray(self.P, dtype=np.float64)
        if steps.size and np.any(np.diff(steps) <= 0):
            raise ValueError("steps must be strictly increasing")
        if P.shape != (steps.size, steps.size):
            raise ValueError(f"P has shape {P.shape}, expected {(steps.size, steps.size)}")
        if not np.all(np.isfinite(P)):
            raise ValueError("P has non-finite entries")
        # Accumulation order can leave P asymmetric in the last bits; eigh assumes exact symmetry.
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "P", 0.5 * (P + P.T))

    @classmethod
    def from_dense(cls, steps: Sequence[int], thetas: np.ndarray, anchor: bool = True) -> "Trajectory":
        """Build from an explicit (T, D) matrix; `anchor` subtracts theta_0 first, as the I/O layer does."""
        X = np.asarray(thetas, dtype=np.float64)
        if anchor:
            X = X - X[0]
        return cls(np.asarray(steps), X @ X.T)

    @property
    def T(self) -> int:
        return int(self.steps.size)

    def index(self, step: int) -> int:
        i = int(np.searchsorted(self.steps, step))
        if i >= self.T or self.steps[i] != step:
            raise KeyError(f"no checkpoint at step {step}")
        return i

    def indices(self, steps: Iterable[int]) -> np.ndarray:
        s = np.asarray(steps if isinstance(steps, np.ndarray) else list(steps), dtype=np.int64).reshape(-1)
        i = np.searchsorted(self.steps, s)
        bad = (i >= self.T) | (self.steps[np.minimum(i, max(self.T - 1, 0))] != s) if self.T else s == s
        if bad.any():
            raise KeyError(f"no checkpoint at step {int(s[np.argmax(bad)])}")
        return i.astype(np.int64)

    def has(self, step: int) -> bool:
        i = int(np.searchsorted(self.steps, step))
        return i < self.T and self.steps[i] == step

    def steps_in(self, lo: float, hi: float) -> np.ndarray:
        """Checkpoint steps s with lo < s <= hi (the protocol's window convention)."""
        return self.steps[(self.steps > lo) & (self.steps <= hi)]

    def combo(self, weights: Mapping[int, float]) -> np.ndarray:
        """Coefficient vector of sum_s weights[s] * theta_s."""
        c = np.zeros(self.T)
        for step, w in weights.items():
            c[self.index(int(step))] += float(w)
        return c

    def diff(self, plus_step: int, minus_step: int) -> np.ndarray:
        """Coefficient vector of theta_plus - theta_minus."""
        return self.combo({plus_step: 1.0}) - self.combo({minus_step: 1.0})

    def drift_coefs(self, ref_step: int, row_steps: Iterable[int]) -> np.ndarray:
        """(n, T) coefficients of the drift rows theta_s - theta_ref."""
        rows = self.indices(row_steps)
        C = np.zeros((rows.size, self.T))
        C[np.arange(rows.size), rows] = 1.0
        C[:, self.index(ref_step)] -= 1.0
        return C

    def drift_gram(self, ref_step: int, row_steps: Iterable[int]) -> np.ndarray:
        """Gram matrix of the drift rows, G = P_RR - P_Rr - P_rR + P_rr.

        Differences are taken before the second subtraction ((P_ij - P_rj) - (P_ir - P_rr)), which keeps the
        two large-magnitude cancellations paired; the remaining error is ~eps * max|P|, hence anchored P.
        """
        R = self.indices(row_steps)
        r = self.index(ref_step)
        pr = self.P[R, r]
        G = (self.P[np.ix_(R, R)] - pr[None, :]) - (pr[:, None] - self.P[r, r])
        return 0.5 * (G + G.T)

    def inner(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """<v_a, v_b> for coefficient vectors (or stacks of them, one per row)."""
        return np.asarray(a) @ self.P @ np.asarray(b).T

    def norm(self, c: np.ndarray) -> float:
        return math.sqrt(max(float(self.inner(c, c)), 0.0))

    def normalize(self, c: np.ndarray) -> np.ndarray:
        n = self.norm(c)
        if n == 0.0:
            raise ValueError("cannot normalize a zero vector")
        return np.asarray(c, dtype=np.float64) / n

    def cos(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(self.inner(a, b)) / (self.norm(a) * self.norm(b))


# --------------------------------------------------------------------------------------------------------------
# PCA of drift rows (Gram route and dense reference)
# --------------------------------------------------------------------------------------------------------------

@dataclass
class PCAResult:
    """Uncentered (or centered) PCA of drift rows.

    `directions[k]` is v_{k+1}: a coefficient vector over `basis_steps` (Gram route) or, when `basis_steps` is
    None, an explicit parameter-space vector (dense route). `coords[i, k]` = <row_i, v_{k+1}>, where row_i is
    the row actually decomposed (normalized and/or centered as flagged).
    """

    row_steps: np.ndarray
    ref_step: int | None
    row_normalized: bool
    centered: bool
    sigma2: np.ndarray
    fractions_full: np.ndarray
    fractions_top10: np.ndarray
    k95: int
    k99: int
    directions: np.ndarray
    coords: np.ndarray
    basis_steps: np.ndarray | None

    @property
    def rho1(self) -> float:
        return float(self.fractions_full[0])

    @property
    def backbone(self) -> np.ndarray:
        return self.directions[0]

    def summary(self) -> dict:
        """JSON-ready spectrum summary (no directions)."""
        return jsonable({
            "row_steps": self.row_steps, "ref_step": self.ref_step, "n_rows": int(self.row_steps.size),
            "row_normalized": self.row_normalized, "centered": self.centered, "sigma2": self.sigma2,
            "fractions_full": self.fractions_full, "fractions_top10": self.fractions_top10,
            "k95": self.k95, "k99": self.k99,
        })


def _spectrum(sigma2: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    total = float(sigma2.sum())
    if total <= 0.0:
        raise ValueError("all drift rows are zero")
    full = sigma2 / total
    top = sigma2[:TOP_K_DENOMINATOR]
    top10 = top / float(top.sum())
    cum = np.cumsum(full)
    # The tolerance keeps k exact when the cumulative sum lands on 0.95 up to rounding.
    k95 = int(np.searchsorted(cum, 0.95 - 1e-12) + 1)
    k99 = int(np.searchsorted(cum, 0.99 - 1e-12) + 1)
    return full, top10, min(k95, sigma2.size), min(k99, sigma2.size)


def _n_components(sigma2: np.ndarray, n_directions: int) -> int:
    rank = int(np.sum(sigma2 > RANK_RTOL * sigma2[0])) if sigma2[0] > 0 else 0
    return min(n_directions, rank)


def _sign_flips(coords: np.ndarray, last_proj: np.ndarray) -> np.ndarray:
    """+1/-1 per component: v_1 by <x_last, v_1> > 0, others by their largest-|coordinate| row."""
    signs = np.ones(coords.shape[1])
    for k in range(coords.shape[1]):
        if k == 0:
            signs[k] = -1.0 if last_proj[0] < 0 else 1.0
        else:
            i = int(np.argmax(np.abs(coords[:, k])))
            signs[k] = -1.0 if coords[i, k] < 0 else 1.0
    return signs


def _prepare_rows(G: np.ndarray, row_normalize: bool, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row transform as an (n, n) matrix M (rows_used = M @ rows) and the transformed Gram M G M^T."""
    n = G.shape[0]
    M = np.eye(n)
    if row_normalize:
        norms2 = np.diag(G).copy()
        if np.any(norms2 <= 0):
            raise ValueError("row-normalization needs every drift row to be non-zero")
        M = M / np.sqrt(norms2)[:, None]
    if center:
        M = (np.eye(n) - 1.0 / n) @ M
    Gu = M @ G @ M.T
    return M, 0.5 * (Gu + Gu.T)


def pca_rows(traj: Trajectory, C: np.ndarray, *, row_steps: Sequence[int], ref_step: int | None = None,
             row_normalize: bool = False, center: bool = False, n_directions: int = 10,
             gram: np.ndarray | None = None) -> PCAResult:
    """PCA of arbitrary rows given by their (n, T) coefficient matrix C (Gram route); `gram` = C P C^T if known."""
    C = np.asarray(C, dtype=np.float64)
    M, G = _prepare_rows(traj.inner(C, C) if gram is None else gram, row_normalize, center)
    evals, U = np.linalg.eigh(G)
    order = np.argsort(evals)[::-1]
    sigma2 = np.clip(evals[order], 0.0, None)
    U = U[:, order]
    full, top10, k95, k99 = _spectrum(sigma2)
    K = _n_components(sigma2, n_directions)
    sigma = np.sqrt(sigma2[:K])
    directions = (U[:, :K].T @ (M @ C)) / sigma[:, None]
    coords = U[:, :K] * sigma[None, :]
    signs = _sign_flips(coords, traj.inner(C[-1], directions))
    return PCAResult(np.asarray(row_steps, dtype=np.int64), ref_step, row_normalize, center, sigma2, full, top10,
                     k95, k99, directions * signs[:, None], coords * signs[None, :], traj.steps.copy())


def drift_pca(traj: Trajectory, ref_step: int, row_steps: Sequence[int] | None = None, *,
              row_normalize: bool = False, center: bool = False, n_directions: int = 10) -> PCAResult:
    """PCA of the drifts theta_s - theta_ref over row_steps (default: every checkpoint after ref_step).

    Uncentered unless `center` (the centered variant subtracts the mean row, after any row-normalization).
    """
    if row_steps is None:
        row_steps = traj.steps[traj.steps > ref_step]
    row_steps = np.asarray(row_steps, dtype=np.int64)
    C = traj.drift_coefs(ref_step, row_steps)
    return pca_rows(traj, C, row_steps=row_steps, ref_step=ref_step, row_normalize=row_normalize,
                    center=center, n_directions=n_directions, gram=traj.drift_gram(ref_step, row_steps))


def dense_pca(steps: Sequence[int], thetas: np.ndarray, ref_step: int, row_steps: Sequence[int] | None = None, *,
              row_normalize: bool = False, center: bool = False, n_directions: int = 10) -> PCAResult:
    """Reference PCA of explicit (T, D) checkpoint vectors via numpy's SVD; directions are dense vectors."""
    steps = np.asarray(steps, dtype=np.int64)
    thetas = np.asarray(thetas, dtype=np.float64)
    if row_steps is None:
        row_steps = steps[steps > ref_step]
    row_steps = np.asarray(row_steps, dtype=np.int64)
    pos = {int(s): i for i, s in enumerate(steps)}
    X_raw = thetas[[pos[int(s)] for s in row_steps]] - thetas[pos[int(ref_step)]]
    X = X_raw
    if row_normalize:
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
    if center:
        X = X - X.mean(axis=0, keepdims=True)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    sigma2 = s ** 2
    full, top10, k95, k99 = _spectrum(sigma2)
    K = _n_components(sigma2, n_directions)
    directions = Vt[:K]
    coords = X @ directions.T
    signs = _sign_flips(coords, X_raw[-1] @ directions.T)
    return PCAResult(row_steps, int(ref_step), row_normalize, center, sigma2, full, top10, k95, k99,
                     directions * signs[:, None], coords * signs[None, :], None)


def materialize_dense(coefs: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """Dense vector(s) sum_t c_t theta_t from coefficient vector(s) and explicit (T, D) checkpoints."""
    return np.asarray(coefs) @ np.asarray(thetas, dtype=np.float64)


# --------------------------------------------------------------------------------------------------------------
# A3: backbone / residual decomposition
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Decomposition:
    """x_t = a(t) v_b + r(t) for the raw drifts; speeds are labeled at interval midpoints."""

    steps: np.ndarray
    a: np.ndarray
    residual_norm: np.ndarray
    drift_norm: np.ndarray
    f_b: np.ndarray
    speed_steps: np.ndarray
    a_dot: np.ndarray
    r_dot: np.ndarray

    @property
    def f_b_final(self) -> float:
        return float(self.f_b[-1])

    @property
    def f_b_mean(self) -> float:
        return float(np.nanmean(self.f_b))

    def to_dict(self) -> dict:
        d = jsonable(dataclasses.asdict(self))
        d.update(f_b_final=self.f_b_final, f_b_mean=self.f_b_mean)
        return d


def decompose(traj: Trajectory, backbone: np.ndarray, ref_step: int,
              row_steps: Sequence[int] | None = None) -> Decomposition:
    """A3: a(t) = <x_t, v_b>, ||r(t)||, f_b = a^2/||x||^2, and the speeds da/dt, ||dr||/dt.

    Uses ||dr||^2 = ||u||^2 - (da)^2 for the update u between consecutive rows, since <u, v_b> = da.
    """
    if row_steps is None:
        row_steps = traj.steps[traj.steps > ref_step]
    row_steps = np.asarray(row_steps, dtype=np.int64)
    v = traj.normalize(backbone)
    C = traj.drift_coefs(ref_step, row_steps)
    a = traj.inner(C, v)
    drift2 = np.diag(traj.drift_gram(ref_step, row_steps)).copy()
    residual = np.sqrt(np.clip(drift2 - a ** 2, 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        f_b = np.where(drift2 > 0, a ** 2 / drift2, np.nan)
    dt = np.diff(row_steps).astype(np.float64)
    da = np.diff(a)
    U = C[1:] - C[:-1]
    u2 = np.einsum("ij,ij->i", U @ traj.P, U)
    r_dot = np.sqrt(np.clip(u2 - da ** 2, 0.0, None)) / dt
    mids = 0.5 * (row_steps[1:] + row_steps[:-1])
    return Decomposition(row_steps, a, residual, np.sqrt(np.clip(drift2, 0.0, None)), f_b, mids, da / dt, r_dot)


# --------------------------------------------------------------------------------------------------------------
# A4: rolling backbones
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# A5: phase backbones
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# A8: update alignment
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# A11: switching
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# A12: window geometry; isotropic noise floors
# --------------------------------------------------------------------------------------------------------------

def window_geometry(traj: Trajectory, window_steps: Sequence[int]) -> dict:
    """A12: anchor = first checkpoint of the window, rows = the later ones minus it, row-normalized uncentered PCA;
    rho_1 (full and top-10 denominators), k95, k99 and drift = ||theta_end - theta_anchor||."""
    w = np.asarray(window_steps, dtype=np.int64)
    pca = drift_pca(traj, int(w[0]), w[1:], row_normalize=True, n_directions=1)
    return {"window_steps": jsonable(w), "anchor_step": int(w[0]), "n_rows": int(w.size - 1),
            "rho1_full": pca.rho1, "rho1_top10": float(pca.fractions_top10[0]),
            "k95": pca.k95, "k99": pca.k99, "drift": traj.norm(traj.diff(int(w[-1]), int(w[0])))}


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


# --------------------------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------------------------

def jsonable(obj):
    """Recursively convert numpy arrays/scalars, tuples and dataclasses to plain JSON types (NaN stays float)."""
    # Scalars first: they are by far the most frequent, and is_dataclass is slow.
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.dtype != object else jsonable(obj.tolist())
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    return obj
