"""A parameter trajectory as its Gram matrix: the class Trajectory (checkpoint steps + the T x T Gram P) and the
coefficient-vector algebra every geometry module builds on.

A trajectory is T checkpoint vectors theta_0..theta_{T-1} (trunk, or one block). D can be 25M, so the D x T
matrix is never built: the I/O layer streams the checkpoints once and hands over the T x T float64 Gram matrix
P[i, j] = <theta_i, theta_j>. Every analysis of drift.geometry (PROTOCOL section 5: A1-A5, A8, A11, A12, A13) is a
function of P and the step list.

Conventions
- Any direction is a linear combination of checkpoints, stored as a coefficient vector c in R^T
  (v = sum_t c_t theta_t); <v, w> = c^T P d. Drifts theta_t - theta_ref, updates theta_s - theta_s' and
  switching displacements theta_peak - theta_trough have coefficients +1 / -1, and every direction built from
  them has coefficients that sum to zero. So P may be the Gram of theta_t - theta_a for any anchor a (the
  I/O layer anchors at the first checkpoint, which keeps far more digits than raw P): the results are identical.
  A direction becomes an explicit vector through a second pass over the checkpoints
  (`drift.analysis.gram_stream.materialize`; `drift.geometry.pca.materialize_dense` for an in-memory matrix).

    traj = Trajectory.from_dense([0, 1, 2], thetas)     # or Trajectory(steps, P) from streamed Grams
    traj.cos(traj.diff(2, 1), traj.diff(1, 0))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np


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
