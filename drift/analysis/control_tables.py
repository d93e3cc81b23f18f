"""Tables of the optimizer controls, the beta2 sweep and reheating (PROTOCOL A12-A14), computed from their run
directories: Table 4 (standard window), Table 5 (matched validation loss), the beta2 table, the reheating readouts,
with the paper's values beside ours. Which runs exist and how they were configured is drift/train/control_runs.py.

    table = control_table("runs/ctrl_s42")                 # Table 4
    matched = matched_table("runs/ctrl_s42")               # Table 5
    sweep = beta2_table("runs/beta2_s42")                  # A13, C14 and C17-C19
"""
from __future__ import annotations

import csv
import importlib.util
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from drift.run import checkpoint as ck
from drift.config import Config
from drift.train.control_runs import CONTROL_RUNS, RUN_OPTIMIZERS, Scale, early_stop_decision, run_summary
from drift.geometry.fits import pearson_table, power_law_table
from drift.geometry.trajectory import (Decomposition, Trajectory, decompose, drift_pca, jsonable, rolling_backbone,
                            update_alignment, window_geometry)
from drift.run.info import RunInfo, check_run, check_same_setup, load_run

OPTIMIZER_LABELS = {"adamw": "AdamW", "sgd": "SGD", "sgd_momentum": "SGD+momentum", "nesterov_sgdw": "Nesterov SGDW"}

# Paper values printed next to ours (PROTOCOL C15-C20).
PAPER_TABLE4 = {"A": dict(final_val=1.59, best_p_ood=0.433, pc1=61.5, k95=9, drift=113.7),
                "B": dict(final_val=8.12, best_p_ood=0.000, pc1=100.0, k95=1, drift=40.2),
                "C": dict(final_val=5.10, best_p_ood=0.015, pc1=100.0, k95=1, drift=54.2),
                "C_prime": dict(final_val=5.25, best_p_ood=0.013, pc1=None, k95=None, drift=None)}
PAPER_MATCHED_WINDOWS = {  # Table 5, paper steps; (name, steps, paper pc1 / k95 / k99 / drift)
    "A": [("[1,200,400]", [1, 200, 400], (77.4, 2, 2, None)),
          ("[1,200,400,600]", [1, 200, 400, 600], (69.2, 3, 3, 24.9)),
          ("[200,400,600]", [200, 400, 600], (81.9, 2, 2, None)),
          ("[200..1000]", [200, 400, 600] + list(range(650, 1001, 50)), (77.8, 4, 8, 50.7)),
          ("[600..2000]", list(range(600, 2001, 50)), (61.5, 9, 19, 113.7))],
    "C": [("[2000,2200,2400]", [2000, 2200, 2400], (98.1, 1, 2, 0.26)),
          ("[1800..2600]", list(range(1800, 2601, 200)), (97.7, 1, 2, 0.60)),
          ("[600..2000]", list(range(600, 2001, 50)), (100.0, 1, 1, 54.2))],
}
PAPER_BETA2 = {  # beta2: C17 (full trajectory), C19, C14 (window variant)
    0.99: dict(pc1=68.8, raw_pc1=83.1, drift=120, best_p_ood=0.951, mean_abs_cos=0.243, early_abs_cos=0.368,
               early_corr=0.86, window_pc1=68.1, window_abs_cos=0.226),
    0.95: dict(pc1=68.3, raw_pc1=82.5, drift=123, best_p_ood=0.939, mean_abs_cos=0.244, early_abs_cos=0.363,
               early_corr=0.85, window_pc1=68.4, window_abs_cos=0.225),
    0.90: dict(pc1=66.7, raw_pc1=80.8, drift=128, best_p_ood=0.814, mean_abs_cos=0.234, early_abs_cos=0.343,
               early_corr=0.40, window_pc1=66.3, window_abs_cos=0.220),
    0.80: dict(pc1=63.8, raw_pc1=79.0, drift=141, best_p_ood=0.682, mean_abs_cos=0.227, early_abs_cos=0.328,
               early_corr=0.39, window_pc1=63.4, window_abs_cos=0.214),
    0.0: dict(pc1=52.5, raw_pc1=81.3, drift=1.6e5, best_p_ood=0.005, mean_abs_cos=0.238, early_abs_cos=0.269,
              early_corr=-0.57, window_pc1=51.6, window_abs_cos=0.099),
}
PAPER_REHEAT = {1e-3: dict(peak=0.705, peak_step=900, first_060=600, end=0.221),
                6e-4: dict(peak=0.782, peak_step=1000, first_060=700, end=0.279),
                3e-4: dict(peak=0.578, peak_step=1500, first_060=None, end=0.421)}
