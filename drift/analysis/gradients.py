"""A9, gradient alignment (claim C12): at selected checkpoints, per-mini-batch gradients of the composite, LM-only
and probe-only losses restricted to a scope, |cos(g, v_b)| against the isotropic floors and an empirical one, and
the update/gradient gap against A8. Fresh mini-batches come from a batch stream independent of training.

    results, params, inputs = gradient_alignment_analysis("runs/cpu_s42")
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from drift.analysis.inputs import check_steps, directions_provenance, nearest_checkpoints, scope_direction
from drift.analysis.minibatch import load_model_at, module_order_index, progress_bar, stacked_gradients, sync
from drift.analysis.updates import update_reference
from drift.geometry import fisher as fm
from drift.geometry.alignment import iso_abs_cos_mean, iso_cos_rms
from drift.geometry.jsonable import jsonable
from drift.paper import PAPER_C12, PAPER_GRADIENT_STEPS, PAPER_MAIN_STEPS
from drift.data.context import build_context
from drift.model import GPT
from drift.train.optim import lambda_at
from drift.run.info import RunInfo, load_run

GRADIENT_STREAM = 101  # batch stream for fresh mini-batches; 0 is training


def default_gradient_steps(run: RunInfo) -> list[int]:
    """The paper's {1, 800, 1800, ..., 9800} scaled to the run's length and snapped to checkpoints."""
    scale = run.total_steps / PAPER_MAIN_STEPS
    return nearest_checkpoints(run, [1] + [s * scale for s in PAPER_GRADIENT_STEPS[1:]])


def floors(D: int) -> dict:
    """Isotropic |cos| levels in D dimensions: the paper's sqrt(2/(pi D)), its exact value, and 1/sqrt(D)."""
    return {"D": D, "abs_cos_mean_asymptotic": iso_abs_cos_mean(D, exact=False),
            "abs_cos_mean_exact": iso_abs_cos_mean(D, exact=True), "cos_rms": iso_cos_rms(D)}


def _stats(values: torch.Tensor) -> dict:
    v = values.double().reshape(-1)
    return {"values": v.tolist(), "mean": float(v.mean()) if v.numel() else None,
            "std": float(v.std(unbiased=False)) if v.numel() else None, "n": int(v.numel())}


def gradient_readouts(grads: dict[str, torch.Tensor], v: torch.Tensor, n_random: int, seed: int,
                      bug_index: torch.Tensor | None = None) -> dict:
    """|cos(g, v_b)| per batch for each gradient variant, the parallel (energy) fraction cos^2, the |cos| of the
    batch-averaged gradient, and the empirical floor: |cos| of the composite gradients with random directions.
    With `bug_index` (module_order_index), also the composite |cos| under the reference code's order mismatch."""
    out = {}
    for name, G in grads.items():
        c = fm.abs_cos_with(G, v)
        out[name] = {"abs_cos": _stats(c), "parallel_energy_fraction": float((c ** 2).mean()),
                     "mean_gradient_abs_cos": float(fm.abs_cos_with(G.mean(0, keepdim=True), v)[0]),
                     "grad_norm_mean": float(G.double().norm(dim=1).mean())}
    if bug_index is not None:
        G = grads["composite"]
        out["composite"]["module_order_abs_cos"] = _stats(fm.abs_cos_with(G[:, bug_index.to(G.device)], v))
    rand = fm.random_abs_cos(grads["composite"], n_random, seed)
    out["empirical_floor"] = {"mean": float(rand.mean()), "std": float(rand.std(unbiased=False)),
                              "n_random": n_random, "n_pairs": int(rand.numel())}
    return out


def _nearest_update(update: dict, step: int) -> float:
    ends = np.asarray(update["end_steps"], dtype=np.float64)
    return float(update["abs_cos"][int(np.argmin(np.abs(ends - step)))])


