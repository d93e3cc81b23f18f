"""Tests for drift.geometry (trajectory, pca, decomposition, windows, alignment, switching, jsonable): the Gram-route
analyses against dense numpy references and planted answers.

Run: pytest tests/test_geometry.py
"""
import json
import math

import numpy as np
import pytest

from drift.geometry.alignment import (first_persistent_sign_flip, iso_abs_cos_mean, iso_cos_rms, update_alignment,
                                      update_pairs)
from drift.geometry.decomposition import decompose
from drift.geometry.pca import dense_pca, drift_pca, materialize_dense
from drift.geometry.switching import (displacement_dimension, extended_switch_pairs, find_peaks_troughs,
                                      switch_geometry, switch_pairs)
from drift.geometry.trajectory import Trajectory
from drift.geometry.windows import phase_backbones, rolling_backbone, rolling_backbone_global_ref, window_geometry


def _orthonormal(rng, D, k):
    q, _ = np.linalg.qr(rng.standard_normal((D, k)))
    return q.T


def _random_walk(rng, T=12, D=200, offset=0.0):
    steps = np.arange(T) * 100
    thetas = offset + np.cumsum(rng.standard_normal((T, D)), axis=0)
    return steps, thetas


def _assert_same_pca(traj, thetas, gram, dense):
    np.testing.assert_allclose(gram.fractions_full, dense.fractions_full, atol=1e-10)
    np.testing.assert_allclose(gram.fractions_top10, dense.fractions_top10, atol=1e-10)
    np.testing.assert_allclose(gram.sigma2, dense.sigma2, rtol=1e-9, atol=1e-9 * dense.sigma2[0])
    assert (gram.k95, gram.k99) == (dense.k95, dense.k99)
    V = materialize_dense(gram.directions, thetas)
    K = dense.directions.shape[0]
    # Both routes apply the same sign convention, so the directions agree with their signs.
    np.testing.assert_allclose(V[:K], dense.directions, atol=1e-8)
    np.testing.assert_allclose(gram.coords[:, :K], dense.coords, atol=1e-8 * np.abs(dense.coords).max())
    np.testing.assert_allclose(traj.inner(gram.directions, gram.directions), np.eye(len(gram.directions)),
                               atol=1e-9)
    # Zero-sum coefficients are what make the anchor of P (and of the streamed materialization) irrelevant.
    np.testing.assert_allclose(gram.directions.sum(axis=1), 0.0, atol=1e-9 * np.abs(gram.directions).max())


@pytest.mark.parametrize("row_normalize", [False, True])
@pytest.mark.parametrize("center", [False, True])
def test_gram_pca_matches_dense_svd(row_normalize, center):
    rng = np.random.default_rng(0)
    steps, thetas = _random_walk(rng)
    traj = Trajectory.from_dense(steps, thetas)
    kw = dict(row_normalize=row_normalize, center=center, n_directions=5)
    _assert_same_pca(traj, thetas, drift_pca(traj, 0, **kw), dense_pca(steps, thetas, 0, **kw))


@pytest.mark.parametrize("row_normalize", [False, True])
def test_gram_pca_non_first_reference_and_raw_gram(row_normalize):
    rng = np.random.default_rng(1)
    steps, thetas = _random_walk(rng, offset=3.0)
    rows = [s for s in steps if s != 400]  # rows on both sides of the reference
    dense = dense_pca(steps, thetas, 400, rows, row_normalize=row_normalize)
    for anchor in (True, False):  # the anchor of P cancels in every drift
        traj = Trajectory.from_dense(steps, thetas, anchor=anchor)
        gram = drift_pca(traj, 400, rows, row_normalize=row_normalize)
        _assert_same_pca(traj, thetas, gram, dense)


