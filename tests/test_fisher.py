"""Tests for drift.geometry.fisher: Rayleigh quotients, anisotropy and the top Fisher eigenvector against closed forms,
and the isotropic |cos| floor.

Run: pytest tests/test_fisher.py
"""
import math

import numpy as np
import pytest
import torch

from drift.geometry import fisher as fm
from drift.geometry.alignment import iso_abs_cos_mean, iso_cos_rms


def _least_squares_gradients(rng, M=12, b=5, D=7):
    """Mini-batch-mean gradients of L_i(theta) = ||X_i theta - y_i||^2 / (2b) in closed form:
    g_i = X_i^T (X_i theta - y_i) / b. Returns G (M, D) and the Fisher F = G^T G / M."""
    theta = rng.standard_normal(D)
    G = np.stack([X.T @ (X @ theta - y) / b
                  for X, y in ((rng.standard_normal((b, D)), rng.standard_normal(b)) for _ in range(M))])
    return G, G.T @ G / M


def test_rayleigh_quotients_match_closed_form_fisher():
    rng = np.random.default_rng(0)
    G, F = _least_squares_gradients(rng)
    V = rng.standard_normal((4, G.shape[1]))
    q = fm.rayleigh_quotients(torch.from_numpy(G), torch.from_numpy(V))
    expected = np.einsum("nd,de,ne->n", V, F, V) / np.einsum("nd,nd->n", V, V)
    np.testing.assert_allclose(q.numpy(), expected, rtol=1e-12)


def test_top_eigenvector_via_small_gram_matches_dense_eigh():
    rng = np.random.default_rng(1)
    G, F = _least_squares_gradients(rng, M=6, D=20)  # M < D: the M x M route is the point
    evals, evecs = np.linalg.eigh(F)
    lam1, u1 = fm.top_eigenvector(torch.from_numpy(G))
    assert lam1 == pytest.approx(evals[-1], rel=1e-10)
    assert abs(float(u1.numpy() @ evecs[:, -1])) == pytest.approx(1.0, abs=1e-10)
    g_evals, _ = fm.gram_eigen(torch.from_numpy(G))
    np.testing.assert_allclose(g_evals.numpy(), evals[::-1][:6], rtol=1e-9, atol=1e-12)


def test_fisher_readouts_planted_anisotropy_and_eigvec_overlap():
    """Gradients with variance 100 along e_0 and 1 elsewhere: alpha(e_0) ~ 100 against random directions _|_ e_0,
    and |<u_1, e_0>| ~ 1. The readouts must equal their dense formulas exactly for the same random directions."""
    rng = np.random.default_rng(2)
    M, D = 64, 400
    G = rng.standard_normal((M, D))
    G[:, 0] *= 10.0
    F = G.T @ G / M
    e0 = np.zeros(D); e0[0] = 1.0
    e1 = np.zeros(D); e1[1] = 1.0
    out = fm.fisher_readouts(torch.from_numpy(G), {"v_b": torch.from_numpy(e0), "v_pc2": torch.from_numpy(e1),
                                                   "v_sw": None}, n_random=10, seed=3)
    W = fm.orthonormal_random(10, D, exclude=torch.from_numpy(e0), seed=3, dtype=torch.float64).numpy()
    q_w = np.einsum("nd,de,ne->n", W, F, W)
    np.testing.assert_allclose(out["q_random"], q_w, rtol=1e-10)
    assert out["q"]["v_b"] == pytest.approx(F[0, 0], rel=1e-12) and out["q"]["v_sw"] is None
    assert out["alpha"] == pytest.approx(F[0, 0] / q_w.mean(), rel=1e-12)
    assert 60 < out["alpha"] < 160
    evals, evecs = np.linalg.eigh(F)
    assert out["lambda_1"] == pytest.approx(evals[-1], rel=1e-10)
    assert out["u1_overlap"]["v_b"] == pytest.approx(abs(evecs[0, -1]), rel=1e-8)
    assert out["u1_overlap"]["v_b"] > 0.95 and out["u1_overlap"]["v_sw"] is None
    assert out["trace"] == pytest.approx(np.trace(F), rel=1e-10)
    assert out["isotropic_q"] == pytest.approx(np.trace(F) / D, rel=1e-10)


def test_orthonormal_random_is_orthonormal_and_orthogonal_to_excluded():
    rng = np.random.default_rng(4)
    D = 300
    v = torch.from_numpy(rng.standard_normal(D))
    W = fm.orthonormal_random(10, D, exclude=v, seed=5, dtype=torch.float64)
    np.testing.assert_allclose((W @ W.T).numpy(), np.eye(10), atol=1e-12)
    np.testing.assert_allclose((W @ (v / v.norm())).numpy(), 0.0, atol=1e-12)
    again = fm.orthonormal_random(10, D, exclude=v, seed=5, dtype=torch.float64)
    assert torch.equal(W, again)  # seeded: the same directions on every call and device
    # float32 at larger D still orthogonal to a few 1e-7
    W32 = fm.orthonormal_random(4, 200_000, exclude=torch.ones(200_000), seed=0)
    assert float((W32 @ W32.T - torch.eye(4)).abs().max()) < 1e-5
    assert float((W32 @ torch.ones(200_000)).abs().max()) / math.sqrt(200_000) < 1e-5


def test_random_unit_vectors_give_isotropic_floor():
    """Mean |cos| of random directions with fixed vectors ~ sqrt(2/(pi D)); RMS ~ 1/sqrt(D)."""
    D = 4000
    X = torch.randn(4, D, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.1, 5, D)  # anisotropic
    c = fm.random_abs_cos(X, n_random=500, seed=1)
    assert c.shape == (4, 500)
    floor = iso_abs_cos_mean(D, exact=False)
    assert float(c.mean()) == pytest.approx(floor, rel=0.06)
    assert float(c.pow(2).mean().sqrt()) == pytest.approx(iso_cos_rms(D), rel=0.06)
    # direct check of the formula with plain Gaussian vectors, independent of random_abs_cos
    R = torch.randn(2000, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    e = torch.zeros(D, dtype=torch.float64); e[7] = 1.0
    assert float(fm.abs_cos_with(R, e).mean()) == pytest.approx(floor, rel=0.06)


def test_abs_cos_with_and_anisotropy():
    X = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    np.testing.assert_allclose(fm.abs_cos_with(X, torch.tensor([0.0, 1.0])).numpy(), [0.8, 1.0])
    assert fm.anisotropy(2.0, [1.0, 3.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fm.unit_rows(torch.zeros(1, 3))
