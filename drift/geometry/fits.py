"""Power-law fits and windowed correlations of trajectory time series (PROTOCOL A6, A7).

Windows follow the protocol's convention lo < t <= hi. The functions never raise on short or degenerate data:
they return NaN values with the number of points used, so a table always has one row per window. Outputs are
plain floats, ints and lists (NaN as float('nan')), ready for JSON.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

MIN_POINTS = 3


def _bound(x: float) -> int | float:
    """Keep integral window bounds as ints so JSON tables read 2000, not 2000.0."""
    x = float(x)
    return int(x) if x.is_integer() else x


def power_law_fit(t: Sequence[float], y: Sequence[float], lo: float, hi: float) -> dict:
    """OLS fit of ln y = gamma ln t + log_C over lo < t <= hi with t > 0, y > 0; R^2 in log space."""
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        sel = (t > lo) & (t <= hi) & (t > 0) & (y > 0) & np.isfinite(t) & np.isfinite(y)
    n = int(sel.sum())
    out = {"gamma": math.nan, "log_C": math.nan, "r2": math.nan, "n": n, "lo": _bound(lo), "hi": _bound(hi)}
    if n < MIN_POINTS:
        return out
    lt, ly = np.log(t[sel]), np.log(y[sel])
    dt = lt - lt.mean()
    sxx = float(dt @ dt)
    if sxx == 0.0:
        return out
    gamma = float(dt @ (ly - ly.mean())) / sxx
    log_c = float(ly.mean() - gamma * lt.mean())
    resid = ly - (gamma * lt + log_c)
    sst = float(((ly - ly.mean()) ** 2).sum())
    # A constant series is fitted exactly by gamma = 0, but R^2 is undefined there.
    r2 = 1.0 - float(resid @ resid) / sst if sst > 0 else math.nan
    out.update(gamma=gamma, log_C=log_c, r2=r2)
    return out


def power_law_table(t: Sequence[float], y: Sequence[float], windows: Iterable[tuple[float, float]]) -> list[dict]:
    """One `power_law_fit` per (lo, hi] window, in the given order."""
    return [power_law_fit(t, y, lo, hi) for lo, hi in windows]


def pearson_window(t: Sequence[float], x: Sequence[float], y: Sequence[float], lo: float, hi: float,
                   exclude_steps: Iterable[float] = (1,)) -> dict:
    """Pearson r of x and y over the points with lo < t <= hi, t not in exclude_steps, both values finite."""
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sel = (t > lo) & (t <= hi) & np.isfinite(x) & np.isfinite(y)
    sel &= ~np.isin(t, np.asarray(list(exclude_steps), dtype=np.float64))
    n = int(sel.sum())
    out = {"r": math.nan, "n": n, "lo": _bound(lo), "hi": _bound(hi)}
    if n < MIN_POINTS:
        return out
    dx, dy = x[sel] - x[sel].mean(), y[sel] - y[sel].mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    # A constant series leaves only rounding in dx or dy: treat spreads below 1e-12 of the scale as zero.
    scale = max(float(np.abs(x[sel]).max()), 1e-300) * max(float(np.abs(y[sel]).max()), 1e-300) * n
    if denom > 1e-12 * scale:
        out["r"] = float(np.clip(float(dx @ dy) / denom, -1.0, 1.0))
    return out


def pearson_table(t: Sequence[float], x: Sequence[float], y: Sequence[float],
                  windows: Iterable[tuple[float, float]], exclude_steps: Iterable[float] = (1,)) -> list[dict]:
    """One `pearson_window` per (lo, hi] window, in the given order."""
    excl = tuple(exclude_steps)
    return [pearson_window(t, x, y, lo, hi, excl) for lo, hi in windows]
