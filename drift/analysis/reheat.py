"""The reheating readouts (PROTOCOL A14, claim C20): each reheating run's p_ood peak, first crossing and end, and
its coordinates against the main run's backbone (a(t), ||r(t)||), with the paper's values beside ours.

    step, why = reheat_start(load_run("runs/cpu_s42"))          # where reheating starts, and why there
    table = reheat_table("runs/cpu_s42", {1e-3: Path("runs/cpu_s42/reheat/lr0.001")}, start_step=step)
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from drift.analysis.backbone import load_directions
from drift.analysis.control_geometry import curves
from drift.analysis.gram_stream import flat_vector
from drift.geometry.jsonable import jsonable
from drift.paper import PAPER_REHEAT, PAPER_REHEAT_START
from drift.run import checkpoint as ck
from drift.run.info import RunInfo, check_same_setup, load_run
from drift.run.kinds import require_kind
from drift.train.control_runs import run_summary



def main_backbone(main_dir) -> tuple[np.ndarray, np.ndarray, dict]:
    """(theta_ref, v_b, info) of a main run, trunk: v_b = row-normalized PC1 of theta_s - theta_1 over the regular
    checkpoints after step 1 (A2), sign-fixed so that a(t_last) > 0, from drift.analysis.backbone's stored
    directions."""
    payload = load_directions(main_dir, ["trunk_rownorm_pc1"])
    ref = int(payload["ref_step"])
    v = payload["vectors"]["trunk_rownorm_pc1"].double().numpy()
    info = {"source": "drift.analysis.backbone.load_directions (trunk_rownorm_pc1)", "ref_step": ref,
            "rows": [int(payload["row_steps"][0]), int(payload["row_steps"][-1])], "digest": payload["digest"]}
    theta_ref = flat_vector(ck.load_checkpoint(main_dir, ref)["model"], "trunk").double().numpy()
    return theta_ref, v / np.linalg.norm(v), info


def backbone_coords(run_dir, steps: Sequence[int], theta1: np.ndarray, v_b: np.ndarray) -> dict:
    """a(t) = <theta_t - theta_1, v_b> and ||r(t)|| for checkpoints of any run with the same model."""
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


# C20 is about re-entry from the late, low-p_ood state. The last checkpoint is that state when its p_ood is at most
# LOW_P_OOD (the regime study's end criterion, drift/studies/probe_study.py); otherwise reheating starts from the
# checkpoint with the lowest p_ood after the run's p_ood peak, and the report says so. Fixed before any reheating
# of the cpu preset was read.
LOW_P_OOD = 0.35


def reheat_start(main: RunInfo, rule: str = "auto") -> tuple[int, str]:
    """(checkpoint step, reason) reheating starts from: "last", or "auto" (see LOW_P_OOD), or a step number."""
    if rule == "last":
        return main.last_step, "the last checkpoint (asked for)"
    if rule != "auto":
        step = int(rule)
        if step not in main.steps:
            raise ck.RunError(f"--from {step}: {main.run_dir} has no checkpoint there; choose auto, last or one of "
                              f"its checkpoint steps")
        return step, f"checkpoint {step} (asked for)"
    p = {r["step"]: r["p_ood"] for r in main.metrics if r.get("p_ood") is not None and r["step"] in main.steps}
    last = main.last_step
    if last not in p or p[last] <= LOW_P_OOD:
        return last, (f"the last checkpoint (p_ood {p[last]:.3f} <= {LOW_P_OOD})" if last in p
                      else "the last checkpoint (no p_ood there)")
    peak = max(p, key=lambda s: (p[s], -s))
    after = [s for s in p if s > peak] or [last]
    low = min(after, key=lambda s: (p[s], -s))
    return low, (f"checkpoint {low}, the lowest p_ood ({p[low]:.3f}) after the peak at {peak}: the last checkpoint's "
                 f"p_ood {p[last]:.3f} > {LOW_P_OOD} is not a late low-p_ood state")


def check_reheat_of(main: RunInfo, run: RunInfo) -> None:
    """A reheating run of `main`: its kind is reheat and, when both runs record run ids, it started from one of
    main's checkpoints (run.json's init_from_run_id)."""
    require_kind(run.run_dir, "reheat", "reheat.py")
    started, main_id = run.info.get("init_from_run_id"), main.info.get(ck.RUN_ID)
    if started and main_id and started != main_id:
        raise ck.RunError(f"{run.run_dir} was started from a checkpoint of run {started}, not of {main.run_dir} "
                          f"(run {main_id}); delete it and run reheat.py {main.run_dir} again")


def check_reheat_start(run_dir: Path, init: str) -> None:
    """A reheating run already there must have started from the checkpoint `init` (the chosen start), or it is
    another experiment; checked before anything trains (check_reheat_of checks the run it came from)."""
    if (run_dir / "run.json").exists():
        was = ck.read_json(run_dir / "run.json").get("init_from")
        if was is not None and Path(was).name != Path(init).name:
            raise ck.RunError(f"{run_dir} was reheated from {Path(was).name}, not {Path(init).name}; delete it or "
                              f"pass --from with its start")


def reheat_table(main_dir, reheat_dirs: dict[float, Path], threshold: float = 0.6, start_step: int | None = None,
                 start_reason: str = "") -> dict:
    """The A14 table of reheating runs started from the main run's checkpoint `start_step` (default: its last)."""
    require_kind(main_dir, "main", "reheat.py")
    main = load_run(main_dir)
    start = main.last_step if start_step is None else start_step
    theta1, v_b, vinfo = main_backbone(main_dir)
    main_end = backbone_coords(main_dir, [start], theta1, v_b)
    rows = []
    for lr, d in sorted(reheat_dirs.items(), reverse=True):
        run = load_run(d)
        check_reheat_of(main, run)
        check_same_setup(main, run)
        coords = backbone_coords(d, [s for s in run.steps], theta1, v_b)
        rows.append({"lr": lr, "name": Path(d).name, **run_summary(d), **reheat_readouts(run, threshold),
                     "coords": coords, "curves": curves(run), "paper": PAPER_REHEAT.get(lr)})
    at_start = [r["p_ood"] for r in main.metrics if r["step"] == start and r.get("p_ood") is not None]
    return jsonable({"main_run": str(main_dir), "main_last_step": main.last_step, "start_step": start,
                     "start_reason": start_reason or ("the last checkpoint" if start == main.last_step else ""),
                     "start_p_ood": at_start[-1] if at_start else None,
                     "paper_start_p_ood": PAPER_REHEAT_START, "backbone": vinfo, "main_end_coords": main_end,
                     "main_curve": curves(main), "rows": rows})
