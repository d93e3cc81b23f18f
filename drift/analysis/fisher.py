"""A10, Fisher curvature (claim C13): at selected checkpoints, G = M mini-batch-mean gradients of the composite loss
on the trunk, then the Rayleigh quotients of v_b, v_PC2, v_sw and random directions, the anisotropy and the top
Fisher eigenpair (drift.geometry.fisher). Fresh mini-batches come from a batch stream independent of training.

    results, params, inputs = fisher_analysis("runs/cpu_s42")
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from drift.analysis.inputs import (check_steps, directions_provenance, load_vectors, nearest_checkpoints,
                                   trajectory_steps)
from drift.analysis.minibatch import load_model_at, module_order_index, progress_bar, stacked_gradients, sync
from drift.geometry import fisher as fm
from drift.geometry.jsonable import jsonable
from drift.geometry.switching import find_peaks_troughs, switch_pairs
from drift.paper import PAPER_C13
from drift.run.checkpoint import RunError
from drift.data.context import RunContext, build_context
from drift.model import GPT
from drift.train.optim import lambda_at
from drift.run.params import scope_keys
from drift.run.info import RunInfo, load_run

FISHER_STREAM = 102  # batch stream for fresh mini-batches; 0 is training
FISHER_DIRECTIONS = {"v_b": "trunk_raw_pc1", "v_pc2": "trunk_raw_pc2", "v_sw": "trunk_switch"}


def default_fisher_steps(run: RunInfo) -> dict[int, list[str]]:
    """{step: roles}: early (first regular checkpoint after 1), the early p_ood peak and its trough, the first
    checkpoint after the lambda switch, the highest later peak other than the early one (if any), and the last
    checkpoint."""
    ckpts = trajectory_steps(run)
    regular = [s for s in run.regular_steps(1) if s > 1]
    roles: list[tuple[float, str]] = [(regular[0] if regular else ckpts[0], "early")]
    evals = run.eval_steps()
    p_ood = run.metric("p_ood", evals)
    ext = find_peaks_troughs(p_ood)
    pairs = switch_pairs(ext["peaks"], ext["troughs"])
    if pairs:
        roles += [(evals[pairs[0][0]], "early_peak"), (evals[pairs[0][1]], "early_trough")]
    after = [s for s in ckpts if s > run.switch_step]
    if after:
        roles.append((after[0], "after_switch"))
        late = [i for i in ext["peaks"] if evals[i] > after[0] and (not pairs or i != pairs[0][0])]
        if late:
            roles.append((evals[max(late, key=lambda i: p_ood[i])], "late_peak"))
    roles.append((ckpts[-1], "last"))
    out: dict[int, list[str]] = {}
    for target, role in roles:
        out.setdefault(nearest_checkpoints(run, [target])[0], []).append(role)
    return dict(sorted(out.items()))


def fisher_summary(per_step: list[dict]) -> dict:
    """q(v_b) growth, the alpha peak, and how far v_b is from the top Fisher eigenvector."""
    q_b = [r["q"]["v_b"] for r in per_step]
    alpha = [r["alpha"] for r in per_step]
    i = int(np.argmax(alpha))
    return {"steps": [r["step"] for r in per_step], "q_b": q_b, "alpha": alpha,
            "q_b_last_over_first": q_b[-1] / q_b[0] if q_b[0] > 0 else math.nan,
            "alpha_max": alpha[i], "alpha_max_step": per_step[i]["step"],
            "u1_overlap_v_b": [r["u1_overlap"]["v_b"] for r in per_step],
            "lambda_1": [r["lambda_1"] for r in per_step],
            "alpha_module_order": [r["module_order"]["alpha"] for r in per_step],
            "q_b_module_order": [r["module_order"]["q_v_b"] for r in per_step],
            "seconds_per_checkpoint": float(np.mean([r["seconds"] for r in per_step]))}


def fisher_checkpoint(model: GPT, ctx: RunContext, step: int, keys: Sequence[str], named: dict, m: int, k: int,
                      seed: int, bug_index: torch.Tensor) -> dict:
    """Load `step`, build G (m x D) once, and read out; seconds = load + gradients + readouts, without the
    module-order control (timed separately)."""
    sync(ctx.device)
    t0 = time.perf_counter()
    load_model_at(model, ctx.run_dir, step)
    G = stacked_gradients(model, ctx, step, m, keys, split=False)["composite"]
    sync(ctx.device)
    t1 = time.perf_counter()
    row = fm.fisher_readouts(G, named, "v_b", k, seed)
    sync(ctx.device)
    t2 = time.perf_counter()
    bug = fm.fisher_readouts(G[:, bug_index], {"v_b": named["v_b"]}, "v_b", k, seed)
    row["module_order"] = {"q_v_b": bug["q"]["v_b"], "q_random_mean": bug["q_random_mean"], "alpha": bug["alpha"]}
    sync(ctx.device)
    row.update(seconds=t2 - t0, seconds_gradients=t1 - t0, seconds_readouts=t2 - t1,
               seconds_control=time.perf_counter() - t2)
    return row


def fisher_analysis(run_dir, steps: Sequence[int] | None = None, m: int = 32, k: int = 10, seed: int = 0,
                    progress: bool = True) -> tuple[dict, dict, dict]:
    """A10 on the trunk: at each checkpoint, G = M mini-batch-mean gradients of the composite loss (eval mode,
    training lambda), then the drift.geometry.fisher readouts for v_b (raw trunk PC1), v_PC2, v_sw and K random w_k."""
    run = load_run(run_dir)
    roles = {s: ["requested"] for s in check_steps(run, steps)} if steps else default_fisher_steps(run)
    vecs, dir_info = load_vectors(run_dir, list(FISHER_DIRECTIONS.values()))
    if vecs[FISHER_DIRECTIONS["v_b"]] is None:
        raise RunError(f"the trunk backbone direction is not available for {run_dir}")
    ctx = build_context(run.config, run_dir, stream=FISHER_STREAM)
    model = GPT(ctx.model_cfg).to(ctx.device)
    keys = scope_keys(model.state_dict().keys(), "trunk")
    named = {short: (vecs[long].to(ctx.device, torch.float32).reshape(-1) if vecs[long] is not None else None)
             for short, long in FISHER_DIRECTIONS.items()}
    bug_index = module_order_index(model, keys).to(ctx.device)
    per_step = [{"step": step, "roles": roles[step], "lam": lambda_at(step, run.config.train),
                 **fisher_checkpoint(model, ctx, step, keys, named, m, k, seed, bug_index)}
                for step in progress_bar(list(roles), "fisher", progress)]
    results = {"steps": per_step, "switch_step": run.switch_step, "summary": fisher_summary(per_step),
               "paper": PAPER_C13}
    params = {"steps": list(roles), "m": m, "k": k, "seed": seed, "batch_size": run.config.train.micro_batch,
              "stream": FISHER_STREAM, "scope": "trunk", "model_mode": "eval", "directions": FISHER_DIRECTIONS,
              "lambda": "training lambda at each step (drift.train.optim.lambda_at)"}
    return jsonable(results), params, {"directions": dir_info, "device": str(ctx.device),
                                       "provenance": directions_provenance(run, list(roles), dir_info)}
