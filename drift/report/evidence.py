"""Per claim, the evidence behind its verdict: the key statistic over seeds against each null (effect sizes and the
seed test) and whether its decision rule can tell the run from a null at all (drift/report/verdicts.py holds both
rules; this module only reads the runs' analysis JSON into them).

Trajectory claims (C2-C9, C11, C21) read each main run's nulls.json; the control claims (C15, C16) the controls'
window nulls, whose nulls.json keeps no draws, so their rule is read on the N1 median (verdicts.py); the beta2
claims (C14, C17-C19) the sweep's nulls, one sweep per seed.

    from drift.report.evidence import claim_evidence
    claim_evidence(ev)["C3"]["verdict"]     # e.g. 'beyond N1', 'within every null', 'one seed: no test'
"""
from __future__ import annotations

import math

import numpy as np

from drift.report import rules
from drift.report import verdicts as V
from drift.report.inputs import Evidence
from drift.report.null_verdicts import BETA2_NULLS, CLAIM_NULLS, CONTROL_NULLS, control_null_window
from drift.report.readers import C9_WINDOWS
from drift.report.rules import finite


def _num(x) -> float:
    """A JSON number as float; None (how the analyses write an undefined NaN) and anything else as NaN."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan


def _median(entry: dict | None, kind: str) -> float:
    return _num(((entry or {}).get(kind) or {}).get("median"))


def run_context(run) -> dict:
    """What a claim's rule needs besides a draw's statistics (verdicts.py's ctx), from one main run's JSON."""
    tr, nr = run.results("trajectory_pca"), run.results("nulls")
    n3 = ((nr or {}).get("statistics", {}).get("phase_abs_cos") or {}).get("N3") or {}
    return {"switch": tr["setup"]["switch_step"], "total": tr["setup"]["total_steps"], "layers": tr["blocks"]["layers"],
            "c9_windows": C9_WINDOWS, "n3_abs_cos_lo": n3.get("lo", math.nan), "update_scope": "block0+ln"}


def _summary(claim: str, stat: str, side: str, labels, observed, medians, diags) -> dict:
    tests = {k: V.seed_test(observed, medians[k], side) for k in V.NULL_KINDS if any(finite(m) for m in medians[k])}
    known = [d["diagnostic"] for d in diags if d.get("diagnostic") is not None]
    rates = [d["pass_rate"][V.KEY]["rate"] for d in diags if V.KEY in d.get("pass_rate", {})]
    return {"claim": claim, "stat": stat, "side": side, "seeds": labels, "observed": observed,
            "null_medians": medians, "tests": tests, "verdict": V.seed_verdict(tests),
            # diagnostic only if it is so in every seed where it could be judged
            "diagnostic": (all(known) if known else None),
            "n1_pass_rate": float(np.mean(rates)) if rates else math.nan,
            "n1_median_passes": [d.get("on_medians", {}).get(V.KEY) for d in diags],
            "diagnostic_basis": diags[0].get("basis", "draws") if diags else "none"}


def trajectory_evidence(ev: Evidence, claim: str) -> dict | None:
    check = CLAIM_NULLS[claim]
    labels, observed, medians, diags = [], [], {k: [] for k in V.NULL_KINDS}, []
    for run in ev.runs:
        nr = run.results("nulls")
        if nr is None or run.results("trajectory_pca") is None:
            continue
        entry = nr["statistics"].get(check.stat) or {}
        labels.append(run.label)
        observed.append(_num(entry.get("observed")))
        for k in V.NULL_KINDS:
            medians[k].append(_median(entry, k))
        diags.append(V.diagnostic(claim, nr, run_context(run), rules))
    return _summary(claim, check.stat, check.side, labels, observed, medians, diags) if labels else None


def _control_one(ev: Evidence, claim: str) -> tuple | None:
    """(label, observed, {null: median}, diagnostic) of one control set. The rule's collinearity part (window PC1
    >= sgd_pc1) is read on each null's median, the window nulls having no draws stored."""
    run, which, _paper = CONTROL_NULLS[claim]
    res = ev.control("nulls")
    found = control_null_window(res, run, which) if res is not None else None
    if found is None:
        return None
    e = found[1]["statistics"]["pc1"]
    on_medians = {k: bool(_median(e, k) >= rules.THRESHOLDS["sgd_pc1"]) if finite(_median(e, k)) else None
                  for k in V.NULL_KINDS}
    diag = {"on_medians": on_medians, "pass_rate": {},
            "diagnostic": None if on_medians[V.KEY] is None else not on_medians[V.KEY], "basis": "N1 median"}
    return (ev.controls_dir.name, f"run {run} {found[0]} window PC1 (%)", _num(e.get("observed")),
            {k: _median(e, k) for k in V.NULL_KINDS}, diag)