def test_drift_gram_matches_dense_and_anchoring_keeps_digits():
    rng = np.random.default_rng(2)
    steps, thetas = _random_walk(rng, T=6, D=50)
    thetas = thetas * 1e-3 + 1e3  # tiny drifts on a huge common offset
    X = thetas[[1, 3, 5]] - thetas[2]
    anchored = Trajectory.from_dense(steps, thetas, anchor=True)
    np.testing.assert_allclose(anchored.drift_gram(200, [100, 300, 500]), X @ X.T, rtol=1e-6)


def _planted_drift(rng, D=400, noise=1e-5):
    steps = np.arange(0, 2001, 100)
    u = _orthonormal(rng, D, 1)[0]
    f = (steps / 1000.0) ** 2
    thetas = rng.standard_normal(D) + f[:, None] * u + noise * rng.standard_normal((steps.size, D))
    return steps, thetas, u, f


def test_backbone_recovers_planted_direction_and_coordinate():
    rng = np.random.default_rng(3)
    steps, thetas, u, f = _planted_drift(rng)
    traj = Trajectory.from_dense(steps, thetas)
    pca = drift_pca(traj, 0, row_normalize=True)
    v = materialize_dense(pca.backbone, thetas)
    assert abs(v @ u) > 0.99
    assert pca.rho1 > 0.99
    dec = decompose(traj, pca.backbone, 0)
    np.testing.assert_allclose(dec.a, f[1:], atol=1e-3)
    assert dec.a[-1] > 0  # sign convention
    assert dec.f_b_final > 0.999 and dec.f_b_mean > 0.9
    np.testing.assert_allclose(dec.a_dot, np.diff(f[1:]) / 100.0, atol=5e-4)


def test_decomposition_matches_dense_residual():
    rng = np.random.default_rng(4)
    steps, thetas = _random_walk(rng, T=10, D=60)
    traj = Trajectory.from_dense(steps, thetas)
    pca = drift_pca(traj, 0)
    dec = decompose(traj, pca.backbone, 0)
    v = materialize_dense(pca.backbone, thetas)
    X = thetas[1:] - thetas[0]
    R = X - np.outer(X @ v, v)
    np.testing.assert_allclose(dec.a, X @ v, atol=1e-9)
    np.testing.assert_allclose(dec.residual_norm, np.linalg.norm(R, axis=1), rtol=1e-8)
    np.testing.assert_allclose(dec.r_dot, np.linalg.norm(np.diff(R, axis=0), axis=1) / 100.0, rtol=1e-7)
    np.testing.assert_allclose(dec.f_b, (X @ v) ** 2 / (X ** 2).sum(1), rtol=1e-9)
    np.testing.assert_allclose(dec.speed_steps, steps[1:-1] + 50.0)
    json.dumps(dec.to_dict())


def test_centered_and_uncentered_pca_disagree():
    rng = np.random.default_rng(5)
    u, w = _orthonormal(rng, 100, 2)
    steps = np.arange(0, 31)
    # Steady drift along u plus an oscillation along w: the drift dominates the second moment (uncentered),
    # the oscillation dominates the variance around the mean row (centered).
    thetas = steps[:, None] * u + 15.0 * np.sin(2 * np.pi * steps / 5.0)[:, None] * w
    traj = Trajectory.from_dense(steps, thetas)
    rows = steps[10:]
    unc = materialize_dense(drift_pca(traj, 0, rows).backbone, thetas)
    cen = materialize_dense(drift_pca(traj, 0, rows, center=True).backbone, thetas)
    assert abs(unc @ u) > 0.95 and abs(unc @ w) < 0.3
    assert abs(cen @ w) > 0.95 and abs(cen @ u) < 0.3


def _two_phase(rng, angle_deg=60.0, D=80, noise=1e-4):
    e1, e2 = _orthonormal(rng, D, 2)
    a = math.radians(angle_deg)
    u, w = e1, math.cos(a) * e1 + math.sin(a) * e2
    steps = np.arange(0, 10001, 200)
    early = np.minimum(steps, 4000)[:, None] * u
    late = np.maximum(steps - 4000, 0)[:, None] * w
    thetas = early + late + noise * rng.standard_normal((steps.size, D))
    return steps, thetas


