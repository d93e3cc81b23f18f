"""summary.md of `python -m drift.inspect`: the page a person reads first. Per statistic the observed value against
each null's central 95% band (above, below or within), and one sentence on what that means.

    from drift.inspect.summary import summary_markdown
    text = summary_markdown(trajectory_doc, nulls_doc)
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def steps_text(steps: list[int]) -> str:
    """A step list for a message: all of them when short, else the first four, the last two and the count."""
    return ", ".join(map(str, steps)) if len(steps) <= 8 else \
        f"{', '.join(map(str, steps[:4]))}, ..., {', '.join(map(str, steps[-2:]))} ({len(steps)})"


@dataclass(frozen=True)
class Stat:
    key: str
    label: str
    fmt: str        # "pct" | "num" | "int"
    high: str       # what lying above the band means
    low: str        # what lying below it means
    effect: str     # what a value beyond the band would be evidence of


_CONC = ("the drift concentrates on one direction more than a random walk with the same step sizes does",
         "the drift spreads over more directions than a random walk with the same step sizes")
SUMMARY_STATS = (
    Stat("trunk_pc1_raw", "A2 trunk PC1 share, raw", "pct", *_CONC, "a backbone direction"),
    Stat("trunk_pc1_rownorm", "A2 trunk PC1 share, row-normalized", "pct", *_CONC, "a backbone direction"),
    Stat("trunk_pc2_rownorm", "A2 trunk PC2 share, row-normalized", "pct",
         "a second direction carries more of the drift than in a random walk",
         "the second direction carries less than in a random walk, so the drift is closer to one-dimensional",
         "a particular second direction"),
    Stat("trunk_k95_rownorm", "A2 components for 95% (row-normalized)", "int",
         "the drift needs more directions than a random walk", "the drift needs fewer directions than a random walk",
         "a low-dimensional drift"),
    Stat("blocks_pc1_raw_min", "A1 smallest per-block PC1 share, raw", "pct",
         "every block's drift is more one-directional than a random walk's",
         "some block drifts over more directions than a random walk", "per-block backbones"),
    Stat("trunk_f_b_final", "A3 backbone share of the final drift f_b", "num",
         "the final drift lies more along the backbone than a random walk's does",
         "more of the final drift is transverse to the backbone than in a random walk", "a dominant backbone"),
    Stat("rho_mean", "A4 rolling backbone, mean adjacent-window |cos|", "num",
         "the local drift direction turns more slowly than a random walk's (a persistent direction)",
         "the local drift direction turns faster than a random walk's", "a persistent local direction"),
    Stat("rho_min", "A4 rolling backbone, sharpest turn (min |cos|)", "num",
         "the rolling backbone never turns as sharply as a random walk's",
         "the rolling backbone turns more sharply than a random walk's ever does, a change of direction "
         "(rho_argmin_step in trajectory.json says where)", "a change of direction"),
    Stat("blocks_adjacent_cos_min", "A4 per-block adjacent-window |cos|, min over blocks", "num",
         "the per-block backbones are steadier than a random walk's",
         "some block's backbone turns more than a random walk's",
         "steady per-block backbones (windows of drifts from one reference share their path, so this is near 1 "
         "for any walk)"),
    Stat("phase_abs_cos", "A5 |cos| of the early and late backbones", "num",
         "the two phases share more direction than two halves of a random walk",
         "the two phases' backbones are more orthogonal than a random walk's halves",
         "a shared or a rotated direction between the phases"),
    Stat("gamma_a_0_4000", "A6 exponent of |a(t)| over (0, 0.4 T]", "num",
         "the backbone coordinate grows faster than a random walk's", "it grows more slowly than a random walk's",
         "an unusual growth of the backbone coordinate"),
    Stat("gamma_a_4000_10000", "A6 exponent of |a(t)| over (0.4 T, T]", "num",
         "the backbone coordinate grows faster than a random walk's", "it grows more slowly than a random walk's",
         "an unusual growth of the backbone coordinate"),
    Stat("update_block0_mean_abs_cos", "A8 block-0 update alignment, mean |C|", "num",
         "the updates point along the backbone more than a random walk's steps do",
         "the updates are less aligned with the backbone than a random walk's steps",
         "updates aligned with the backbone"),
)
_KEPT_BY = {"N2": "signs", "N3": "order"}


def _fmt(x, kind: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return {"pct": f"{100 * x:.1f}%", "int": f"{x:.0f}", "num": f"{x:.3f}"}[kind]


def position(observed, b: dict | None) -> str | None:
    """"above", "below" or "within" a null band; None when either is undefined."""
    if b is None or observed is None or b.get("lo") is None or b.get("hi") is None \
            or not math.isfinite(observed) or not math.isfinite(b["lo"]):
        return None
    return "above" if observed > b["hi"] else "below" if observed < b["lo"] else "within"


def meaning(stat: Stat, pos: dict[str, str | None]) -> str:
    """One sentence: where the value lies against N1, and what N2 / N3 add."""
    p1 = pos.get("N1")
    if p1 is None:
        return "No N1 band (too few finite draws)."
    if p1 == "within":
        return (f"Within the matched random walk (N1): a structureless walk with the same step sizes gives this "
                f"value, so it is no evidence of {stat.effect}.")
    side = ("Above", stat.high) if p1 == "above" else ("Below", stat.low)
    s = f"{side[0]} the matched random walk (N1): {side[1]}"
    inside = [k for k in ("N2", "N3") if pos.get(k) == "within"]
    if inside:
        what = " or ".join(_KEPT_BY[k] for k in inside)
        return s + (f"; but within {' and '.join(inside)}, so the run's own updates produce it whatever their "
                    f"{what}.")
    where = " and ".join(f"{k} ({pos[k]})" for k in ("N2", "N3") if pos.get(k))
    return s + f"; beyond {where} too, so it depends on the updates' signs and order, not only on their sizes."


def _header(doc: dict, nulls: dict) -> list[str]:
    inp, r = doc["inputs"], doc["results"]["setup"]
    ref, trunk = inp["reference"], inp["trunk"]
    steps = inp["steps"]
    kinds = nulls["nulls"]
    lines = [f"# Trajectory geometry of `{inp['ckpt_dir']}`", "",
             f"- **Input**: {inp['format']} series, {len(steps)} checkpoints analysed (steps {steps_text(steps)})"
             + (f"; ignored: {', '.join(inp['ignored'])}" if inp["ignored"] else "")
             + (f"; run status: {doc['run']['status_text']}" if doc.get("run") else "") + ".",
             f"- **Reference**: step {ref['ref_step']}; {ref['note']} (`--step0 {ref['step0_policy']}`)."
             + (" The paper measures from step 1 (`--ref-step 1`)." if inp["format"] == "drift" and
                ref["ref_step"] != 1 else ""),
             f"- **Trunk**: `{trunk['preset']}` (`{trunk['regex']}`), {len(trunk['layers'])} blocks, D = "
             f"{trunk['dims']['trunk']:,}." + (" HF GPT-2's Conv1D stores weights transposed; a transpose changes "
                                               "no inner product or norm, so the geometry is unchanged."
                                               if trunk["transposed_conv1d"] else ""),
             f"- **Rows**: {len(r['row_steps'])} drifts theta_t - theta_ref; rolling window {doc['params']['window']}"
             f" checkpoints; phase split at step {r['split_step']}"
             + _split_origin(doc) + ".",
             f"- **Nulls**: " + ", ".join(f"{k} {v['name']}" for k, v in kinds.items())
             + f"; {next(iter(kinds.values()))['n_draws']} draws each (seed {doc['params']['seed']}); band = "
               f"central {nulls['level']:.0%} of the draws.",
             ]
    for key, why in doc["skipped"].items():
        lines.append(f"- **Skipped {key}**: {why}.")
    return lines


def _split_origin(doc: dict) -> str:
    if doc["params"]["split_step_given"] is not None:
        return " (--split-step)"
    return " (the lambda switch)" if doc["inputs"]["format"] == "drift" else " (the middle step; no lambda switch)"


def summary_markdown(doc: dict, nulls: dict) -> str:
    kinds = list(nulls["nulls"])
    lines = _header(doc, nulls) + ["", "| statistic | observed | " + " | ".join(kinds) + " |",
                                   "|---|---|" + "---|" * len(kinds)]
    notes, absent = [], []
    for st in SUMMARY_STATS:
        e = nulls["statistics"].get(st.key)
        obs = None if e is None else e["observed"]
        if obs is None or not math.isfinite(obs):
            absent.append(st.label)
            continue
        pos = {k: position(obs, e.get(k)) for k in kinds}
        cells = [f"{_fmt(e[k]['lo'], st.fmt)} to {_fmt(e[k]['hi'], st.fmt)}: **{pos[k] or 'n/a'}**" for k in kinds]
        label = st.label.replace("|", "\\|")  # a bare | would split the markdown cell
        lines.append(f"| {label} | {_fmt(obs, st.fmt)} | " + " | ".join(cells) + " |")
        notes.append(f"- **{st.label}**: {meaning(st, pos)}")
    lines += ["", "## What it means", ""] + notes
    if absent:
        lines += ["", f"Not computed for this series (too few checkpoints for the window or the split, or no switch):"
                      f" {'; '.join(absent)}. `--window` and `--split-step` set them."]
    lines += ["", "*Beyond* = outside a null's central band, *within* = inside it. N1 keeps the run's step sizes and "
                  "draws isotropic directions; N2 keeps every update with random signs; N3 keeps every update in "
                  "random order. With few draws the band edges are rough; `--draws 200` sharpens them.",
              "", "Files: `trajectory.json` (every A1-A6 number), `nulls.json` (every statistic's bands and draws), "
                  "`nulls_spectrum.png|pdf` (the spectrum against the bands)."]
    return "\n".join(lines) + "\n"


