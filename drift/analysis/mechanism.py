"""Why the trajectory drifts along the backbone: update alignment, gradient alignment and Fisher curvature
(PROTOCOL A8, A9, A10; claims C11-C13; figures 2 and 3).

Three analyses, each a function returning (results, params, inputs) for `runinfo.write_analysis`:

  update_alignment_analysis    A8, entirely from the cached Gram matrices: updates theta_s - theta_s' and the
                               backbone are coefficient vectors over the checkpoints (drift.geometry.trajectory).
  gradient_alignment_analysis  A9: per-mini-batch gradients of the composite loss at selected checkpoints,
                               |cos(g, v_b)| against the isotropic floors and an empirical one.
  fisher_analysis              A10: M mini-batch-mean gradients -> G, Rayleigh quotients and the top Fisher
                               eigenvector (drift.geometry.fisher).

Gradients are computed with one forward pass per mini-batch on the run's device (bf16 autocast on CUDA, as in
training), with every parameter outside the scope frozen so the backward pass skips their weight gradients, and
flattened by `drift.run.params.grad_vector` in the canonical (sorted-key) order that the directions use too.
Fresh mini-batches come from batch streams independent of the training stream.

    results, params, inputs = fisher_analysis("runs/cpu_s42")
"""
from __future__ import annotations

import contextlib
import math
import time
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from drift.analysis import backbone, gram_cache
from drift.geometry import fisher as fm
from drift.geometry import trajectory as geo
from drift.run.checkpoint import RunError, load_checkpoint
from drift.data.context import RunContext, build_context
from drift.model import GPT
from drift.train.optim import lambda_at
from drift.run.params import grad_vector, scope_keys
from drift.run.info import RunInfo, load_run, read_analysis, write_analysis
from drift.train.trainer import composite_loss

GRADIENT_STREAM = 101  # batch streams for fresh mini-batches; 0 is training
FISHER_STREAM = 102
PAPER_TOTAL_STEPS = 10_000
PAPER_GRADIENT_STEPS = [1] + list(range(800, 10_000, 1000))  # {1, 800, 1800, ..., 9800} (PROTOCOL A9)
UPDATE_PRODUCER = "backbone_update_analysis.py"

# Paper values printed next to ours (PROTOCOL section 6).
PAPER = {
    "C11": "block 0: |cos(u, v_b)| 0.15-0.34 early, peak ~0.32 near 1700; sign flip ~5100 (s271), |C| ~0.11 after",
    "C12": "|cos(g, v_b)| ~4e-4 (Fig 2) or 0.008-0.012 (sec 9.2); update/gradient gap '20-30x'",
    "C13": "q_b 2.4e-6 / 2.5e-6 / 1.6e-4 / 8.1e-3 at 200 / 1800 / 4800 / 9600; alpha 1.35 / 1.92 / 12.4 / 4.81",
}


# --------------------------------------------------------------------------------------------------------------
# Checkpoints, steps and directions
# --------------------------------------------------------------------------------------------------------------

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


def default_gradient_steps(run: RunInfo) -> list[int]:
    """The paper's {1, 800, 1800, ..., 9800} scaled to the run's length and snapped to checkpoints."""
    scale = run.total_steps / PAPER_TOTAL_STEPS
    return nearest_checkpoints(run, [1] + [s * scale for s in PAPER_GRADIENT_STEPS[1:]])


def default_fisher_steps(run: RunInfo) -> dict[int, list[str]]:
    """{step: roles}: early (first regular checkpoint after 1), the early p_ood peak and its trough, the first
    checkpoint after the lambda switch, the highest later peak other than the early one (if any), and the last
    checkpoint."""
    ckpts = trajectory_steps(run)
    regular = [s for s in run.regular_steps(1) if s > 1]
    roles: list[tuple[float, str]] = [(regular[0] if regular else ckpts[0], "early")]
    evals = run.eval_steps()
    p_ood = run.metric("p_ood", evals)
    ext = geo.find_peaks_troughs(p_ood)
    pairs = geo.switch_pairs(ext["peaks"], ext["troughs"])
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


