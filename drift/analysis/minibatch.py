"""Mini-batch gradients of the composite training loss at a checkpoint, restricted to a parameter scope and
flattened in the canonical order the directions use (drift.run.params.grad_vector); the gradient (A9) and Fisher
(A10) analyses share them. The loss is the trainer's own (composite_loss), imported here and nowhere else in the
analysis layer.

Gradients are computed with one forward pass per mini-batch on the run's device (bf16 autocast on CUDA, as in
training), with every parameter outside the scope frozen so the backward pass skips their weight gradients.

    model = load_model_at(GPT(ctx.model_cfg).to(ctx.device), "runs/cpu_s42", 200)
    grads = stacked_gradients(model, ctx, 200, 8, scope_keys(model.state_dict().keys(), "block0"), split=True)
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from drift.run.checkpoint import load_checkpoint
from drift.data.context import RunContext
from drift.model import GPT
from drift.train.optim import lambda_at
from drift.run.params import grad_vector
from drift.train.trainer import composite_loss


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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def progress_bar(items, desc: str, enabled: bool):
    return tqdm(items, desc=desc, disable=not enabled, dynamic_ncols=True)
