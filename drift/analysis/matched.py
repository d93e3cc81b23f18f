"""Table 5 of the optimizer controls (PROTOCOL A12, matched validation loss): each optimizer's checkpoint at the
matched loss, and the geometry of the paper's windows and of windows centred on that checkpoint.

    matched = matched_table("runs/ctrl_s42")
"""
from __future__ import annotations

import math
from typing import Sequence

from drift.analysis.control_geometry import present_steps, safe_window, trunk_trajectory
from drift.analysis.controls import load_controls, optimizer_label
from drift.paper import PAPER_MATCHED_WINDOWS
from drift.run import checkpoint as ck
from drift.run.info import RunInfo
from drift.train.control_runs import Scale



def match_val_loss(metrics: list[dict], target: float, rel_tol: float = 0.02,
                   ckpt_steps: Sequence[int] | None = None, after_step: int = 0) -> dict:
    """The matched-loss step: the first eval within rel_tol * |target| (the moment the run reaches the matched
    loss), or, when no eval is that close, the eval closest to `target` (ties: the earlier step); restricted to
    steps with a checkpoint when `ckpt_steps` is given. Also the closest eval itself, every step within tolerance,
    and the first pair of consecutive evals that brackets the target (where the curve crosses it).

    Why the first step within tolerance and not the closest: the default target is run C's own final loss, so the
    closest eval of C is always its last one, where no window can be centred. The paper centres SGD+momentum's
    windows on step 2200 of a run whose loss has flattened near its final value by then, i.e. on where it first
    reaches the matched loss.

    after_step: only evals after this step count (the warmup's end for the C16 variant registered in
    drift/report/verdicts.py: inside the warmup the learning rate, not the optimizer, sets the geometry)."""
    have = None if ckpt_steps is None else set(int(s) for s in ckpt_steps)
    evals = [(int(r["step"]), float(r["val_loss"])) for r in metrics
             if "val_loss" in r and r["val_loss"] is not None and math.isfinite(r["val_loss"])
             and (have is None or int(r["step"]) in have) and int(r["step"]) > after_step]
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


def _matched_windows(name: str, run: RunInfo, match: dict, sc: Scale) -> list[dict]:
    out = []
    paper = PAPER_MATCHED_WINDOWS.get(name, [])
    for label, steps, ref in paper:
        want = sc.steps(steps)
        present, missing = present_steps(want, run)
        out.append({"window": label, "kind": "paper", "steps": want, "missing": missing,
                    "paper": dict(zip(("pc1", "k95", "k99", "drift"), ref))})
    if match["step"] is not None:
        for label, steps in centred_windows(match["step"], sc.step(200), run.steps).items():
            out.append({"window": label, "kind": "centred", "steps": steps, "missing": [], "paper": None})
    late = match.get("after_warmup") or {}
    if late.get("within_tol"):  # the C16 variant: centred on the first match after the warmup
        for label, steps in centred_windows(late["step"], sc.step(200), run.steps).items():
            out.append({"window": f"after warmup, {label}", "kind": "after-warmup", "steps": steps, "missing": [],
                        "paper": None})
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
        warmup = run.config.train.warmup_steps
        match["after_warmup"] = match_val_loss(run.metrics, target, rel_tol, run.steps, after_step=warmup)
        match["after_warmup"]["warmup_steps"] = warmup
        note = None if match["within_tol"] else (
            f"no checkpoint within {rel_tol:.0%} of {target:.3f}: nearest is step {match['step']} "
            f"(val {match['val_loss']:.3f})" if match["step"] is not None else "no evals")
        rows.append({"run": name, "optimizer": optimizer_label(run), "match": match, "note": note,
                     "windows": _matched_windows(name, run, match, Scale.of_control(run.config))})
    return {"target": target, "rel_tol": rel_tol, "rows": rows}