def load_vectors(run_dir, names: Sequence[str]) -> tuple[dict, dict]:
    """({name: vector or None}, provenance) from the cached backbone directions (computed if missing)."""
    found = backbone.load_directions(run_dir)  # all names: trunk_switch exists only if p_ood has a switch pair
    vectors = found["vectors"]
    info = {"ref_step": found["ref_step"], "steps": found["steps"], "switch_pair": found.get("switch_pair"),
            "scopes": {n: found["scopes"].get(n) for n in names}}
    return {n: vectors.get(n) for n in names}, info


# --------------------------------------------------------------------------------------------------------------
# A8: update alignment (Gram route)
# --------------------------------------------------------------------------------------------------------------

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


def scope_update_alignment(traj: geo.Trajectory, regular: list[int], kinds: dict[str, bool], lag: int | None,
                           early_step: float, persist: int = 2, backbone_rows: str = "regular") -> dict:
    """A8 for one scope: backbone = PC1 of drifts from regular[0] over the regular checkpoints (or, with
    backbone_rows="all", over every later checkpoint, as the beta2 analysis does); consecutive regular updates,
    and with `lag` also every (s - lag, s) pair of the whole trajectory."""
    ref = regular[0]
    rows = regular[1:] if backbone_rows == "regular" else [int(s) for s in traj.steps if s > ref]
    out = {}
    for kind, row_normalize in kinds.items():
        pca = geo.drift_pca(traj, ref, rows, row_normalize=row_normalize, n_directions=1)
        entry = {"backbone": {"row_normalized": row_normalize, "ref_step": ref, "row_steps": rows,
                              "rho1": pca.rho1}}
        entry["consecutive"] = geo.update_alignment(traj, pca.backbone, regular, None, early_step, persist)
        entry["consecutive_summary"] = _alignment_summary(entry["consecutive"])
        if lag is not None:
            entry["overlapping"] = geo.update_alignment(traj, pca.backbone, traj.steps, lag, early_step, persist)
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
    results = {"scopes": {}, "switch_step": run.switch_step, "paper": PAPER["C11"]}
    for scope in scopes:
        traj = geo.Trajectory(np.asarray(steps), grams[scope])
        results["scopes"][scope] = scope_update_alignment(traj, regular, _backbone_kinds(scope), lag,
                                                          early_step, persist, backbone_rows)
    params = {"scopes": scopes, "lag": lag, "early_step": early_step, "persist": persist,
              "backbone_rows": backbone_rows,
              "labels": "end and midpoint of each update interval"}
    inputs = {"steps": steps, "regular_steps": regular, "ckpt_every": run.ckpt_every,
              "dense_ckpt": run.config.train.dense_ckpt}
    return geo.jsonable(results), params, inputs


# --------------------------------------------------------------------------------------------------------------
# Mini-batch gradients
# --------------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def scope_only_grads(model: torch.nn.Module, keys: Sequence[str]):
    """Freeze every parameter outside `keys` while the block runs, so backward computes only the scope's
    weight gradients (the activations still flow through every layer)."""
    keep = set(keys)
    saved = {n: p.requires_grad for n, p in model.named_parameters()}
    try:
        for n, p in model.named_parameters():
            p.requires_grad_(n in keep)
        yield
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(saved[n])


def flat_grad(model: torch.nn.Module, loss: torch.Tensor, keys: Sequence[str], retain_graph: bool = False,
              device=None) -> torch.Tensor:
    """d loss / d keys, flattened in canonical order (drift.run.params.grad_vector), on `device` (default: the
    model's)."""
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=retain_graph)
    device = device if device is not None else next(model.parameters()).device
    return grad_vector(model, list(keys), device=device)