def _over_sets(ev: Evidence, kind: str, claim: str, one) -> dict | None:
    """The claim's evidence with each set of `kind` (one per seed) as a seed: sets without the inputs are left
    out; the statistic's name is the first set's."""
    found = [x for x in (one(view, claim) for view in ev.sets(kind)) if x is not None]
    if not found:
        return None
    labels, names, observed, medians, diags = zip(*found)
    return _summary(claim, names[0], "high", list(labels), list(observed),
                    {k: [m[k] for m in medians] for k in V.NULL_KINDS}, list(diags))


def control_evidence(ev: Evidence, claim: str) -> dict | None:
    """One control set is one seed."""
    return _over_sets(ev, "controls", claim, _control_one)


def _beta2_rule(claim: str, series: list[float]) -> bool:
    """The part of C14 / C17 / C18 / C19's rule a null draw can be judged on (C17's best p_ood and blow-up parts
    are taken as satisfied)."""
    if claim == "C18":
        return all(finite(g) and g > rules.THRESHOLDS["gamma_superlinear"] for g in series)
    tol = rules.THRESHOLDS["abs_cos_tol"] if claim == "C19" else rules.THRESHOLDS["pc1_tol"]
    return rules.falls(series, tol)


def _beta2_one(ev: Evidence, claim: str) -> tuple | None:
    """(label, statistic, observed, {null: median}, diagnostic) of one sweep: per p_probe group the observed net
    fall (or, for C18, the smallest gamma_a) against the nulls, and the rule on every N1 draw (the runs' draws
    taken side by side in beta2 order)."""
    stat, how = BETA2_NULLS[claim]
    res = ev.beta2_nulls
    if not res or not res.get("groups"):
        return None
    label, names = next(iter(res["groups"].items()))
    draws = [res["runs"][n]["draws"][V.KEY][stat] for n in names]
    n = min(len(d) for d in draws)
    held = [_beta2_rule(claim, [float(d[i]) if d[i] is not None else math.nan for d in draws]) for i in range(n)]
    rate = float(np.mean(held)) if n else math.nan
    diag = {"pass_rate": {V.KEY: {"rate": rate, "n": n}}, "on_medians": {},
            "diagnostic": None if not finite(rate) else bool(rate <= V.DIAGNOSTIC_MAX_PASS), "basis": "draws"}
    if how == "trend":
        e = res["trends"][label][stat]
        obs, med = _num(e.get("observed")), {k: _median(e, k) for k in V.NULL_KINDS}
        name = f"net fall of {stat}, p_probe {label}"
    else:  # C18: every run above its own band; the smallest run's margin stands for the sweep
        gaps = [(_num(res["runs"][r]["statistics"][stat].get("observed")), res["runs"][r]["statistics"][stat])
                for r in names]
        gaps = [g for g in gaps if finite(g[0] - _median(g[1], V.KEY))] or gaps
        obs_run = min(gaps, key=lambda g: g[0] - _median(g[1], V.KEY) if finite(g[0] - _median(g[1], V.KEY)) else 0)
        obs, med = obs_run[0], {k: _median(obs_run[1], k) for k in V.NULL_KINDS}
        name = f"{stat} of the run nearest its N1 median, p_probe {label}"
    return ev.beta2_dir.name, name, obs, med, diag


def beta2_evidence(ev: Evidence, claim: str) -> dict | None:
    """One sweep is one seed."""
    return _over_sets(ev, "beta2", claim, _beta2_one)


def claim_evidence(ev: Evidence) -> dict[str, dict]:
    """{claim id: evidence} for every claim with a key statistic whose inputs exist."""
    out = {}
    for claim in CLAIM_NULLS:
        out[claim] = trajectory_evidence(ev, claim)
    for claim in CONTROL_NULLS:
        out[claim] = control_evidence(ev, claim)
    for claim in BETA2_NULLS:
        out[claim] = beta2_evidence(ev, claim)
    return {k: v for k, v in out.items() if v is not None}


NOT_DIAGNOSTIC = "held, not diagnostic"


def annotate(rows: list[dict], evidence: dict[str, dict]) -> list[dict]:
    """Add to each claims row its evidence, the seed verdict, the label ('held, not diagnostic' when a held rule
    cannot tell the run from N1) and, for such claims, the sharp rule's verdict (verdicts.py rule 3)."""
    for r in rows:
        e = evidence.get(r["id"])
        r["evidence"] = e
        r["seed_verdict"] = e["verdict"] if e else ""
        lax = e is not None and e["diagnostic"] is False
        r["label"] = NOT_DIAGNOSTIC if lax and r["verdict"] == "held" else r["verdict"]
        measured = None if r["verdict"] == "not measured" else r["verdict"] == "held"
        r["sharp"] = V.sharp_verdict(measured, e["tests"].get(V.KEY)) if lax else ""
    return rows
