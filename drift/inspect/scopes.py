"""Trunk definitions and scopes for checkpoints this project did not write: named presets (this project's GPT, HF
GPT-2, LLaMA-style) or a regex whose first group is the layer index; per-block scopes from that index.

    from drift.inspect.scopes import trunk_scopes
    scopes, layers, preset, pattern = trunk_scopes(meta, "auto", "checkpoint-100")
"""
from __future__ import annotations

import math
import re

from drift.inspect.formats import FLOAT_DTYPES, InspectError
from drift.run.params import TRUNK_SUFFIXES

_BUFFER = re.compile(r"(\.attn\.bias|\.attn\.masked_bias|inv_freq|mask)$")

# Named trunk definitions: the weight matrices of every block, the layer index the first group. HF GPT-2 uses
# Conv1D, which stores each weight transposed ([in, out]); a transpose permutes coordinates within a tensor, so
# every inner product and norm, hence every Gram and every statistic, is the same as with nn.Linear's [out, in].
TRUNK_PRESETS = {
    "drift": r"blocks\.(\d+)\.(?:" + "|".join(re.escape(s) for s in TRUNK_SUFFIXES) + ")",
    "gpt2": r"(?:transformer\.)?h\.(\d+)\.(?:attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight",
    "llama": r"(?:model\.)?layers\.(\d+)\.(?:self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.weight",
}


def resolve_trunk(spec: str, names, label: str) -> tuple[str, re.Pattern]:
    """(preset name or "regex", compiled pattern) for --trunk: a preset, "auto" (the preset matching most
    names), or a regex whose first group captures the layer index (matched against the whole name)."""
    names = list(names)
    if spec == "auto":
        counts = {p: sum(bool(re.fullmatch(rx, n)) for n in names) for p, rx in TRUNK_PRESETS.items()}
        best = max(counts, key=counts.get)
        if counts[best] == 0:
            raise InspectError(f"{label}: no trunk preset ({', '.join(TRUNK_PRESETS)}) matches its parameters "
                               f"({_names_seen(names)}); pass --trunk REGEX")
        return best, re.compile(TRUNK_PRESETS[best])
    if spec in TRUNK_PRESETS:
        return spec, re.compile(TRUNK_PRESETS[spec])
    try:
        rx = re.compile(spec)
    except re.error as e:
        raise InspectError(f"--trunk {spec!r}: not a preset ({', '.join(TRUNK_PRESETS)}) nor a valid regex ({e})") \
            from None
    if rx.groups < 1:
        raise InspectError(f"--trunk {spec!r}: the regex needs a group capturing the layer index, e.g. "
                           r"'layers\.(\d+)\.mlp\..*\.weight'")
    return "regex", rx


def _names_seen(names: list[str]) -> str:
    shown = ", ".join(sorted(names, key=lambda n: (len(n), n))[:6])
    return f"{len(names)} names, e.g. {shown}"


def trunk_scopes(meta: dict, spec: str, label: str) -> tuple[dict[str, list[str]], list[int], str, str]:
    """({scope: sorted names}, layer index of each block, preset, regex). Block l is the l-th layer index the trunk
    matches; block{l}+ln is every floating-point tensor under that layer's prefix (LayerNorms and biases too)."""
    preset, rx = resolve_trunk(spec, meta, label)
    by_layer: dict[int, list[str]] = {}
    prefix: dict[int, str] = {}
    for name in meta:
        m = rx.fullmatch(name)
        if m is None or m.group(1) is None or not m.group(1).isdigit():
            continue
        layer = int(m.group(1))
        by_layer.setdefault(layer, []).append(name)
        prefix.setdefault(layer, name[:m.end(1)])
    if not by_layer:
        raise InspectError(f"{label}: trunk {spec!r} selects no parameters ({_names_seen(list(meta))})")
    layers = sorted(by_layer)
    scopes = {"trunk": sorted(n for l in layers for n in by_layer[l])}
    for i, l in enumerate(layers):
        p = prefix[l]
        scopes[f"block{i}"] = sorted(by_layer[l])
        scopes[f"block{i}+ln"] = sorted(
            n for n, (_, dtype) in meta.items() if n.startswith(p) and not n[len(p):len(p) + 1].isdigit()
            and dtype in FLOAT_DTYPES and not _BUFFER.search(n))
    bad = [n for n in scopes["trunk"] if meta[n][1] not in FLOAT_DTYPES]
    if bad:
        raise InspectError(f"{label}: trunk tensor {bad[0]} has dtype {meta[bad[0]][1]}; only float16, bfloat16, "
                           f"float32 and float64 weights can be analysed")
    return scopes, layers, preset, rx.pattern


def scope_dims(meta: dict, scopes: dict[str, list[str]]) -> dict[str, int]:
    return {s: int(sum(math.prod(meta[n][0]) for n in names)) for s, names in scopes.items()}


# --------------------------------------------------------------------------------------------------------------
