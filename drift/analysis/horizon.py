"""C12 at equal horizon: the update over a checkpoint interval against the gradient summed over the same steps.

A9 (drift/analysis/gradients.py) compares the update u = theta_s' - theta_s, made by s' - s optimizer steps, with
single mini-batch gradients: a one-step quantity against a many-step one, so part of the gap could be the horizon
alone (summing many noisy gradients averages their noise away). Here the gradient side covers the same steps:

    G(s, s') = sum over t in (s, s'] of  grad at theta_s of the loss of training step t's batch

(all grad_accum micro-batches of step t, lambda at t as in training, each micro-batch's loss divided by grad_accum,
exactly the trainer's step loss), evaluated at the interval's start because the optimizer's path in between is what
is being explained. The rule (fixed in drift/report/verdicts.py before any result, applied in report/variants.py):
held when mean |cos(u, v_b)| >= 10 x mean |cos(G, v_b)|, the old rule's factor. Also reported: |cos(u, G)|, how far the
update is from plain summed-gradient descent, and the isotropic floor of the scope.

    results, params, inputs = horizon_analysis("runs/cpu_s42")      # -> analysis/gradient_horizon.json
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from drift.analysis.gradients import default_gradient_steps, floors
from drift.analysis.inputs import directions_provenance, scope_direction
from drift.analysis.minibatch import load_model_at, progress_bar, scope_only_grads, sync
from drift.data.context import build_context
from drift.geometry.jsonable import jsonable
from drift.model import GPT
from drift.run.checkpoint import RunError, load_checkpoint
from drift.run.info import RunInfo, load_run
from drift.run.params import flatten, grad_vector
from drift.train.optim import lambda_at
from drift.train.trainer import composite_loss

TRAINING_STREAM = 0    # the trainer's own batch stream: G sums the batches the optimizer actually saw


def intervals(run: RunInfo, starts: Sequence[int]) -> list[tuple[int, int]]:
    """(s, s') for each start s: s' is the next checkpoint on the regular cadence after s. Starts with no later
    regular checkpoint are dropped."""
    regular = run.regular_steps(1)
    out = []
    for s in starts:
        later = [r for r in regular if r > s]
        if later:
            out.append((int(s), int(later[0])))
    return out


def summed_gradient(model: GPT, ctx, start: int, end: int, keys: Sequence[str]) -> torch.Tensor:
    """G(start, end) restricted to `keys`, in canonical order: backward of every micro-batch of training steps
    start+1..end at the model's current weights, accumulated in .grad (one backward per micro-batch)."""
    t = ctx.cfg.train
    model.eval()  # the model has no dropout; eval as in A9, so the two analyses differ only in the horizon
    model.zero_grad(set_to_none=True)
    with scope_only_grads(model, keys):
        for step in range(start + 1, end + 1):
            lam = lambda_at(step, t)
            for micro in range(t.grad_accum):
                x, y, mask = (z.to(ctx.device, non_blocking=True) for z in ctx.train_batches.get(step, micro))
                with ctx.autocast():
                    loss_lm, loss_probe = composite_loss(model(x), y, mask)
                ((loss_lm + lam * loss_probe) / t.grad_accum).backward()
        g = grad_vector(model, list(keys), dtype=torch.float64, device="cpu")
    model.zero_grad(set_to_none=True)
    return g


def _abs_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    return abs(float(a @ b)) / (na * nb) if na > 0 and nb > 0 else math.nan


def horizon_summary(rows: list[dict]) -> dict:
    """Means over intervals and the ratio of the update's mean |cos| to the summed gradient's (the report applies
    the rule's factor, drift/report/rules.py THRESHOLDS["update_over_grad"])."""
    u = float(np.mean([r["update_abs_cos"] for r in rows])) if rows else math.nan
    g = float(np.mean([r["summed_grad_abs_cos"] for r in rows])) if rows else math.nan
    ratio = u / g if g > 0 else math.nan
    return {"update_mean_abs_cos": u, "summed_grad_mean_abs_cos": g, "update_over_summed_grad": ratio,
            "update_summed_grad_mean_abs_cos": float(np.mean([r["update_summed_grad_abs_cos"] for r in rows]))
            if rows else math.nan,
            "n_intervals": len(rows)}


def horizon_analysis(run_dir, starts: Sequence[int] | None = None, scope: str = "block0",
                     progress: bool = True) -> tuple[dict, dict, dict]:
    """Per interval (s, s') from each start: |cos(u, v_b)|, |cos(G, v_b)|, |cos(u, G)| in `scope`, with v_b the
    scope's raw PC1 (analysis/directions.pt); default starts: A9's checkpoints."""
    run = load_run(run_dir)
    starts = list(starts) if starts else default_gradient_steps(run)
    missing = [s for s in starts if s not in run.steps]
    if missing:
        raise RunError(f"{run_dir} has no checkpoint at step(s) {missing}; choose among {run.steps[0]}..{run.steps[-1]}")
    pairs = intervals(run, starts)
    if not pairs:
        raise RunError(f"{run_dir}: no start in {starts} has a later regular checkpoint")
    ctx = build_context(run.config, run_dir, stream=TRAINING_STREAM)
    model = GPT(ctx.model_cfg).to(ctx.device)
    keys, v, dir_info = scope_direction(run_dir, scope, model)
    rows = []
    for s, e in progress_bar(pairs, "equal-horizon gradients", progress):
        t0 = time.perf_counter()
        load_model_at(model, run_dir, s)
        G = summed_gradient(model, ctx, s, e, keys)
        u = (flatten(load_checkpoint(run_dir, e)["model"], keys, torch.float64)
             - flatten(load_checkpoint(run_dir, s)["model"], keys, torch.float64))
        sync(ctx.device)
        rows.append({"start": s, "end": e, "n_steps": e - s, "lam_start": lambda_at(s + 1, run.config.train),
                     "update_abs_cos": _abs_cos(u, v), "summed_grad_abs_cos": _abs_cos(G, v),
                     "update_summed_grad_abs_cos": _abs_cos(u, G), "update_norm": float(u.norm()),
                     "summed_grad_norm": float(G.norm()), "seconds": time.perf_counter() - t0})
    results = {"scope": scope, "direction": f"{scope}_raw_pc1", "floors": floors(int(v.numel())), "intervals": rows,
               "switch_step": run.switch_step, "summary": horizon_summary(rows)}
    params = {"starts": starts, "scope": scope, "stream": TRAINING_STREAM, "model_mode": "eval",
              "gradient": "sum over the interval's training steps of the step loss's gradient at its start"}
    used = sorted({x for p in pairs for x in p})
    return jsonable(results), params, {"directions": dir_info, "steps": used, "device": str(ctx.device),
                                        "provenance": directions_provenance(run, used, dir_info)}
