"""What the control, beta2 and reheating tables (PROTOCOL A12-A14) read from a control-type run: its trunk
trajectory from the Gram cache, the standard checkpoint window, the window geometry (or a note saying why it is
missing), the eval curves and summary, and the update alignment inside a window.

    traj = trunk_trajectory("runs/ctrl_s42/A", [1, 150, 200])
    geometry = safe_window(traj, standard_window(load_run("runs/ctrl_s42/A").config))
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from drift.analysis.gram_cache import trajectory_grams
from drift.config import Config
from drift.geometry.alignment import update_alignment
from drift.geometry.pca import drift_pca
from drift.geometry.trajectory import Trajectory
from drift.geometry.windows import rolling_backbone, window_geometry
from drift.run import checkpoint as ck
from drift.run.info import RunInfo
from drift.train.control_runs import Scale


def trunk_trajectory(run_dir, steps: Sequence[int]) -> Trajectory:
    """Trunk Gram of `steps` (anchored at the first), through the run's Gram cache (drift.analysis.gram_cache)."""
    steps = [int(s) for s in steps]
    return Trajectory(np.array(steps), trajectory_grams(run_dir, steps, ["trunk"], progress=False)["trunk"])


def present_steps(steps: Sequence[int], run: RunInfo) -> tuple[list[int], list[int]]:
    have = set(run.steps)
    return [s for s in steps if s in have], [s for s in steps if s not in have]


def safe_window(traj: Trajectory, steps: Sequence[int]) -> dict:
    """window_geometry with PC1 in percent, or a note saying why it cannot be computed."""
    steps = [s for s in steps if traj.has(s)]
    if len(steps) < 3:
        return {"window_steps": steps, "note": f"{len(steps)} checkpoint(s) in the window; need >= 3"}
    try:
        g = window_geometry(traj, steps)
    except ValueError as e:
        return {"window_steps": steps, "note": f"geometry failed: {e}"}
    g["pc1"] = 100.0 * g["rho1_full"]
    g["pc1_top10"] = 100.0 * g["rho1_top10"]
    return g


def curves(run: RunInfo) -> dict:
    return {"step": run.eval_steps(), "val_loss": [r["val_loss"] for r in run.metrics],
            "p_ood": [r["p_ood"] for r in run.metrics]}


def eval_summary(run: RunInfo) -> dict:
    p = [r["p_ood"] for r in run.metrics]
    best = int(np.argmax(p)) if p else None
    return {"final_step": run.metrics[-1]["step"] if run.metrics else None,
            "final_val": run.metrics[-1]["val_loss"] if run.metrics else None,
            "best_p_ood": p[best] if p else None, "best_p_ood_step": run.metrics[best]["step"] if p else None}


def standard_window(cfg: Config) -> list[int]:
    """Table 4's window: the first dense checkpoint window of the control config (paper: 600..2000 every 50)."""
    from drift.config import parse_dense
    windows = parse_dense(cfg.train.dense_ckpt)
    if not windows:
        raise ck.RunError("the run has no dense checkpoint window (dense_ckpt); it is not a control run")
    start, end, every = windows[0]
    return list(range(start, end + 1, every))


def alignment_extras(traj: Trajectory, window: list[int], sc: Scale, paper_ts: Sequence[int]) -> dict:
    """cos(theta_t - theta_{t-d}, window PC1) at scaled paper steps t (d = scaled 200), and the within-window
    rolling PC1 with sub-window 5."""
    pca = drift_pca(traj, window[0], window[1:], row_normalize=True, n_directions=1)
    lag = sc.step(200)
    ts = [t for t in sc.steps(paper_ts) if traj.has(t) and traj.has(t - lag)]
    align = {}
    if ts:
        a = update_alignment(traj, pca.backbone, steps=sorted({x for t in ts for x in (t - lag, t)}), lag=lag)
        align = {int(e): c for e, c in zip(a["end_steps"], a["cos"]) if int(e) in ts}
    roll = rolling_backbone(traj, np.array(window), window=5) if len(window) >= 5 else None
    return {"update_cos": align, "lag": lag,
            "rolling5_pc1_mean": float(roll.pc1_fraction.mean()) if roll else None,
            "rolling5_pc1_min": float(roll.pc1_fraction.min()) if roll else None}
