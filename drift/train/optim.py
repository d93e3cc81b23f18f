"""Optimizer factory and the learning-rate schedule (a pure function of the step).

    opt = build_optimizer(model, cfg.train)       # adamw | sgd | sgd_momentum | nesterov_sgdw
    lr = lr_at(step, cfg.train)                   # warmup, then cosine with a floor

Parameter groups follow the paper: weight decay on every parameter whose name contains neither "ln" nor "bias"
(embeddings included), none on the LayerNorms.
"""
from __future__ import annotations

import math

import torch

from drift.config import TrainConfig


def lr_at(step: int, t: TrainConfig) -> float:
    """Linear warmup lr*step/warmup below `warmup_steps`, then cosine over [warmup, schedule] clamped at the floor."""
    if step < t.warmup_steps:
        return t.lr * step / t.warmup_steps
    horizon = (t.schedule_steps or t.total_steps) - t.warmup_steps
    r = (step - t.warmup_steps) / max(1, horizon)
    return t.lr * max(0.5 * (1.0 + math.cos(math.pi * r)), t.min_lr_frac)


def lambda_at(step: int, t: TrainConfig) -> float:
    return t.lambda_early if step < t.lambda_switch_step else t.lambda_late


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # the tied head appears once, as tok_emb.weight
        (no_decay if ("ln" in name or "bias" in name) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class NesterovSGDW(torch.optim.SGD):
    """SGD with Nesterov momentum and decoupled weight decay applied by hand after each step (run C'):
    theta <- (1 - lr_t * wd) * theta on the decay group, with the optimizer's own weight_decay at 0."""

    def __init__(self, groups: list[dict], lr: float, momentum: float):
        for g in groups:
            g["decoupled_wd"] = g.pop("weight_decay")
            g["weight_decay"] = 0.0
        super().__init__(groups, lr=lr, momentum=momentum, nesterov=True)

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for g in self.param_groups:
            if g["decoupled_wd"]:
                for p in g["params"]:
                    p.mul_(1.0 - g["lr"] * g["decoupled_wd"])
        return loss


def build_optimizer(model: torch.nn.Module, t: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps)
    if t.optimizer == "sgd":  # L2: torch's SGD adds wd * theta to the (clipped) gradient
        return torch.optim.SGD(groups, lr=t.lr, momentum=0.0)
    if t.optimizer == "sgd_momentum":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum)
    if t.optimizer == "nesterov_sgdw":
        return NesterovSGDW(groups, lr=t.lr, momentum=t.momentum)
    raise ValueError(f"unknown optimizer {t.optimizer!r}")


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