PAPER_REHEAT_START = 0.16


# --------------------------------------------------------------------------------------------------------------
# Small pure helpers (unit-tested on crafted metrics)
# --------------------------------------------------------------------------------------------------------------

def match_val_loss(metrics: list[dict], target: float, rel_tol: float = 0.02,
                   ckpt_steps: Sequence[int] | None = None) -> dict:
    """The matched-loss step: the first eval within rel_tol * |target| (the moment the run reaches the matched
    loss), or, when no eval is that close, the eval closest to `target` (ties: the earlier step); restricted to
    steps with a checkpoint when `ckpt_steps` is given. Also the closest eval itself, every step within tolerance,
    and the first pair of consecutive evals that brackets the target (where the curve crosses it).

    Why the first step within tolerance and not the closest: the default target is run C's own final loss, so the
    closest eval of C is always its last one, where no window can be centred. The paper centres SGD+momentum's
    windows on step 2200 of a run whose loss has flattened near its final value by then, i.e. on where it first
    reaches the matched loss."""
    have = None if ckpt_steps is None else set(int(s) for s in ckpt_steps)
    evals = [(int(r["step"]), float(r["val_loss"])) for r in metrics
             if "val_loss" in r and r["val_loss"] is not None and math.isfinite(r["val_loss"])
             and (have is None or int(r["step"]) in have)]
    tol = rel_tol * abs(target)
    out = {"target": target, "rel_tol": rel_tol, "tolerance": tol, "step": None, "val_loss": None, "gap": None,
           "within_tol": False, "steps_within_tol": [], "closest_step": None, "crossing": None}
    if not evals:
        return out
    closest = min(evals, key=lambda e: (abs(e[1] - target), e[0]))
    within = [(s, v) for s, v in evals if abs(v - target) <= tol]
    step, val = within[0] if within else closest
    out.update(step=step, val_loss=val, gap=val - target, within_tol=bool(within),
               steps_within_tol=[s for s, _ in within], closest_step=closest[0])
    for (s0, v0), (s1, v1) in zip(evals[:-1], evals[1:]):
        if (v0 - target) * (v1 - target) <= 0 and v0 != v1:
            out["crossing"] = [s0, s1]
            break
    return out


def centred_windows(step: int, spacing: int, available: Sequence[int]) -> dict[str, list[int]]:
    """Windows on the regular grid around a matched checkpoint: [m-d, m, m+d] and [m-2d .. m+2d]. Grid points
    below step 1 become step 1 (the trajectory's reference); points without a checkpoint are dropped."""
    have = set(int(s) for s in available)

    def grid(k: int) -> list[int]:
        pts = sorted({max(1, step + j * spacing) for j in range(-k, k + 1)})
        return [p for p in pts if p in have]
    return {f"centred +-{spacing}": grid(1), f"centred +-{2 * spacing}": grid(2)}


def flat_row(row: dict, paper_prefix: str = "paper_") -> dict:
    """Scalar fields of a table row, with the paper's values (row["paper"]) added under `paper_prefix`."""
    out = {k: v for k, v in row.items() if v is None or isinstance(v, (str, int, float, bool))}
    out.update({paper_prefix + k: v for k, v in (row.get("paper") or {}).items()})
    return out