def test_phase_backbones_recover_planted_angle():
    rng = np.random.default_rng(6)
    steps, thetas = _two_phase(rng)
    traj = Trajectory.from_dense(steps, thetas)
    rolling = rolling_backbone(traj, steps[1:], window=10)
    out = phase_backbones(traj, 200, 4000, rolling=rolling)
    assert out["angle_deg"] == pytest.approx(60.0, abs=0.1)
    assert out["abs_cos"] == pytest.approx(0.5, abs=2e-3)
    assert out["early_pc1_full"] > 0.999 and out["late_pc1_full"] > 0.999
    assert out["early_rows"] == list(range(400, 4001, 200)) and out["late_rows"][0] == 4200
    centers = np.array(out["centers"])
    A_E, A_L = np.array(out["A_E"]), np.array(out["A_L"])
    assert np.all(A_E[centers + 900 <= 4000] > 0.999)  # windows that end before the switch
    assert np.all(A_L[centers - 900 >= 4000] > 0.999)  # windows that start after it
    json.dumps(out)


def test_rolling_rho_one_on_a_line_and_protocol_window_layout():
    rng = np.random.default_rng(7)
    u = _orthonormal(rng, 50, 1)[0]
    steps = np.concatenate([[0, 1], np.arange(200, 10001, 200)])
    thetas = steps[:, None] * u + 1e-6 * rng.standard_normal((steps.size, 50))
    traj = Trajectory.from_dense(steps, thetas)
    roll = rolling_backbone(traj, steps[2:], window=10)
    assert roll.centers.size == 41 and roll.centers[0] == 1100 and roll.rho.size == 40
    assert roll.rho_steps[0] == 1200
    np.testing.assert_allclose(roll.rho, 1.0, atol=1e-9)
    block = rolling_backbone_global_ref(traj, 1, steps[2:], window=10)
    np.testing.assert_allclose(block.rho, 1.0, atol=1e-9)
    assert block.variant != roll.variant
    json.dumps(roll.to_dict())


def test_rolling_rho_drops_at_planted_turn():
    rng = np.random.default_rng(8)
    u, w = _orthonormal(rng, 50, 2)
    steps = np.arange(0, 6001, 100)
    turn = 3000
    thetas = np.minimum(steps, turn)[:, None] * u + np.maximum(steps - turn, 0)[:, None] * w
    thetas += 1e-3 * rng.standard_normal(thetas.shape)
    traj = Trajectory.from_dense(steps, thetas)
    roll = rolling_backbone(traj, window=10)
    s = roll.summary()
    assert s["rho_min"] < 0.95
    assert abs(s["rho_argmin_step"] - turn) <= 500
    far = np.abs(roll.rho_steps - turn) > 1000
    np.testing.assert_allclose(roll.rho[far], 1.0, atol=1e-6)


def test_first_persistent_sign_flip_rule():
    f = first_persistent_sign_flip
    assert f([1, 1, -1, 1, 1]) is None  # one-point excursion
    assert f([1, 1, -1, -1, -1]) == 2
    assert f([-1, -2, 3, 4]) == 2
    assert f([1, 1, 1, -1]) is None  # the flip is not confirmed by a second point
    assert f([0, 1, 0, -1, -1]) == 3  # zeros neither set the initial sign nor count as flipped
    assert f([1, -1, -1, 1, 1, 1]) == 1  # a later return to the initial sign is not a crossing