def gradient_summary(per_step: list[dict], update: dict, floor: dict) -> dict:
    """Means over checkpoints, the update/gradient ratio of mean |cos| (the C12 gap), and the gradient |cos|
    relative to the analytic and empirical floors."""
    def mean_of(variant: str) -> float:
        vals = [r[variant]["abs_cos"]["mean"] for r in per_step if variant in r]
        return float(np.mean(vals)) if vals else math.nan

    g = mean_of("composite")
    u = float(update["mean_abs_cos"])
    emp = float(np.mean([r["empirical_floor"]["mean"] for r in per_step]))
    per = [{"step": r["step"], "grad_abs_cos": r["composite"]["abs_cos"]["mean"],
            "update_abs_cos_nearest": _nearest_update(update, r["step"]),
            "ratio": _nearest_update(update, r["step"]) / r["composite"]["abs_cos"]["mean"]} for r in per_step]
    return {"grad_mean_abs_cos": g, "grad_lm_mean_abs_cos": mean_of("lm"),
            "grad_probe_mean_abs_cos": mean_of("probe"), "update_mean_abs_cos": u,
            "update_over_grad": u / g, "empirical_floor": emp,
            "grad_over_floor_asymptotic": g / floor["abs_cos_mean_asymptotic"],
            "grad_over_empirical_floor": g / emp, "update_over_floor_asymptotic": u / floor["abs_cos_mean_asymptotic"],
            "grad_module_order_mean_abs_cos": float(np.mean(
                [r["composite"]["module_order_abs_cos"]["mean"] for r in per_step
                 if "module_order_abs_cos" in r["composite"]] or [math.nan])),
            "per_step": per}


def gradient_alignment_analysis(run_dir, steps: Sequence[int] | None = None, n_batches: int = 8,
                                scope: str = "block0", n_random: int = 32, seed: int = 0,
                                progress: bool = True) -> tuple[dict, dict, dict]:
    """A9: at each checkpoint, `n_batches` fresh mini-batches; |cos(g, v_b)| for the composite, LM-only and
    probe-only gradients restricted to `scope` (v_b = the scope's raw PC1), the floors, and the update ratio."""
    run = load_run(run_dir)
    steps = check_steps(run, steps) if steps else default_gradient_steps(run)
    ctx = build_context(run.config, run_dir, stream=GRADIENT_STREAM)
    model = GPT(ctx.model_cfg).to(ctx.device)
    keys, v, dir_info = scope_direction(run_dir, scope, model)
    name, D = f"{scope}_raw_pc1", v.numel()
    v = v.to(ctx.device, torch.float32)
    bug_index = module_order_index(model, keys)
    per_step = []
    for step in progress_bar(steps, "gradients", progress):
        t0 = time.perf_counter()
        load_model_at(model, run_dir, step)
        grads = stacked_gradients(model, ctx, step, n_batches, keys, split=True)
        row = {"step": step, "lam": lambda_at(step, run.config.train),
               **gradient_readouts(grads, v, n_random, seed, bug_index)}
        sync(ctx.device)
        row["seconds"] = time.perf_counter() - t0
        per_step.append(row)
    update = update_reference(run_dir, scope)["consecutive"]
    prov = directions_provenance(run, steps, dir_info, read=["update_alignment.json"])
    floor = floors(D)
    results = {"scope": scope, "direction": name, "floors": floor, "steps": per_step,
               "update": {k: update[k] for k in ("end_steps", "mid_steps", "cos", "abs_cos", "mean_abs_cos")},
               "switch_step": run.switch_step, "summary": gradient_summary(per_step, update, floor),
               "paper": PAPER_C12}
    params = {"steps": steps, "n_batches": n_batches, "batch_size": run.config.train.micro_batch, "scope": scope,
              "n_random": n_random, "seed": seed, "stream": GRADIENT_STREAM, "model_mode": "eval",
              "lambda": "training lambda at each step (drift.train.optim.lambda_at)"}
    return jsonable(results), params, {"directions": dir_info, "device": str(ctx.device), "provenance": prov}
