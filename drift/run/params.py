"""Which parameters an analysis looks at, and the one order in which they are flattened.

Scopes:
  "trunk"        the 4 matrices of every block (PROTOCOL section 1), D = 12 * n_layer * d_model^2 for d_ff = 4 d_model
  "block{l}"     the 4 matrices of block l (the primary per-block scope)
  "block{l}+ln"  every parameter of block l, LayerNorms included (the authors' per-block vector, for comparisons)

The canonical order is sorted state-dict key order, used for parameters, gradients and directions alike, so an
inner product never pairs mismatched coordinates.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

import torch

TRUNK_SUFFIXES = ("attn.qkv.weight", "attn.out_proj.weight", "mlp.w_up.weight", "mlp.w_down.weight")
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")


def n_layer_of(keys: Iterable[str]) -> int:
    layers = {int(m.group(1)) for k in keys if (m := _BLOCK_KEY.match(k))}
    return max(layers) + 1 if layers else 0


def scope_keys(keys: Iterable[str], scope: str) -> list[str]:
    """The sorted state-dict keys that make up `scope`."""
    keys = list(keys)
    if scope == "trunk":
        chosen = [k for k in keys if (m := _BLOCK_KEY.match(k)) and m.group(2) in TRUNK_SUFFIXES]
    elif m := re.fullmatch(r"block(\d+)(\+ln)?", scope):
        layer, with_ln = int(m.group(1)), bool(m.group(2))
        prefix = f"blocks.{layer}."
        chosen = [k for k in keys if k.startswith(prefix)
                  and (with_ln or k[len(prefix):] in TRUNK_SUFFIXES) and not k.endswith("mask")]
    else:
        raise ValueError(f"unknown parameter scope {scope!r}; use trunk, block<l> or block<l>+ln")
    if not chosen:
        raise ValueError(f"scope {scope!r} selects no parameters from a state dict with keys like {keys[:3]}")
    return sorted(chosen)


def all_scopes(n_layer: int, with_ln: bool = True) -> list[str]:
    scopes = ["trunk"] + [f"block{l}" for l in range(n_layer)]
    return scopes + ([f"block{l}+ln" for l in range(n_layer)] if with_ln else [])


def trunk_size(model) -> int:
    """D of the trunk scope from a ModelConfig: n_layer x (qkv + out_proj + w_up + w_down)."""
    return model.n_layer * (4 * model.d_model * model.d_model + 2 * model.d_model * model.d_ff)


def flatten(tensors: Mapping[str, torch.Tensor], keys: list[str], dtype=torch.float32) -> torch.Tensor:
    """Concatenate tensors[k] for k in keys (already canonical) into one CPU vector."""
    return torch.cat([tensors[k].detach().reshape(-1).to("cpu", dtype) for k in keys])


def grad_vector(model: torch.nn.Module, keys: list[str], dtype=torch.float32, device="cpu") -> torch.Tensor:
    """The gradient of `keys`, flattened in the same order as `flatten` on the state dict (on `device`; the
    gradient and Fisher analyses keep it on the accelerator)."""
    named = dict(model.named_parameters())
    missing = [k for k in keys if k not in named]
    if missing:
        raise KeyError(f"model has no parameters {missing[:3]}")
    return torch.cat([(named[k].grad if named[k].grad is not None else torch.zeros_like(named[k]))
                      .detach().reshape(-1).to(device, dtype) for k in keys])


def scope_size(tensors: Mapping[str, torch.Tensor], scope: str) -> int:
    return sum(tensors[k].numel() for k in scope_keys(tensors.keys(), scope))