def test_update_alignment_planted_reversal():
    rng = np.random.default_rng(9)
    D = 300
    u = _orthonormal(rng, D, 1)[0]
    signs = np.array([1] * 15 + [-1] * 5, dtype=float)
    signs[3] = -1.0  # a single early excursion that must not count as the crossing
    updates = signs[:, None] * u + 0.01 * rng.standard_normal((20, D))
    thetas = np.vstack([np.zeros(D), np.cumsum(updates, axis=0)])
    steps = np.arange(21) * 200
    traj = Trajectory.from_dense(steps, thetas)
    pca = drift_pca(traj, 0)
    out = update_alignment(traj, pca.backbone, early_step=1000)
    v = materialize_dense(pca.backbone, thetas)
    dense = np.diff(thetas, axis=0) @ v / np.linalg.norm(np.diff(thetas, axis=0), axis=1)
    np.testing.assert_allclose(out["cos"], dense, atol=1e-9)
    assert out["flip_index"] == 15 and out["flip_end_step"] == 3200 and out["flip_mid_step"] == 3100
    assert out["cos"][0] > 0.9  # v_b follows the net drift, which is +u
    assert out["mean_abs_cos_before_flip"] > 0.9 and out["mean_abs_cos_after_flip"] > 0.9
    assert out["mean_abs_cos_early"] == pytest.approx(np.mean(np.abs(dense[:5])))
    json.dumps(out)


def test_update_pairs_with_lag_in_dense_region():
    steps = np.array([0, 50, 100, 150, 200, 400, 600])
    traj = Trajectory(steps, np.eye(steps.size))
    assert update_pairs(traj, lag=200) == [(0, 200), (200, 400), (400, 600)]
    assert update_pairs(traj, lag=50) == [(0, 50), (50, 100), (100, 150), (150, 200)]
    assert update_pairs(traj, steps=[0, 200, 600]) == [(0, 200), (200, 600)]


def test_peaks_and_troughs_on_crafted_series():
    p = [0.10, 0.20, 0.50, 0.26, 0.25, 0.27, 0.265, 0.60, 0.40, 0.20, 0.21, 0.22, 0.35, 0.40]
    ext = find_peaks_troughs(p)
    assert ext["peaks"] == [2, 7]  # the 0.27 wiggle at index 5 has prominence 0.005
    assert ext["troughs"] == [4, 9]
    np.testing.assert_allclose(ext["peak_prominence"], [0.25, 0.35])
    np.testing.assert_allclose(ext["trough_depth"], [0.25, 0.15])
    assert switch_pairs(ext["peaks"], ext["troughs"]) == [(2, 4), (7, 9)]
    assert extended_switch_pairs(ext["peaks"], ext["troughs"]) == [(2, 4), (7, 9), (7, 4)]
    assert find_peaks_troughs([0.1, 0.13, 0.1])["peaks"] == [1]  # prominence exactly at the threshold
    assert find_peaks_troughs([0.1, 0.129, 0.1])["peaks"] == []
    assert find_peaks_troughs([0.5, 0.1, 0.2])["troughs"] == [1]  # depth = min(0.5, 0.2) - 0.1
    assert find_peaks_troughs([0.9, 0.5, 0.9])["peaks"] == []  # endpoints are never extrema


def test_switch_share_for_planted_direction():
    D = 12
    E = np.eye(D)
    sig = [10.0, 3.0, 2.5, 2.0, 1.5, 1.0]
    phi = math.radians(70.0)
    disp = math.cos(phi) * E[0] + math.sin(phi) * (0.6 * E[1] + 0.8 * E[7])
    peak = 5.0 * E[8]
    thetas = np.vstack([np.zeros(D)] + [s * E[k] for k, s in enumerate(sig)] + [peak, peak - disp])
    steps = np.arange(thetas.shape[0])
    traj = Trajectory.from_dense(steps, thetas)
    pca = drift_pca(traj, 0, steps[1:7])  # exact SVD: v_k = e_k, sigma_k = sig[k]
    np.testing.assert_allclose(pca.sigma2, np.square(sig), rtol=1e-12)
    out = switch_geometry(traj, 7, 8, pca)
    assert out["c"] == pytest.approx(math.cos(phi), abs=1e-12)
    assert out["c2"] == pytest.approx(math.cos(phi) ** 2, abs=1e-12)
    assert out["e_2_6"] == pytest.approx(0.36, abs=1e-12)
    assert out["e_2_6_unresidualized"] == pytest.approx(0.36 * math.sin(phi) ** 2, abs=1e-12)


