"""A8, update alignment (claim C11): |cos(u, v_b)| of the updates theta_s - theta_s' with the backbone, entirely from
the cached Gram matrices, since updates and the backbone are coefficient vectors over the checkpoints
(drift.geometry.trajectory). Returns (results, params, inputs) for `runinfo.write_analysis`.

    results, params, inputs = update_alignment_analysis("runs/cpu_s42")
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from drift.analysis import gram_cache
from drift.analysis.inputs import trajectory_steps
from drift.geometry.alignment import update_alignment
from drift.geometry.jsonable import jsonable
from drift.geometry.pca import drift_pca
from drift.geometry.trajectory import Trajectory
from drift.paper import PAPER_C11
from drift.run import provenance
from drift.run.checkpoint import RunError
from drift.run.info import load_run, read_analysis, write_analysis

UPDATE_PRODUCER = "backbone_update_analysis.py"


def default_update_scopes(n_layer: int) -> list[str]:
    return ["trunk"] + [f"block{l}" for l in range(n_layer)] + [f"block{l}+ln" for l in range(n_layer)]


def _backbone_kinds(scope: str) -> dict[str, bool]:
    """{kind: row_normalize}: per-block alignment uses the raw PC1 (the reference analysis); the trunk gets the
    row-normalized A2 backbone (the beta2-sweep variant) and the raw one (the Fisher's v_b) as well."""
    return {"row_normalized": True, "raw": False} if scope == "trunk" else {"raw": False}


def _alignment_summary(a: dict) -> dict:
    absC = np.asarray(a["abs_cos"], dtype=np.float64)
    i = int(np.argmax(absC)) if absC.size else None
    return {"mean_abs_cos": a["mean_abs_cos"], "max_abs_cos": float(absC[i]) if i is not None else None,
            "max_abs_cos_end_step": a["end_steps"][i] if i is not None else None,
            "flip_end_step": a["flip_end_step"], "flip_mid_step": a["flip_mid_step"],
            "mean_abs_cos_before_flip": a["mean_abs_cos_before_flip"],
            "mean_abs_cos_after_flip": a["mean_abs_cos_after_flip"],
            "mean_abs_cos_early": a.get("mean_abs_cos_early"), "n_updates": len(absC)}


def scope_update_alignment(traj: Trajectory, regular: list[int], kinds: dict[str, bool], lag: int | None,
                           early_step: float, persist: int = 2, backbone_rows: str = "regular") -> dict:
    """A8 for one scope: backbone = PC1 of drifts from regular[0] over the regular checkpoints (or, with
    backbone_rows="all", over every later checkpoint, as the beta2 analysis does); consecutive regular updates,
    and with `lag` also every (s - lag, s) pair of the whole trajectory."""
    ref = regular[0]
    rows = regular[1:] if backbone_rows == "regular" else [int(s) for s in traj.steps if s > ref]
    out = {}
    for kind, row_normalize in kinds.items():
        pca = drift_pca(traj, ref, rows, row_normalize=row_normalize, n_directions=1)
        entry = {"backbone": {"row_normalized": row_normalize, "ref_step": ref, "row_steps": rows,
                              "rho1": pca.rho1}}
        entry["consecutive"] = update_alignment(traj, pca.backbone, regular, None, early_step, persist)
        entry["consecutive_summary"] = _alignment_summary(entry["consecutive"])
        if lag is not None:
            entry["overlapping"] = update_alignment(traj, pca.backbone, traj.steps, lag, early_step, persist)
            entry["overlapping_summary"] = _alignment_summary(entry["overlapping"])
        out[kind] = entry
    return out


def update_alignment_analysis(run_dir, scopes: Sequence[str] | None = None, lag: int | None = None,
                              early_step: float | None = None, persist: int = 2,
                              backbone_rows: str = "regular") -> tuple[dict, dict, dict]:
    """A8 over `scopes` (default: trunk, every block, every block+ln). The overlapping-update variant runs when
    the run has dense checkpoints or a `lag` is given (default lag: the run's ckpt_every)."""
    if backbone_rows not in ("regular", "all"):
        raise ValueError(f"backbone_rows={backbone_rows!r}; use regular or all")
    run = load_run(run_dir, require_steps=3)
    steps = trajectory_steps(run)
    regular = [s for s in run.regular_steps(1) if s in steps]
    if len(regular) < 3:
        raise ValueError(f"{run_dir} has {len(regular)} regular checkpoints from step 1; A8 needs at least 3")
    n_layer = run.config.model.n_layer
    scopes = list(scopes) if scopes else default_update_scopes(n_layer)
    dense = bool(run.config.train.dense_ckpt) or lag is not None
    lag = (lag if lag is not None else run.ckpt_every) if dense else None
    early_step = float(early_step if early_step is not None else run.total_steps / 2)
    grams = gram_cache.trajectory_grams(run_dir, steps, scopes)
    results = {"scopes": {}, "switch_step": run.switch_step, "paper": PAPER_C11}
    for scope in scopes:
        traj = Trajectory(np.asarray(steps), grams[scope])
        results["scopes"][scope] = scope_update_alignment(traj, regular, _backbone_kinds(scope), lag,
                                                          early_step, persist, backbone_rows)
    params = {"scopes": scopes, "lag": lag, "early_step": early_step, "persist": persist,
              "backbone_rows": backbone_rows,
              "labels": "end and midpoint of each update interval"}
    inputs = {"steps": steps, "regular_steps": regular, "ckpt_every": run.ckpt_every,
              "dense_ckpt": run.config.train.dense_ckpt, "provenance": provenance.record(run_dir, steps, run.steps)}
    return jsonable(results), params, inputs


def update_reference(run_dir, scope: str) -> dict:
    """The A8 entry of `scope` (raw backbone) from analysis/update_alignment.json. A missing file is produced
    (default scopes plus `scope`) and written; a file without `scope` is left alone and the scope computed."""
    try:
        saved = read_analysis(run_dir, "update_alignment", UPDATE_PRODUCER)
    except RunError:
        saved = None
    if saved is not None and scope in saved["results"]["scopes"]:
        return saved["results"]["scopes"][scope]["raw"]
    if saved is not None:
        return update_alignment_analysis(run_dir, [scope])[0]["scopes"][scope]["raw"]
    scopes = default_update_scopes(load_run(run_dir).config.model.n_layer)
    results, params, inputs = update_alignment_analysis(run_dir, scopes + [scope] * (scope not in scopes))
    write_analysis(run_dir, "update_alignment", results, params, inputs)
    return results["scopes"][scope]["raw"]
