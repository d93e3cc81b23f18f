"""Curvature and alignment math on a stack of gradients (PROTOCOL A9, A10). Pure torch, no I/O.

G is an (M, D) matrix whose rows are mini-batch-mean gradients g_i; directions are rows of a (n, D) matrix V.
The empirical Fisher of the mini-batch gradients is F = G^T G / M (D x D, never built). Everything comes from
the (M, n) product G V^T and the M x M Gram G G^T:

  q(v)      = ||G v||^2 / (M ||v||^2)                       Rayleigh quotient of F
  alpha     = q(v_b) / mean_k q(w_k)                        anisotropy against random directions w_k _|_ v_b
  lambda_1  = top eigenvalue of G G^T / M = top eigenvalue of F
  u_1       = G^T w_1 / ||G^T w_1||   (w_1 = top eigenvector of G G^T / M), so
  <u_1, v>  = w_1^T (G v) / sqrt(M lambda_1)                without materializing u_1

Random directions are drawn on the CPU from a seeded generator and then moved, so a run gives the same
directions on every device.

    out = fisher_readouts(G, {"v_b": v_b, "v_pc2": v_pc2, "v_sw": v_sw}, n_random=10, seed=0)
"""
from __future__ import annotations

import math

import torch

ORTHO_PASSES = 2  # a second Gram-Schmidt pass restores the orthogonality float32 loses in 25M-dim dot products


def unit_rows(V: torch.Tensor) -> torch.Tensor:
    """Each row divided by its norm; a zero row is an error (a direction must have a direction)."""
    norms = V.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("cannot normalize a zero direction")
    return V / norms