def test_displacement_dimension_by_gram_schmidt():
    D = 10
    E = np.eye(D)
    disps = [E[0], E[1], (E[0] + E[1]) / math.sqrt(2), E[2] + 0.05 * E[3], E[0] + 0.05 * E[4]]
    thetas = np.vstack([np.zeros(D)] + disps)
    traj = Trajectory.from_dense(np.arange(6), thetas)
    out = displacement_dimension(traj, [(k, 0) for k in range(1, 6)], threshold=0.1)
    np.testing.assert_allclose(out["residual_norms"], [1, 1, 0, 1, 0.05 / math.hypot(1, 0.05)], atol=1e-9)
    assert out["effective_dim"] == 3
    assert out["cos"][0][2] == pytest.approx(1 / math.sqrt(2))


def test_window_geometry_line_and_k95_tolerance():
    rng = np.random.default_rng(10)
    u, w = _orthonormal(rng, 30, 2)
    steps = np.arange(600, 2001, 50)
    thetas = (steps - 600)[:, None] * u
    traj = Trajectory.from_dense(steps, thetas)
    out = window_geometry(traj, steps)
    assert out["n_rows"] == 28 and out["anchor_step"] == 600
    assert out["rho1_full"] == pytest.approx(1.0) and out["k95"] == 1 and out["k99"] == 1
    assert out["drift"] == pytest.approx(1400.0)
    # 19 unit rows along u and one along w: rho_1 = 0.95 exactly, so k95 = 1 and k99 = 2.
    thetas2 = np.vstack([np.zeros(30)] + [k * u for k in range(1, 20)] + [w])
    traj2 = Trajectory.from_dense(np.arange(21), thetas2)
    out2 = window_geometry(traj2, np.arange(21))
    assert out2["rho1_full"] == pytest.approx(0.95) and (out2["k95"], out2["k99"]) == (1, 2)


def test_top10_denominator_is_labelled_and_larger():
    rng = np.random.default_rng(11)
    steps, thetas = _random_walk(rng, T=16, D=100)
    pca = drift_pca(Trajectory.from_dense(steps, thetas), 0, row_normalize=True)
    assert pca.sigma2.sum() == pytest.approx(15.0)  # row-normalized: sum sigma^2 = number of rows
    assert pca.fractions_top10.size == 10 and pca.fractions_top10.sum() == pytest.approx(1.0)
    assert pca.fractions_top10[0] > pca.fractions_full[0]
    s = pca.summary()
    assert json.loads(json.dumps(s))["fractions_top10"] == pytest.approx(list(pca.fractions_top10))


def test_isotropic_noise_floors():
    assert iso_abs_cos_mean(2) == pytest.approx(2 / math.pi)
    assert iso_abs_cos_mean(3) == pytest.approx(0.5)
    D = 3_147_776
    assert iso_abs_cos_mean(D) == pytest.approx(math.sqrt(2 / (math.pi * D)), rel=1e-6)
    assert iso_abs_cos_mean(D, exact=False) == pytest.approx(4.497e-4, rel=1e-3)
    assert iso_cos_rms(4) == 0.5
    rng = np.random.default_rng(12)
    x = rng.standard_normal((20000, 20))
    cos = x[:, 0] / np.linalg.norm(x, axis=1)
    assert np.abs(cos).mean() == pytest.approx(iso_abs_cos_mean(20), rel=0.02)


def test_trajectory_validation_and_combos():
    with pytest.raises(ValueError):
        Trajectory([0, 0, 1], np.eye(3))
    with pytest.raises(ValueError):
        Trajectory([0, 1], np.eye(3))
    traj = Trajectory([0, 100, 200], np.eye(3))
    with pytest.raises(KeyError):
        traj.index(50)
    np.testing.assert_array_equal(traj.diff(200, 0), [-1, 0, 1])
    np.testing.assert_array_equal(traj.steps_in(0, 200), [100, 200])
    with pytest.raises(ValueError):
        drift_pca(traj, 0, [0, 100], row_normalize=True)  # a zero row cannot be normalized
