"""What the mechanism analyses (A8-A10) read from a run besides its checkpoints' contents: the trajectory's
checkpoints (from step 1), targets snapped to them, and the stored backbone directions (drift.analysis.backbone).

    run = load_run("runs/cpu_s42")
    steps = nearest_checkpoints(run, [1, 800, 1800])        # each target snapped to a checkpoint
    vectors, provenance = load_vectors("runs/cpu_s42", ["block0_raw_pc1"])
    keys, v, provenance = scope_direction("runs/cpu_s42", "block0", model)   # v_b of a scope, checked
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

import torch

from drift.analysis import backbone
from drift.run import provenance
from drift.run.checkpoint import RunError
from drift.run.info import RunInfo
from drift.run.params import scope_keys


def trajectory_steps(run: RunInfo) -> list[int]:
    """Checkpoints from step 1 on: theta(0) of every analysis is the step-1 checkpoint (PROTOCOL 8.4)."""
    return [s for s in run.steps if s >= 1]


def nearest_checkpoints(run: RunInfo, targets: Iterable[float]) -> list[int]:
    """Each target snapped to the nearest checkpoint (>= 1), duplicates dropped, order kept."""
    ckpts = np.array(trajectory_steps(run))
    out: list[int] = []
    for t in targets:
        s = int(ckpts[int(np.argmin(np.abs(ckpts - float(t))))])
        if s not in out:
            out.append(s)
    return out


def directions_provenance(run: RunInfo, steps: Sequence[int], dir_info: dict, read: Sequence[str] = ()) -> dict:
    """drift.run.provenance.record of an analysis that read the checkpoints `steps`, the directions of `dir_info`
    (their checkpoints count among its inputs) and the analysis JSON files `read` (names under analysis/)."""
    artefacts = {f"analysis/{backbone.DIRECTIONS}": dir_info["digest"]}
    artefacts.update({f"analysis/{n}": provenance.analysis_digest(run.run_dir / "analysis" / n) for n in read})
    return provenance.record(run.run_dir, sorted({*map(int, steps), *map(int, dir_info["steps"])}), run.steps,
                             artefacts)


def check_steps(run: RunInfo, steps: Sequence[int]) -> list[int]:
    missing = [s for s in steps if s not in run.steps]
    if missing:
        raise RunError(f"no checkpoint at step(s) {missing} in {run.run_dir}; available: {run.steps}")
    return [int(s) for s in steps]


def load_vectors(run_dir, names: Sequence[str]) -> tuple[dict, dict]:
    """({name: vector or None}, info) from the stored backbone directions (computed if missing, refused if damaged
    or out of date); info holds their steps and the file's digest, for the provenance of what is computed."""
    found = backbone.load_directions(run_dir)  # all names: trunk_switch exists only if p_ood has a switch pair
    vectors = found["vectors"]
    info = {"ref_step": found["ref_step"], "steps": found["steps"], "switch_pair": found.get("switch_pair"),
            "scopes": {n: found["scopes"].get(n) for n in names}, "digest": found["digest"]}
    return {n: vectors.get(n) for n in names}, info


def scope_direction(run_dir, scope: str, model: torch.nn.Module) -> tuple[list[str], torch.Tensor, dict]:
    """(the scope's parameter keys, v_b = its raw PC1 as a flat float64 CPU vector, the directions' provenance).
    An unknown scope or a direction that does not fit the model is a RunError."""
    name = f"{scope}_raw_pc1"
    vecs, info = load_vectors(run_dir, [name])
    if vecs[name] is None:
        raise RunError(f"direction {name} is not available for {run_dir}; scopes are block<l>, block<l>+ln, trunk")
    state = model.state_dict()
    keys = scope_keys(state.keys(), scope)
    v = vecs[name].to(torch.float64).reshape(-1)
    D = sum(state[k].numel() for k in keys)
    if v.numel() != D:
        raise RunError(f"direction {name} has {v.numel()} entries but scope {scope} has {D}; recompute directions")
    return keys, v, info
