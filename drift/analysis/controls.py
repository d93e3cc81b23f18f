"""Table 4 of the optimizer controls (PROTOCOL A12, claims C15-C16): every control run's status, eval summary and
the geometry of the standard checkpoint window, with the paper's values beside ours. Which runs exist and how
they were configured is drift/train/control_runs.py.

    table = control_table("runs/ctrl_s42")
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from drift.analysis.control_geometry import (alignment_extras, curves, eval_summary, present_steps, safe_window,
                                             standard_window, trunk_trajectory)
from drift.paper import PAPER_TABLE4
from drift.run import checkpoint as ck
from drift.run.info import RunInfo, check_run, check_same_setup, load_run
from drift.run.kinds import require_kind
from drift.train.control_runs import CONTROL_RUNS, RUN_OPTIMIZERS, Scale, early_stop_decision, run_summary

OPTIMIZER_LABELS = {"adamw": "AdamW", "sgd": "SGD", "sgd_momentum": "SGD+momentum", "nesterov_sgdw": "Nesterov SGDW"}



def load_controls(root, runs: Sequence[str] = CONTROL_RUNS, allow_missing: bool = False,
                  allow_running: bool = False) -> dict[str, RunInfo]:
    """The control runs present under root (root/A, root/B, ...), checked to be a controls set (drift/run/kinds.py),
    to share model and data, to hold the optimizer their directory name stands for (a row is labelled from
    run.json, never from the name), and to pass the analysis checks (runinfo.check_run)."""
    root = Path(root)
    require_kind(root, "controls")
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


def control_row(name: str, run: RunInfo) -> dict:
    """One Table 4 row: status, eval summary, standard-window geometry (+ alignment extras)."""
    row = {"run": name, "optimizer": optimizer_label(run), **run_summary(run.run_dir), **eval_summary(run)}
    sc = Scale.of_control(run.config)
    window, missing = present_steps(standard_window(run.config), run)
    row.update(window=[window[0], window[-1]] if window else None, window_missing=missing)
    try:
        traj = trunk_trajectory(run.run_dir, [s for s in run.steps if s >= 1])
        geo = safe_window(traj, window)
    except ValueError as e:  # non-finite weights after a blow-up
        traj, geo = None, {"note": f"geometry not computed: {e}"}
    row["geometry"] = geo
    row.update({k: geo.get(k) for k in ("pc1", "pc1_top10", "k95", "k99", "drift")})
    if "note" not in geo:
        row["extras"] = alignment_extras(traj, window, sc, (1000, 1600, 2200, 3000, 3800))
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
    return {"rows": rows, "curves": {name: curves(run) for name, run in runs.items()},
            "scale": Scale.of_control(next(iter(runs.values())).config).factor}
