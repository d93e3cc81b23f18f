"""Tests for drift.geometry.fits: power laws with known exponents, (lo, hi] windows, Pearson r on crafted series.

Run: pytest tests/test_fits.py
"""
import json
import math

import numpy as np
import pytest

from drift.geometry import fits


def test_power_law_exact_exponent():
    t = np.arange(200, 10001, 200)
    out = fits.power_law_fit(t, 3.0 * t ** 1.7, 0, 10000)
    assert out["gamma"] == pytest.approx(1.7, abs=1e-12)
    assert out["log_C"] == pytest.approx(math.log(3.0), abs=1e-9)
    assert out["r2"] == pytest.approx(1.0, abs=1e-12)
    assert out["n"] == 50 and out["lo"] == 0 and out["hi"] == 10000


def test_window_is_open_below_closed_above():
    t = np.arange(200, 10001, 200)
    # Two exact laws that break at 2000: the fits are exact only if 2000 belongs to the first window alone.
    y = np.where(t <= 2000, t ** 2.0, 5.0 * t ** -0.5)
    early, late = fits.power_law_table(t, y, [(0, 2000), (2000, 10000)])
    assert early["n"] == 10 and late["n"] == 40
    assert early["gamma"] == pytest.approx(2.0) and early["r2"] == pytest.approx(1.0)
    assert late["gamma"] == pytest.approx(-0.5) and late["r2"] == pytest.approx(1.0)
    assert fits.power_law_fit(t, y, 0, 2200)["r2"] < 0.99


def test_power_law_skips_nonpositive_and_short_windows():
    t = np.array([100.0, 200.0, 300.0, 400.0, 500.0])
    y = np.array([1.0, -1.0, 0.0, np.nan, 25.0])
    out = fits.power_law_fit(t, y, 0, 1000)
    assert out["n"] == 2 and math.isnan(out["gamma"]) and math.isnan(out["r2"])
    y2 = t ** 0.5
    y2[1] = 0.0
    ok = fits.power_law_fit(t, y2, 0, 1000)
    assert ok["n"] == 4 and ok["gamma"] == pytest.approx(0.5)
    empty = fits.power_law_fit(t, y2, 1000, 2000)
    assert empty["n"] == 0 and math.isnan(empty["log_C"])


def test_power_law_constant_series_has_zero_slope_and_undefined_r2():
    t = np.array([1.0, 2.0, 4.0, 8.0])
    out = fits.power_law_fit(t, np.full(4, 2.0), 0, 10)
    assert out["gamma"] == pytest.approx(0.0) and math.isnan(out["r2"])


def test_pearson_excludes_step_one_and_matches_numpy():
    t = np.array([1, 200, 400, 600, 800, 1000])
    x = np.array([100.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([-100.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    assert fits.pearson_window(t, x, y, 0, 1000)["r"] == pytest.approx(1.0)
    assert fits.pearson_window(t, x, -y, 0, 1000)["r"] == pytest.approx(-1.0)
    assert fits.pearson_window(t, x, y, 0, 1000, exclude_steps=())["r"] < 0
    rng = np.random.default_rng(0)
    tt = np.arange(1, 60)
    a, b = rng.standard_normal(59), rng.standard_normal(59)
    out = fits.pearson_window(tt, a, b, 10, 40)
    sel = (tt > 10) & (tt <= 40)
    assert out["n"] == 30
    assert out["r"] == pytest.approx(np.corrcoef(a[sel], b[sel])[0, 1], abs=1e-12)


def test_pearson_degenerate_cases_return_nan():
    t = np.array([200, 400, 600, 800])
    assert math.isnan(fits.pearson_window(t, [1, 2, 3, 4], [5, 5, 5, 5], 0, 1000)["r"])
    short = fits.pearson_window(t, [1, 2, 3, 4], [1, 3, 2, 4], 400, 800)
    assert short["n"] == 2 and math.isnan(short["r"])


def test_outputs_are_plain_json_types():
    t = np.arange(1, 20, dtype=np.float64)
    rows = fits.power_law_table(t, t ** 1.5, [(0, 10), (10, 19.5), (100, 200)])
    rows += fits.pearson_table(t, t, t ** 2, [(0, 10), (0, 1)])
    for row in rows:
        for v in row.values():
            assert type(v) in (int, float)
    assert rows[1]["hi"] == 19.5 and rows[0]["hi"] == 10
    json.dumps(rows)


def test_pearson_of_a_constant_series_is_nan_not_rounding_noise():
    from drift.geometry.fits import pearson_window
    t = np.arange(1, 20.0)
    assert math.isnan(pearson_window(t, np.full(19, 0.1), t, 0, 100)["r"])