def write_csv(path, rows: list[dict], columns: Sequence[str]) -> Path:
    """Atomic CSV of the given columns (missing values empty, floats with 6 significant digits)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            w.writerow(["" if row.get(c) is None else (f"{row[c]:.6g}" if isinstance(row[c], float) else row[c])
                        for c in columns])
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------------------------
# Trajectories
# --------------------------------------------------------------------------------------------------------------

def trunk_trajectory(run_dir, steps: Sequence[int]) -> Trajectory:
    """Trunk Gram of `steps` (anchored at the first), through drift.analysis.gram_cache when that module exists."""
    steps = [int(s) for s in steps]
    if importlib.util.find_spec("drift.analysis.gram_cache") is not None:
        from drift.analysis.gram_cache import trajectory_grams
        return Trajectory(np.array(steps), trajectory_grams(run_dir, steps, ["trunk"], progress=False)["trunk"])
    from drift.analysis.gram_stream import gram_matrices
    return Trajectory(np.array(steps), gram_matrices(run_dir, steps, ["trunk"], progress=False)["trunk"])


def _present(steps: Sequence[int], run: RunInfo) -> tuple[list[int], list[int]]:
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


def _curves(run: RunInfo) -> dict:
    return {"step": run.eval_steps(), "val_loss": [r["val_loss"] for r in run.metrics],
            "p_ood": [r["p_ood"] for r in run.metrics]}


def _eval_summary(run: RunInfo) -> dict:
    p = [r["p_ood"] for r in run.metrics]
    best = int(np.argmax(p)) if p else None
    return {"final_step": run.metrics[-1]["step"] if run.metrics else None,
            "final_val": run.metrics[-1]["val_loss"] if run.metrics else None,
            "best_p_ood": p[best] if p else None, "best_p_ood_step": run.metrics[best]["step"] if p else None}


# --------------------------------------------------------------------------------------------------------------
# Table 4 (A12, standard window) and Table 5 (matched validation loss)
# --------------------------------------------------------------------------------------------------------------

def load_controls(root, runs: Sequence[str] = CONTROL_RUNS, allow_missing: bool = False,
                  allow_running: bool = False) -> dict[str, RunInfo]:
    """The control runs present under root (root/A, root/B, ...), checked to share model and data, to hold the
    optimizer their directory name stands for (a row is labelled from run.json, never from the name), and to pass
    the analysis checks (runinfo.check_run)."""
    root = Path(root)
    found = {r: check_run(load_run(root / r), allow_missing, allow_running)
             for r in runs if (root / r / "run.json").exists()}
    if not found:
        raise ck.RunError(f"{root} holds none of the control runs {', '.join(runs)}; run sgd_control.py first")
    first = next(iter(found.values()))
    for run in found.values():
        check_same_setup(first, run)
    for name, run in found.items():
        have, want = run.config.train.optimizer, RUN_OPTIMIZERS[name]["optimizer"] if name in RUN_OPTIMIZERS else None
        if want is not None and have != want:
            raise ck.RunError(f"{run.run_dir} holds a {have} run (its run.json), but {name} is the {want} control; "
                              f"move it to the directory of its optimizer or retrain {name}")
    return found


def optimizer_label(run: RunInfo) -> str:
    t = run.config.train.optimizer
    return OPTIMIZER_LABELS.get(t, t)


def standard_window(cfg: Config) -> list[int]:
    """Table 4's window: the first dense checkpoint window of the control config (paper: 600..2000 every 50)."""
    from drift.config import parse_dense
    windows = parse_dense(cfg.train.dense_ckpt)
    if not windows:
        raise ck.RunError("the run has no dense checkpoint window (dense_ckpt); it is not a control run")
    start, end, every = windows[0]
    return list(range(start, end + 1, every))


def _alignment_extras(traj: Trajectory, window: list[int], sc: Scale, paper_ts: Sequence[int]) -> dict:
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