def batch_gradients(model: GPT, ctx: RunContext, batch, keys: Sequence[str], lam: float,
                    split: bool) -> dict[str, torch.Tensor | None]:
    """Gradients of one mini-batch from one forward pass: {"composite"} or, with `split`, also {"lm", "probe"}
    (probe None when the batch has no probe position); composite = lm + lam * probe, by linearity."""
    x, y, mask = (z.to(ctx.device, non_blocking=True) for z in batch)
    with ctx.autocast():
        loss_lm, loss_probe = composite_loss(model(x), y, mask)
    has_probe = bool(mask.any())
    if not split:
        return {"composite": flat_grad(model, loss_lm + lam * loss_probe, keys)}
    g_lm = flat_grad(model, loss_lm, keys, retain_graph=has_probe)
    g_probe = flat_grad(model, loss_probe, keys) if has_probe else None
    composite = g_lm + lam * g_probe if has_probe else g_lm.clone()
    return {"composite": composite, "lm": g_lm, "probe": g_probe}


def stacked_gradients(model: GPT, ctx: RunContext, step: int, n_batches: int, keys: Sequence[str],
                      split: bool) -> dict[str, torch.Tensor]:
    """{variant: (n, D) gradients} for `n_batches` fresh mini-batches at checkpoint `step` (model in eval mode;
    lambda as in training at that step). Probe-less batches are left out of the "probe" stack."""
    lam = lambda_at(step, ctx.cfg.train)
    rows: dict[str, list[torch.Tensor]] = {}
    model.eval()
    with scope_only_grads(model, keys):
        for micro in range(n_batches):
            for name, g in batch_gradients(model, ctx, ctx.train_batches.get(max(step, 1), micro), keys, lam,
                                           split).items():
                if g is not None:
                    rows.setdefault(name, []).append(g)
    model.zero_grad(set_to_none=True)
    return {name: torch.stack(r) for name, r in rows.items()}


def load_model_at(model: GPT, run_dir, step: int) -> GPT:
    """Load checkpoint `step` into an existing model (one allocation for a whole analysis)."""
    state = load_checkpoint(run_dir, step)["model"]
    model.load_state_dict(state)
    return model


def module_order_index(model: torch.nn.Module, keys: Sequence[str]) -> torch.Tensor:
    """Index such that flat[idx] is the canonical flat vector re-flattened in module (named_parameters) order:
    pairing flat[idx] with a canonical direction reproduces the reference code's order mismatch (PROTOCOL 8.9b),
    reported as a control next to the consistent numbers."""
    sizes = {n: p.numel() for n, p in model.named_parameters() if n in set(keys)}
    starts = dict(zip(keys, np.cumsum([0] + [sizes[k] for k in keys[:-1]]).tolist()))
    return torch.cat([torch.arange(starts[n], starts[n] + sizes[n]) for n in sizes])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------------------------------------------
# A9: gradient alignment and the noise floors
# --------------------------------------------------------------------------------------------------------------

def floors(D: int) -> dict:
    """Isotropic |cos| levels in D dimensions: the paper's sqrt(2/(pi D)), its exact value, and 1/sqrt(D)."""
    return {"D": D, "abs_cos_mean_asymptotic": geo.iso_abs_cos_mean(D, exact=False),
            "abs_cos_mean_exact": geo.iso_abs_cos_mean(D, exact=True), "cos_rms": geo.iso_cos_rms(D)}


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


