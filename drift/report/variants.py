"""The de-confounded variants of C12, C14-C17 and C19 (drift/report/verdicts.py rule 4, fixed before any result),
judged beside the old rules, never instead of them:

- C12, equal horizon: mean |cos(u, v_b)| >= 10 x mean |cos(G, v_b)|, G the same steps' summed training gradients
  (analysis/gradient_horizon.json, every main run);
- C15, weight decay: run B0 (plain SGD, weight decay 0) collinear too, its standard-window PC1 >= 95% with k95 = 1
  (the controls' sgd_control.json);
- C16, after warmup: C16's rule on the windows centred on each optimizer's first matched-loss checkpoint after its
  warmup (sgd_matched_valloss.json); when AdamW has none within the tolerance the variant is "not measured" and the
  limitation is stated;
- C14, C17, C19, one span: their rules on the after-warmup span (the beta2 sweep's pc1_span, drift_span,
  abs_cos_span).

    from drift.report.variants import evaluate_variants
    [(r["id"], r["variant"], r["verdict"]) for r in evaluate_variants(ev)]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from drift.report.inputs import Evidence, RunEvidence
from drift.report.null_verdicts import set_kind
from drift.report.readers import (C17_PAIR_MISSING, HELD, NOT_HELD, Outcome, beta2_claim, c17_pair, fmt, not_measured,
                                  over_sets, per_seed, series_text)
from drift.report.rules import THRESHOLDS, falls, finite, rule_c16, rule_c17


@dataclass(frozen=True)
class Variant:
    claim: str
    name: str
    rule: str
    read: Callable[[Evidence], Outcome]


def read_c12_horizon(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        res = run.results("gradient_horizon")
        if res is None:  # named without the run's path, so the committed report does not depend on where it is
            return None, ("analysis/gradient_horizon.json absent (run "
                          "`python backbone_gradient_analysis.py RUN --equal-horizon`)")
        s = res["summary"]
        ratio = s["update_over_summed_grad"]
        if not finite(ratio):
            return None, "no interval measured"
        return ratio >= THRESHOLDS["update_over_grad"], (
            f"{res['scope']}, {s['n_intervals']} intervals: |cos(u,v_b)| {fmt(s['update_mean_abs_cos'])}, "
            f"|cos(G,v_b)| {fmt(s['summed_grad_mean_abs_cos'])} (ratio {fmt(ratio, 2)}x), "
            f"|cos(u,G)| {fmt(s['update_summed_grad_mean_abs_cos'])}")
    return per_seed(ev, None, check)


def read_c15_b0(ev: Evidence) -> Outcome:
    res = ev.control("sgd_control")
    if res is None:
        return not_measured(ev.missing_control("sgd_control"))
    row = next((r for r in res["rows"] if r["run"] == "B0"), None)
    if row is None:
        return not_measured("the controls hold no run B0 (plain SGD, weight decay 0)")
    if not finite(row.get("pc1")):
        return not_measured("run B0's standard-window PC1 is missing", f"B0: {row.get('note', '')}")
    held = row["pc1"] >= THRESHOLDS["sgd_pc1"] and row.get("k95") == 1
    return Outcome(HELD if held else NOT_HELD, f"B0: val {fmt(row.get('final_val'))}, PC1 {fmt(row['pc1'], 3)}%, "
                                               f"k95 {fmt(row.get('k95'))}")


def _after_warmup(res: dict, run: str) -> tuple[list[dict | None], dict | None]:
    row = next((r for r in res["rows"] if r["run"] == run), None)
    if row is None:
        return [None, None], None
    wins = [w for w in row["windows"] if w.get("kind") == "after-warmup"]
    geos = [w["geometry"] if "note" not in w["geometry"] else None for w in wins[:2]]
    return geos + [None] * (2 - len(geos)), (row.get("match") or {}).get("after_warmup")


def read_c16_after_warmup(ev: Evidence) -> Outcome:
    res = ev.control("sgd_matched_valloss")
    if res is None:
        return not_measured(ev.missing_control("sgd_matched_valloss"))
    sgd, m_c = _after_warmup(res, "C")
    adam, m_a = _after_warmup(res, "A")
    if m_a is None or m_c is None:
        return not_measured("sgd_matched_valloss.json predates the after-warmup match (rerun "
                            "`python sgd_matched_valloss.py CONTROLS`) or run A or C is absent")
    for name, m in (("AdamW (A)", m_a), ("SGD+momentum (C)", m_c)):
        if not m.get("within_tol"):
            return not_measured(f"limitation: {name} has no checkpoint after its warmup within "
                                f"{res['rel_tol']:.0%} of the target val loss {fmt(res['target'])}")
    if any(g is None for g in sgd) or adam[1] is None:
        return not_measured("a window centred on an after-warmup match has too few checkpoints")
    ours = (f"SGD+mom @{m_c['step']}: PC1 {fmt(sgd[0]['pc1'])}% / {fmt(sgd[1]['pc1'])}%, k95 {sgd[0]['k95']} / "
            f"{sgd[1]['k95']}, drift {fmt(sgd[1]['drift'])}; AdamW @{m_a['step']}: drift {fmt(adam[1]['drift'])}")
    held = rule_c16([(g["pc1"], g["k95"]) for g in sgd], sgd[1]["drift"], adam[1]["drift"])
    return Outcome(HELD if held else NOT_HELD, ours)


def _span_text(rows: list[dict]) -> str:
    spans = {tuple(r["span"]) for r in rows if r.get("span")}
    return "steps " + ", ".join(f"{a}-{b}" for a, b in sorted(spans)) if spans else "no span"


SPAN_PREDATES = "the sweep's beta2_sweep.json predates the after-warmup span (rerun `python beta2_sweep.py ...`)"


def _no_span(rows: list[dict]) -> bool:
    return not any("pc1_span" in r for r in rows)


def _span_falls(key: str, tol_key: str, label: str):
    def check(rows):
        if _no_span(rows):
            return None, SPAN_PREDATES
        vals = [r.get(key) for r in rows]
        if sum(finite(x) for x in vals) < 2:
            notes = {r.get("note_span") for r in rows if r.get("note_span")}
            return None, f"{label} over the after-warmup span missing" + (f" ({'; '.join(sorted(notes))})"
                                                                         if notes else "")
        return falls(vals, THRESHOLDS[tol_key]), (f"beta2 {series_text(rows, 'beta2')}, {_span_text(rows)}: "
                                                   f"{label} {series_text(rows, key)}")
    return check


def read_c14_span(ev: Evidence) -> Outcome:
    return beta2_claim(ev, _span_falls("pc1_span", "pc1_tol", "PC1 (%)"))


def read_c19_span(ev: Evidence) -> Outcome:
    return beta2_claim(ev, _span_falls("abs_cos_span", "abs_cos_tol", "mean |C|"))


def read_c17_span(ev: Evidence) -> Outcome:
    def check(rows):
        zero, ref = c17_pair(rows)
        if zero is None or ref is None:
            return None, C17_PAIR_MISSING
        if _no_span(rows):
            return None, SPAN_PREDATES
        if not (finite(zero.get("drift_span")) and finite(ref.get("drift_span")) and ref["drift_span"]):
            return None, f"the beta2 = 0 run does not reach past its warmup ({zero.get('note_span', '')})"
        ratio = zero["drift_span"] / ref["drift_span"]
        text = (f"beta2 {series_text(rows, 'beta2')}, {_span_text(rows)}: PC1 {series_text(rows, 'pc1_span')}%, "
                f"drift(0)/drift(.95) {fmt(ratio)}")
        return rule_c17([r.get("pc1_span") for r in rows], [r.get("best_p_ood") for r in rows], ratio,
                        zero.get("status") == "diverged"), text
    return beta2_claim(ev, check)


VARIANTS = [
    Variant("C12", "equal horizon", f"mean |cos(u, v_b)| >= {THRESHOLDS['update_over_grad']:g} x mean |cos(G, v_b)|, G the summed "
            "training gradients of the update's steps at its start", read_c12_horizon),
    Variant("C14", "after-warmup span", "PC1 over the span falls as beta2 drops", read_c14_span),
    Variant("C15", "weight decay 0 (B0)", f"B0's standard-window PC1 >= {THRESHOLDS['sgd_pc1']:g}% with k95 = 1",
            read_c15_b0),
    Variant("C16", "after warmup", "C16's rule at the first matched-loss checkpoints after the warmup",
            read_c16_after_warmup),
    Variant("C17", "after-warmup span", "C17's rule with PC1 and the drift ratio over the span", read_c17_span),
    Variant("C19", "after-warmup span", "mean update |C| over the span falls as beta2 drops", read_c19_span),
]


def evaluate_variants(ev: Evidence) -> list[dict]:
    """One row per variant: id, variant, rule, verdict, ours, reason (an unknown JSON layout: not measured)."""
    rows = []
    for v in VARIANTS:
        try:
            kind = set_kind(v.claim)
            out = over_sets(ev, kind, v.read) if kind else v.read(ev)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            out = not_measured(f"could not read the analysis JSON ({type(e).__name__}: {e})")
        rows.append({"id": v.claim, "variant": v.name, "rule": v.rule, "verdict": out.verdict, "ours": out.ours,
                     "reason": out.reason})
    return rows