def control_row(name: str, run: RunInfo) -> dict:
    """One Table 4 row: status, eval summary, standard-window geometry (+ alignment extras)."""
    row = {"run": name, "optimizer": optimizer_label(run), **run_summary(run.run_dir), **_eval_summary(run)}
    sc = Scale.of_control(run.config)
    window, missing = _present(standard_window(run.config), run)
    row.update(window=[window[0], window[-1]] if window else None, window_missing=missing)
    try:
        traj = trunk_trajectory(run.run_dir, [s for s in run.steps if s >= 1])
        geo = safe_window(traj, window)
    except ValueError as e:  # non-finite weights after a blow-up
        traj, geo = None, {"note": f"geometry not computed: {e}"}
    row["geometry"] = geo
    row.update({k: geo.get(k) for k in ("pc1", "pc1_top10", "k95", "k99", "drift")})
    if "note" not in geo:
        row["extras"] = _alignment_extras(traj, window, sc, (1000, 1600, 2200, 3000, 3800))
    if name == "C_prime":
        t = run.config.train
        row["early_stop"] = early_stop_decision(run.metrics, t.early_stop_step, t.early_stop_max_val,
                                                t.early_stop_min_p_ood)
    row["marker"] = {"finished": "", "early_stopped": "early-stopped", "running": "incomplete"}.get(
        row["status"], f"diverged at step {row['diverged_step']}" if row["status"] == "diverged" else row["status"])
    row["paper"] = PAPER_TABLE4.get(name)
    return row


def control_table(root, allow_missing: bool = False, allow_running: bool = False) -> dict:
    runs = load_controls(root, allow_missing=allow_missing, allow_running=allow_running)
    rows = [control_row(name, run) for name, run in runs.items()]
    return {"rows": rows, "curves": {name: _curves(run) for name, run in runs.items()},
            "scale": Scale.of_control(next(iter(runs.values())).config).factor}


def _matched_windows(name: str, run: RunInfo, match: dict, sc: Scale) -> list[dict]:
    out = []
    paper = PAPER_MATCHED_WINDOWS.get(name, [])
    for label, steps, ref in paper:
        want = sc.steps(steps)
        present, missing = _present(want, run)
        out.append({"window": label, "kind": "paper", "steps": want, "missing": missing,
                    "paper": dict(zip(("pc1", "k95", "k99", "drift"), ref))})
    if match["step"] is not None:
        for label, steps in centred_windows(match["step"], sc.step(200), run.steps).items():
            out.append({"window": label, "kind": "centred", "steps": steps, "missing": [], "paper": None})
    traj = trunk_trajectory(run.run_dir, [s for s in run.steps if s >= 1])
    for w in out:
        w["geometry"] = safe_window(traj, [s for s in w["steps"] if s not in w["missing"]])
    return out


def matched_table(root, target: float | None = None, rel_tol: float = 0.02, allow_missing: bool = False,
                  allow_running: bool = False) -> dict:
    """Table 5: the matched-loss checkpoint of every optimizer and the geometry of the paper's and centred windows.
    Default target: run C's (SGD+momentum) final val loss, as the protocol states (the last finite eval)."""
    runs = load_controls(root, allow_missing=allow_missing, allow_running=allow_running)
    if target is None:
        finals = [r["val_loss"] for r in runs["C"].metrics
                  if r.get("val_loss") is not None and math.isfinite(r["val_loss"])] if "C" in runs else []
        if not finals:
            raise ck.RunError(f"{root}/C (SGD+momentum) has no evals; train it or pass --target")
        target = float(finals[-1])
    rows = []
    for name, run in runs.items():
        match = match_val_loss(run.metrics, target, rel_tol, run.steps)
        note = None if match["within_tol"] else (
            f"no checkpoint within {rel_tol:.0%} of {target:.3f}: nearest is step {match['step']} "
            f"(val {match['val_loss']:.3f})" if match["step"] is not None else "no evals")
        rows.append({"run": name, "optimizer": optimizer_label(run), "match": match, "note": note,
                     "windows": _matched_windows(name, run, match, Scale.of_control(run.config))})
    return {"target": target, "rel_tol": rel_tol, "rows": rows}


# --------------------------------------------------------------------------------------------------------------
# beta2 sweep (A13)
# --------------------------------------------------------------------------------------------------------------

BETA2_MIN_RUNS = 3  # a trend is read over >= 3 beta2 values: smaller p_probe groups (the Makefile's p_probe 0.20
#                     pair, run for the comparison with the paper) are tabulated but left out of C14 and C17-C19


