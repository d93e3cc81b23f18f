"""Dense references the tests check the analyses against: a run's checkpoints as an explicit (T, D) float64 matrix
and its uncentered PCA by numpy's SVD. Written without drift.geometry (no Gram matrices, coefficient vectors or
shared spectrum code), so a number the analysis reports can be compared with one it did not compute.

    X = thetas(run_dir, [1, 5, 10], "trunk")          # rows = checkpoints, columns = sorted trunk parameters
    shares(X[1:] - X[0], normalize=True)             # explained fractions, largest first
"""
from __future__ import annotations

import numpy as np

from drift.run import checkpoint as ck

MATRICES = ("attn.qkv.weight", "attn.out_proj.weight", "mlp.w_up.weight", "mlp.w_down.weight")


def param_keys(state: dict, scope: str) -> list[str]:
    """"trunk" (the four matrices of every block), "block<l>" (those of block l) or "block<l>+ln" (every
    parameter of block l); sorted, though no test quantity depends on the column order."""
    if scope == "trunk":
        keep = [k for k in state if k.startswith("blocks.") and k.split(".", 2)[2] in MATRICES]
    else:
        layer, ln = scope[len("block"):].partition("+ln")[:2]
        prefix = f"blocks.{layer}."
        keep = [k for k in state if k.startswith(prefix) and (ln or k[len(prefix):] in MATRICES)]
    assert keep, scope
    return sorted(keep)


def flat(state: dict, scope: str) -> np.ndarray:
    return np.concatenate([state[k].detach().double().reshape(-1).numpy() for k in param_keys(state, scope)])


def thetas(run_dir, steps, scope: str = "trunk") -> np.ndarray:
    return np.stack([flat(ck.load_checkpoint(run_dir, s)["model"], scope) for s in steps])


def _rows(X: np.ndarray, normalize: bool) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True) if normalize else X


def shares(X: np.ndarray, normalize: bool = False) -> np.ndarray:
    """sigma_k^2 / sum sigma^2 of the rows of X (row-normalized first if asked)."""
    s2 = np.linalg.svd(_rows(X, normalize), compute_uv=False) ** 2
    return s2 / s2.sum()


def pc1(X: np.ndarray, normalize: bool = False) -> np.ndarray:
    """The unit first right singular vector of the rows of X, signed so that the last raw row projects positively."""
    v = np.linalg.svd(_rows(X, normalize), full_matrices=False)[2][0]
    return v if X[-1] @ v > 0 else -v


def k_for(fractions: np.ndarray, level: float) -> int:
    """The fewest leading components whose shares add up to at least `level`."""
    total, k = 0.0, 0
    while total < level - 1e-12:
        total += fractions[k]
        k += 1
    return k