def gaussian_rows(n: int, dim: int, seed: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(n, dim) standard normal rows from a CPU generator seeded with `seed`, moved to `device`."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(n, dim, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)


def orthonormal_random(n: int, dim: int, exclude: torch.Tensor | None = None, seed: int = 0,
                       dtype=torch.float32, device=None) -> torch.Tensor:
    """(n, dim) orthonormal Gaussian directions, orthogonal to every row of `exclude` (a (dim,) or (m, dim) tensor).

    Gaussian rows with the excluded span projected out and then Gram-Schmidt-orthonormalized against each other
    (PROTOCOL A10: the paper's w_k, K = 10, orthogonal to v_b).
    """
    basis: list[torch.Tensor] = []
    if exclude is not None:
        ex = exclude.reshape(-1, dim).to(device=device, dtype=dtype)
        for row in ex:
            _append_orthonormal(basis, row.clone())
    n_fixed = len(basis)
    W = gaussian_rows(n, dim, seed, dtype, device)
    for row in W:
        if not _append_orthonormal(basis, row):
            raise ValueError("random direction fell into the excluded span; use a larger dimension")
    return torch.stack(basis[n_fixed:]) if n else W[:0]


def _append_orthonormal(basis: list[torch.Tensor], r: torch.Tensor) -> bool:
    """Orthonormalize r against `basis` and append it; False (nothing appended) if r lies in their span."""
    start = float(r.norm())
    for _ in range(ORTHO_PASSES):
        for q in basis:
            r = r - torch.dot(q, r) * q
    norm = float(r.norm())
    if norm <= 1e-4 * start:
        return False
    basis.append(r / norm)
    return True


def quotients_from_product(GV: torch.Tensor, M: int, v_norms: torch.Tensor | None = None) -> torch.Tensor:
    """q(v) = ||G v||^2 / (M ||v||^2) for each column of the product G V^T (float64); v_norms None = unit rows."""
    q = (GV.double() ** 2).sum(0) / M
    return q if v_norms is None else q / (v_norms.double().to(q.device) ** 2)


def rayleigh_quotients(G: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """q(v) = ||G v||^2 / (M ||v||^2) for each row v of V (float64, shape (n,))."""
    return quotients_from_product(G @ V.T, G.shape[0], V.norm(dim=1))


def anisotropy(q_direction: float, q_random) -> float:
    """alpha = q(v) / mean q(w_k)."""
    q_random = torch.as_tensor(q_random, dtype=torch.float64)
    return float(q_direction) / float(q_random.mean())


def gram_eigen(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors (columns) of G G^T / M, in float64 on the CPU.

    The nonzero eigenvalues are exactly those of the Fisher G^T G / M.
    """
    K = (G @ G.T).double().cpu() / G.shape[0]
    evals, evecs = torch.linalg.eigh(0.5 * (K + K.T))
    order = torch.argsort(evals, descending=True)
    return evals[order].clamp(min=0.0), evecs[:, order]


def top_eigenvector(G: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(lambda_1, u_1) of the Fisher G^T G / M through the M x M Gram: u_1 = G^T w_1 / ||G^T w_1||."""
    evals, W = gram_eigen(G)
    u = G.T @ W[:, 0].to(G.device, G.dtype)
    return float(evals[0]), u / u.norm()


def eigvec_overlaps(GV: torch.Tensor, w1: torch.Tensor, lambda1: float, M: int, v_norms: torch.Tensor) -> torch.Tensor:
    """|<u_1, v>| for every direction v from the (M, n) product G V^T, without building u_1."""
    if lambda1 <= 0:
        return torch.full((GV.shape[1],), float("nan"), dtype=torch.float64)
    proj = w1.double() @ GV.double().cpu()
    return proj.abs() / math.sqrt(M * lambda1) / v_norms.double().cpu()


def random_abs_cos(X: torch.Tensor, n_random: int, seed: int = 0, chunk: int = 16) -> torch.Tensor:
    """|cos| of each row of X with `n_random` isotropic random directions: the empirical noise floor, (n, n_random).

    Drawn in chunks so memory stays near `chunk` directions of X's dimension.
    """
    Xn = unit_rows(X.float())
    out = []
    for i, lo in enumerate(range(0, n_random, chunk)):
        R = unit_rows(gaussian_rows(min(chunk, n_random - lo), X.shape[1], seed * 1_000_003 + i, device=X.device))
        out.append((Xn @ R.T).abs().double().cpu())
    return torch.cat(out, dim=1) if out else torch.zeros(X.shape[0], 0, dtype=torch.float64)


def abs_cos_with(X: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """|cos(x_i, v)| for each row of X (float64 on the CPU)."""
    dots = (X @ v.to(X.dtype)).double()
    return (dots.abs() / (X.double().norm(dim=1) * float(v.double().norm()))).cpu()


def fisher_readouts(G: torch.Tensor, named: dict[str, torch.Tensor | None], backbone: str = "v_b",
                    n_random: int = 10, seed: int = 0) -> dict:
    """PROTOCOL A10 readouts from one matrix product G @ V^T, V = [named directions; K random w_k _|_ backbone].

    `named` maps names to (D,) directions (None = unavailable, reported as None). Returns q for each named
    direction and each w_k, alpha = q(backbone) / mean q(w), alpha of the other named directions, lambda_1,
    the M eigenvalues of G G^T / M, |<u_1, v>| for each named direction, the trace of the Fisher and its
    isotropic value trace / D (what mean q(w) should be for an isotropic Fisher).
    """
    M, D = G.shape
    names = [k for k, v in named.items() if v is not None]
    if backbone not in names:
        raise ValueError(f"the backbone direction {backbone!r} is required")
    fixed = unit_rows(torch.stack([named[k].to(G.device, G.dtype).reshape(-1) for k in names]))
    W = orthonormal_random(n_random, D, exclude=fixed[names.index(backbone)], seed=seed, dtype=G.dtype,
                           device=G.device)
    V = torch.cat([fixed, W])
    GV = (G @ V.T).double()
    q = quotients_from_product(GV, M).cpu()
    q_named = dict(zip(names, q[:len(names)].tolist()))
    q_random = q[len(names):]
    evals, evecs = gram_eigen(G)
    lam1 = float(evals[0])
    overlaps = eigvec_overlaps(GV[:, :len(names)], evecs[:, 0], lam1, M, torch.ones(len(names)))
    mean_random = float(q_random.mean()) if n_random else float("nan")
    trace = float(evals.sum())
    return {
        "M": M, "D": D, "n_random": n_random, "seed": seed,
        "q": {k: q_named.get(k) for k in named},
        "q_random": q_random.tolist(), "q_random_mean": mean_random,
        "q_random_std": float(q_random.std()) if n_random > 1 else float("nan"),
        "alpha": anisotropy(q_named[backbone], q_random) if n_random else float("nan"),
        "alpha_of": {k: (anisotropy(q_named[k], q_random) if k in q_named and n_random else None) for k in named},
        "lambda_1": lam1, "eigenvalues": evals.tolist(),
        "u1_overlap": {k: (float(overlaps[names.index(k)]) if k in q_named else None) for k in named},
        "q_backbone_over_lambda_1": q_named[backbone] / lam1 if lam1 > 0 else float("nan"),
        "trace": trace, "isotropic_q": trace / D,
    }
