"""The backbone / residual decomposition of a trajectory (PROTOCOL A3): a(t) along the backbone, ||r(t)|| across
it, the backbone share f_b and the speeds.

    dec = decompose(traj, drift_pca(traj, 1).backbone, ref_step=1)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from drift.geometry.jsonable import jsonable
from drift.geometry.trajectory import Trajectory


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
