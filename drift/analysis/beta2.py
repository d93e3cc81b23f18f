"""The beta2 table (PROTOCOL A13, claims C14 and C17-C19): per run of a sweep, the full-trajectory PCA, drift,
gamma fits, update alignment, the window variant and the common-span PC1, with the paper's values beside ours;
and the p_probe groups the beta2 claims compare.

    sweep = beta2_table("runs/beta2_s42")
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from drift.analysis.control_geometry import (alignment_extras, curves, eval_summary, present_steps, safe_window,
                                             standard_window, trunk_trajectory)
from drift.geometry.fits import pearson_table, power_law_table
from drift.geometry.alignment import update_alignment
from drift.geometry.decomposition import Decomposition, decompose
from drift.geometry.pca import drift_pca
from drift.geometry.trajectory import Trajectory
from drift.paper import PAPER_BETA2
from drift.run import checkpoint as ck
from drift.run.info import COMPLETED, RunInfo, check_run, check_same_setup, load_run
from drift.run.kinds import require_kind
from drift.train.control_runs import Scale, run_summary



BETA2_MIN_RUNS = 3  # a trend is read over >= 3 beta2 values: smaller p_probe groups (the Makefile's p_probe 0.20


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
    return present_steps(standard_window(run.config), run)[0]


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
        ex = alignment_extras(traj, win["window_steps"], sc, (800, 1200, 1600, 2200, 3000, 3600))
        out["window_abs_cos"] = float(np.mean(np.abs(list(ex["update_cos"].values())))) if ex["update_cos"] else None
    return out


def beta2_row(run_dir) -> dict:
    """One beta2-table row; a diverged or partial run keeps whatever could be measured, with a marker."""
    run = load_run(run_dir, require_steps=1)
    t = run.config.train
    row = {"name": Path(run_dir).name, "beta2": t.beta2, "p_probe": t.p_probe, **run_summary(run_dir),
           **eval_summary(run)}
    row["marker"] = (f"diverged at step {row['diverged_step']}" if row["status"] == "diverged"
                     else "" if row["status"] in COMPLETED else row["status"])
    try:
        row.update(_beta2_geometry(run, Scale.of_control(run.config)))
    except (ValueError, ck.RunError) as e:  # e.g. non-finite weights after a blow-up
        row["note"] = f"geometry not computed: {e}"
    row["paper"] = PAPER_BETA2.get(round(t.beta2, 2))
    row["curves"] = curves(run)
    return row


def load_beta2_runs(root, allow_missing: bool = False, allow_running: bool = False) -> list[RunInfo]:
    """The runs under a sweep directory, by decreasing beta2, checked (a beta2 sweep, drift/run/kinds.py;
    runinfo.check_run) and of one setup."""
    root = Path(root)
    require_kind(root, "beta2")
    dirs = sorted((p for p in root.iterdir() if (p / "run.json").exists()),
                  key=lambda p: (-ck.read_config(p).train.beta2, p.name))
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


def after_warmup_span(run: RunInfo, last: int) -> list[int]:
    """C14, C17 and C19's one span (report/verdicts.py rule 4, fixed before any result): the regular checkpoints
    from the end of the warmup to `last`, the last step every run of the sweep reached."""
    w = run.config.train.warmup_steps
    return [s for s in run.regular_steps(1) if w <= s <= last]


def span_geometry(traj: Trajectory, span: Sequence[int]) -> dict:
    """Over one span, anchored at its first checkpoint: row-normalized PC1 (%) of the drifts, the drift across the
    span, and mean |C| of its consecutive updates with that PC1 (A8)."""
    pca = drift_pca(traj, span[0], list(span[1:]), row_normalize=True, n_directions=1)
    al = update_alignment(traj, pca.backbone, steps=list(span))
    return {"span": [int(span[0]), int(span[-1])], "pc1_span": 100 * pca.rho1,
            "drift_span": traj.norm(traj.diff(span[-1], span[0])), "abs_cos_span": al["mean_abs_cos"]}


def common_rows_geometry(runs: list[RunInfo]) -> list[dict]:
    """Row-normalized PC1 and drift of every run over the same rows (first regular checkpoint .. the last step all
    runs reached), so a run that diverged early is compared over its own span, not against longer trajectories;
    and the after-warmup span's PC1, drift and update alignment (span_geometry)."""
    last = min(r.last_step for r in runs)
    out = []
    for run in runs:
        steps, rows = common_span(run, last)
        span = after_warmup_span(run, last)
        extra = {"common_last_step": last, "pc1_common": None, "drift_common": None, "span": None,
                 "pc1_span": None, "drift_span": None, "abs_cos_span": None}
        if len(span) < 3:
            extra["note_span"] = (f"{len(span)} regular checkpoint(s) between the warmup's end "
                                  f"({run.config.train.warmup_steps}) and step {last}; need >= 3")
        if len(rows) >= 2:
            try:
                traj = trunk_trajectory(run.run_dir, steps)
                extra.update(pc1_common=common_pc1(traj, rows), drift_common=traj.norm(traj.diff(steps[-1], 1)))
                if len(span) >= 3:
                    extra.update(span_geometry(traj, span))
            except ValueError as e:
                extra["note_common"] = f"not computed: {e}"
        out.append(extra)
    return out