def p_probe_groups(rows: Sequence[dict]) -> dict[float, list[dict]]:
    """Rows (dicts with "beta2" and "p_probe") grouped by p_probe, each group ordered by decreasing beta2."""
    groups: dict[float, list[dict]] = {}
    for row in rows:
        groups.setdefault(round(row["p_probe"], 4), []).append(row)
    return {p: sorted(g, key=lambda r: -r["beta2"]) for p, g in sorted(groups.items())}


def compared_groups(rows: Sequence[dict]) -> dict[float, list[dict]]:
    """The p_probe groups the beta2 claims compare: those with >= BETA2_MIN_RUNS runs."""
    return {p: g for p, g in p_probe_groups(rows).items() if len(g) >= BETA2_MIN_RUNS}


def beta2_spans(run: RunInfo) -> tuple[list[int], list[int], str | None]:
    """(checkpoints >= 1, PCA rows, note) of A13: the rows start at the first regular checkpoint; a run that diverged
    before two of them uses every checkpoint after step 1, and the note says so."""
    steps = [s for s in run.steps if s >= 1]
    rows = [s for s in steps if s >= run.ckpt_every]
    if len(rows) >= 2:
        return steps, rows, None
    return steps, [s for s in steps if s > 1], "rows are all checkpoints after step 1 (run ended early)"


def common_span(run: RunInfo, last: int) -> tuple[list[int], list[int]]:
    """(checkpoints in [1, last], rows from the first regular checkpoint) of the span every run reached (C17)."""
    steps = [s for s in run.steps if 1 <= s <= last]
    return steps, [s for s in steps if s >= run.ckpt_every]


def beta2_window(run: RunInfo) -> list[int]:
    """C14's window: the checkpoints the run has of its standard window (paper steps [600, 2000], scaled)."""
    return _present(standard_window(run.config), run)[0]


def fit_windows(total_steps: int) -> list[tuple[float, float]]:
    """The A6/A7 windows of a beta2 run: (0, T/2], (T/2, T], (0, T]."""
    T = total_steps
    return [(0, T / 2), (T / 2, T), (0, T)]


def beta2_trajectory_geometry(traj: Trajectory, rows: Sequence[int], total_steps: int,
                              lag: int) -> tuple[dict, Decomposition]:
    """(A13 numbers, the A3 decomposition) of a trunk trajectory anchored at step 1, the run's or a null's:
    row-normalized and raw PC1 of the drifts over `rows`, drift to the last checkpoint, gamma fits of |a| and ||r||
    (A6), and update alignment at `lag` with the row-normalized PC1 (A8 trunk; "early" = ends <= T/2)."""
    steps = [int(s) for s in traj.steps]
    rn = drift_pca(traj, 1, rows, row_normalize=True, n_directions=2)
    raw = drift_pca(traj, 1, rows, row_normalize=False, n_directions=1)
    out = {"rows": [rows[0], rows[-1]], "n_rows": len(rows), "pc1": 100 * rn.rho1,
           "pc2": 100 * float(rn.fractions_full[1]) if rn.fractions_full.size > 1 else None,
           "raw_pc1": 100 * raw.rho1, "drift": traj.norm(traj.diff(steps[-1], 1)), "last_step": steps[-1]}
    dec = decompose(traj, rn.backbone, 1, [s for s in steps if s > 1])
    out["gamma_a"] = power_law_table(dec.steps, np.abs(dec.a), fit_windows(total_steps))
    out["gamma_r"] = power_law_table(dec.steps, dec.residual_norm, fit_windows(total_steps))
    al = update_alignment(traj, rn.backbone, steps=steps, lag=lag, early_step=total_steps / 2)
    out.update(mean_abs_cos=al["mean_abs_cos"], early_abs_cos=al.get("mean_abs_cos_early"))
    return out, dec


def common_pc1(traj: Trajectory, rows: Sequence[int]) -> float:
    """Row-normalized PC1 (%) of the drifts from step 1 over `rows`: C17's PC1 over the common span."""
    return 100 * drift_pca(traj, 1, rows, row_normalize=True, n_directions=1).rho1