def _check_steps(run: RunInfo, steps: Sequence[int]) -> list[int]:
    missing = [s for s in steps if s not in run.steps]
    if missing:
        raise RunError(f"no checkpoint at step(s) {missing} in {run.run_dir}; available: {run.steps}")
    return [int(s) for s in steps]


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
    steps = _check_steps(run, steps) if steps else default_gradient_steps(run)
    name = f"{scope}_raw_pc1"
    vecs, dir_info = load_vectors(run_dir, [name])
    if vecs[name] is None:
        raise RunError(f"direction {name} is not available for {run_dir}; scopes are block<l>, block<l>+ln, trunk")
    ctx = build_context(run.config, run_dir, stream=GRADIENT_STREAM)
    model = GPT(ctx.model_cfg).to(ctx.device)
    keys = scope_keys(model.state_dict().keys(), scope)
    v = vecs[name].to(ctx.device, torch.float32).reshape(-1)
    D = sum(model.state_dict()[k].numel() for k in keys)
    if v.numel() != D:
        raise RunError(f"direction {name} has {v.numel()} entries but scope {scope} has {D}; recompute directions")
    bug_index = module_order_index(model, keys)
    per_step = []
    for step in _progress(steps, "gradients", progress):
        t0 = time.perf_counter()
        load_model_at(model, run_dir, step)
        grads = stacked_gradients(model, ctx, step, n_batches, keys, split=True)
        row = {"step": step, "lam": lambda_at(step, run.config.train),
               **gradient_readouts(grads, v, n_random, seed, bug_index)}
        _sync(ctx.device)
        row["seconds"] = time.perf_counter() - t0
        per_step.append(row)
    update = update_reference(run_dir, scope)["consecutive"]
    floor = floors(D)
    results = {"scope": scope, "direction": name, "floors": floor, "steps": per_step,
               "update": {k: update[k] for k in ("end_steps", "mid_steps", "cos", "abs_cos", "mean_abs_cos")},
               "switch_step": run.switch_step, "summary": gradient_summary(per_step, update, floor),
               "paper": PAPER["C12"]}
    params = {"steps": steps, "n_batches": n_batches, "batch_size": run.config.train.micro_batch, "scope": scope,
              "n_random": n_random, "seed": seed, "stream": GRADIENT_STREAM, "model_mode": "eval",
              "lambda": "training lambda at each step (drift.train.optim.lambda_at)"}
    return geo.jsonable(results), params, {"directions": dir_info, "device": str(ctx.device)}


def _progress(items, desc: str, enabled: bool):
    return tqdm(items, desc=desc, disable=not enabled, dynamic_ncols=True)


# --------------------------------------------------------------------------------------------------------------
# A10: Fisher Rayleigh quotients
# --------------------------------------------------------------------------------------------------------------

FISHER_DIRECTIONS = {"v_b": "trunk_raw_pc1", "v_pc2": "trunk_raw_pc2", "v_sw": "trunk_switch"}


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
    _sync(ctx.device)
    t0 = time.perf_counter()
    load_model_at(model, ctx.run_dir, step)
    G = stacked_gradients(model, ctx, step, m, keys, split=False)["composite"]
    _sync(ctx.device)
    t1 = time.perf_counter()
    row = fm.fisher_readouts(G, named, "v_b", k, seed)
    _sync(ctx.device)
    t2 = time.perf_counter()
    bug = fm.fisher_readouts(G[:, bug_index], {"v_b": named["v_b"]}, "v_b", k, seed)
    row["module_order"] = {"q_v_b": bug["q"]["v_b"], "q_random_mean": bug["q_random_mean"], "alpha": bug["alpha"]}
    _sync(ctx.device)
    row.update(seconds=t2 - t0, seconds_gradients=t1 - t0, seconds_readouts=t2 - t1,
               seconds_control=time.perf_counter() - t2)
    return row


def fisher_analysis(run_dir, steps: Sequence[int] | None = None, m: int = 32, k: int = 10, seed: int = 0,
                    progress: bool = True) -> tuple[dict, dict, dict]:
    """A10 on the trunk: at each checkpoint, G = M mini-batch-mean gradients of the composite loss (eval mode,
    training lambda), then the drift.geometry.fisher readouts for v_b (raw trunk PC1), v_PC2, v_sw and K random w_k."""
    run = load_run(run_dir)
    roles = {s: ["requested"] for s in _check_steps(run, steps)} if steps else default_fisher_steps(run)
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
                for step in _progress(list(roles), "fisher", progress)]
    results = {"steps": per_step, "switch_step": run.switch_step, "summary": fisher_summary(per_step),
               "paper": PAPER["C13"]}
    params = {"steps": list(roles), "m": m, "k": k, "seed": seed, "batch_size": run.config.train.micro_batch,
              "stream": FISHER_STREAM, "scope": "trunk", "model_mode": "eval", "directions": FISHER_DIRECTIONS,
              "lambda": "training lambda at each step (drift.train.optim.lambda_at)"}
    return geo.jsonable(results), params, {"directions": dir_info, "device": str(ctx.device)}
