"""Uncentered PCA of drift rows through the Gram matrix (PROTOCOL A1-A2), and the dense reference.

- Uncentered PCA of drift rows X (optionally row-normalized, x_t / ||x_t||) is the eigendecomposition of the
  row Gram X X^T: sigma_k^2 = eigenvalues, u_k = eigenvectors, v_k = X^T u_k / sigma_k.
- Sign convention: v_1 is flipped so that <x_last, v_1> > 0 (x_last = the last row's raw drift). For k >= 2,
  which the paper leaves unsigned, the row with the largest |coordinate| gets a positive coordinate.
- Explained fractions are reported twice: `fractions_full` (all sigma^2 in the denominator, the definition) and
  `fractions_top10` (only the top 10, the reference code's randomized-SVD quirk, PROTOCOL 8.5).

`dense_pca` does the same PCA with numpy's SVD on an explicit matrix: the reference for the tests, and usable
on small problems.

    pca = drift_pca(traj, ref_step=1, row_normalize=True)     # pca.rho1, pca.backbone (coefficients), pca.k95
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from drift.geometry.jsonable import jsonable
from drift.geometry.trajectory import Trajectory

TOP_K_DENOMINATOR = 10  # the reference code's randomized SVD keeps 10 singular values (PROTOCOL A2)
RANK_RTOL = 1e-12  # components with sigma^2 below this fraction of sigma_1^2 have no meaningful direction


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