def _beta2_geometry(run: RunInfo, sc: Scale) -> dict:
    """A13 on the checkpoints present: full-trajectory PCA, drift, A3/A6/A7, A8 trunk, window variant (C14)."""
    T = run.config.train.total_steps
    steps, rows, note = beta2_spans(run)
    if len(rows) < 2:
        return {"note": f"{len(rows)} checkpoint(s) after step 1; need >= 2"}
    traj = trunk_trajectory(run.run_dir, steps)
    out, dec = beta2_trajectory_geometry(traj, rows, T, sc.step(200))
    if note:
        out["note"] = note
    out["corr_p_r"] = pearson_table(dec.steps, run.metric("p_ood", dec.steps), dec.residual_norm, fit_windows(T))
    out["early_corr"] = out["corr_p_r"][0]["r"]
    win = safe_window(traj, beta2_window(run))
    out["window_pc1"] = win.get("pc1")
    if "note" not in win:
        ex = _alignment_extras(traj, win["window_steps"], sc, (800, 1200, 1600, 2200, 3000, 3600))
        out["window_abs_cos"] = float(np.mean(np.abs(list(ex["update_cos"].values())))) if ex["update_cos"] else None
    return out


def beta2_row(run_dir) -> dict:
    """One beta2-table row; a diverged or partial run keeps whatever could be measured, with a marker."""
    run = load_run(run_dir, require_steps=1)
    t = run.config.train
    row = {"name": Path(run_dir).name, "beta2": t.beta2, "p_probe": t.p_probe, **run_summary(run_dir),
           **_eval_summary(run)}
    row["marker"] = (f"diverged at step {row['diverged_step']}" if row["status"] == "diverged"
                     else "" if row["status"] in ("finished", "early_stopped") else row["status"])
    try:
        row.update(_beta2_geometry(run, Scale.of_control(run.config)))
    except (ValueError, ck.RunError) as e:  # e.g. non-finite weights after a blow-up
        row["note"] = f"geometry not computed: {e}"
    row["paper"] = PAPER_BETA2.get(round(t.beta2, 2))
    row["curves"] = _curves(run)
    return row


def load_beta2_runs(root, allow_missing: bool = False, allow_running: bool = False) -> list[RunInfo]:
    """The runs under a sweep directory, by decreasing beta2, checked (runinfo.check_run) and of one setup."""
    root = Path(root)
    dirs = sorted((p for p in root.iterdir() if (p / "run.json").exists()),
                  key=lambda p: (-ck.read_json(p / "run.json")["config"]["train"]["beta2"], p.name))
    if not dirs:
        raise ck.RunError(f"{root} holds no beta2 runs; run beta2_sweep.py first")
    runs = [check_run(load_run(d, require_steps=1), allow_missing, allow_running) for d in dirs]
    for r in runs[1:]:
        check_same_setup(runs[0], r)
    return runs


def beta2_table(root, allow_missing: bool = False, allow_running: bool = False) -> dict:
    runs = load_beta2_runs(root, allow_missing, allow_running)
    rows = [beta2_row(r.run_dir) for r in runs]
    common = common_rows_geometry(runs)
    for row, extra in zip(rows, common):
        row.update(extra)
    return {"rows": rows, "common_last_step": common[0]["common_last_step"] if common else None}


def common_rows_geometry(runs: list[RunInfo]) -> list[dict]:
    """Row-normalized PC1 and drift of every run over the same rows (first regular checkpoint .. the last step all
    runs reached), so a run that diverged early is compared over its own span, not against longer trajectories."""
    last = min(r.last_step for r in runs)
    out = []
    for run in runs:
        steps, rows = common_span(run, last)
        extra = {"common_last_step": last, "pc1_common": None, "drift_common": None}
        if len(rows) >= 2:
            try:
                traj = trunk_trajectory(run.run_dir, steps)
                extra.update(pc1_common=common_pc1(traj, rows), drift_common=traj.norm(traj.diff(steps[-1], 1)))
            except ValueError as e:
                extra["note_common"] = f"not computed: {e}"
        out.append(extra)
    return out


# --------------------------------------------------------------------------------------------------------------
# Reheating (A14)
# --------------------------------------------------------------------------------------------------------------

def main_backbone(main_dir) -> tuple[np.ndarray, np.ndarray, dict]:
    """(theta_ref, v_b, info) of a main run, trunk: v_b = row-normalized PC1 of theta_s - theta_1 over the regular
    checkpoints after step 1 (A2), sign-fixed so that a(t_last) > 0. Taken from drift.analysis.backbone's stored directions
    when that module exists; otherwise computed here the same way."""
    from drift.analysis.gram_stream import flat_vector, materialize
    if importlib.util.find_spec("drift.analysis.backbone") is not None:
        from drift.analysis.backbone import load_directions
        payload = load_directions(main_dir, ["trunk_rownorm_pc1"])
        ref = int(payload["ref_step"])
        v = payload["vectors"]["trunk_rownorm_pc1"].double().numpy()
        info = {"source": "drift.analysis.backbone.load_directions (trunk_rownorm_pc1)", "ref_step": ref,
                "rows": [int(payload["row_steps"][0]), int(payload["row_steps"][-1])]}
    else:
        main = load_run(main_dir)
        ref, rows = 1, [s for s in main.regular_steps(1) if s > 1]
        traj = trunk_trajectory(main_dir, [1] + rows)
        pca = drift_pca(traj, 1, rows, row_normalize=True, n_directions=1)
        v = materialize(main_dir, [1] + rows, {"v_b": ("trunk", pca.backbone)}, progress=False)["v_b"]
        v = v.double().numpy()
        info = {"source": "row-normalized trunk PC1 (A2), computed here", "ref_step": 1, "pc1": 100 * pca.rho1,
                "rows": [rows[0], rows[-1]]}
    theta_ref = flat_vector(ck.load_checkpoint(main_dir, ref)["model"], "trunk").double().numpy()
    return theta_ref, v / np.linalg.norm(v), info


def backbone_coords(run_dir, steps: Sequence[int], theta1: np.ndarray, v_b: np.ndarray) -> dict:
    """a(t) = <theta_t - theta_1, v_b> and ||r(t)|| for checkpoints of any run with the same model."""
    from drift.analysis.gram_stream import flat_vector
    a, r = [], []
    for step, state in ck.iter_checkpoints(run_dir, steps):
        x = flat_vector(state, "trunk").double().numpy() - theta1
        if x.shape != theta1.shape:
            raise ck.RunError(f"{run_dir} step {step}: trunk size differs from the main run's")
        a.append(float(x @ v_b))
        r.append(math.sqrt(max(float(x @ x) - a[-1] ** 2, 0.0)))
    return {"step": [int(s) for s in steps], "a": a, "residual_norm": r}


def reheat_readouts(run: RunInfo, threshold: float = 0.6) -> dict:
    p = [r["p_ood"] for r in run.metrics]
    s = run.eval_steps()
    if not p:
        return {"peak": None, "peak_step": None, "first_above": None, "end": None, "threshold": threshold}
    i = int(np.argmax(p))
    first = next((st for st, v in zip(s, p) if v >= threshold), None)
    return {"peak": p[i], "peak_step": s[i], "first_above": first, "end": p[-1], "end_step": s[-1],
            "step1": p[0], "threshold": threshold}


def reheat_table(main_dir, reheat_dirs: dict[float, Path], threshold: float = 0.6) -> dict:
    main = load_run(main_dir)
    theta1, v_b, vinfo = main_backbone(main_dir)
    main_end = backbone_coords(main_dir, [main.last_step], theta1, v_b)
    rows = []
    for lr, d in sorted(reheat_dirs.items(), reverse=True):
        run = load_run(d)
        check_same_setup(main, run)
        coords = backbone_coords(d, [s for s in run.steps], theta1, v_b)
        rows.append({"lr": lr, "name": Path(d).name, **run_summary(d), **reheat_readouts(run, threshold),
                     "coords": coords, "curves": _curves(run), "paper": PAPER_REHEAT.get(lr)})
    return jsonable({"main_run": str(main_dir), "main_last_step": main.last_step,
                     "start_p_ood": main.metrics[-1]["p_ood"] if main.metrics else None,
                     "paper_start_p_ood": PAPER_REHEAT_START, "backbone": vinfo, "main_end_coords": main_end,
                     "main_curve": _curves(main), "rows": rows})
