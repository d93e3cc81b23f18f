"""Null verdicts (issue 9): does the statistic a claim rests on beat a structureless trajectory? For each claim with
a null, the key statistic of the runs' nulls.json (main runs, the controls, the beta2 sweep) against its N1 band,
with N2 and N3 beside it, and the paper's own values placed inside or outside our band.

    null_outcome(ev, "C3")   # {"null": "beyond null" | "within null" | "no null" | "", "null_text", "paper_in_band"}
"""
from __future__ import annotations

from dataclasses import dataclass

from drift.report.inputs import Evidence
from drift.report.readers import fmt
from drift.report.rules import finite


# ---------------------------------------------------------------------------------------------------------------
# Null verdicts (issue 9): does the statistic a claim rests on beat a structureless trajectory?
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NullCheck:
    """The statistic of nulls.json a trajectory claim rests on, the side the paper predicts, and the paper's own
    values of statistics that are defined the same way (fractions, not percent) to place inside or outside our
    band."""
    stat: str
    side: str                                   # "high" or "low"
    paper: tuple[tuple[str, float], ...] = ()


# Rule (also in drift/nulls/trajectory.py and the README): "beyond null" when the key statistic lies outside the N1 central
# 95% band on the predicted side in every seed; N2 and N3 are shown beside it. Fixed before any real-run null.
CLAIM_NULLS = {
    "C2": NullCheck("blocks_pc1_raw_min", "high", (("blocks_pc1_raw_min", 0.779),)),
    "C3": NullCheck("trunk_pc1_rownorm", "high", (("trunk_pc1_raw", 0.791), ("trunk_pc1_rownorm", 0.693),
                                                  ("trunk_pc2_rownorm", 0.121))),
    "C4": NullCheck("blocks_adjacent_cos_min", "high", (("blocks_adjacent_cos_min", 0.997),)),
    "C5": NullCheck("trunk_f_b_final", "high"),
    "C6": NullCheck("rho_min", "low", (("rho_min", 0.749), ("rho_mean", 0.800))),
    "C7": NullCheck("phase_pc1_gap", "high", (("phase_pc1_gap", 0.213), ("phase_abs_cos", 0.323))),
    "C8": NullCheck("handoff_margin", "high"),
    "C9": NullCheck("gamma_a_0_2000", "high", (("gamma_a_0_2000", 2.07),)),
    "C11": NullCheck("update_block0+ln_mean_abs_cos", "high"),
    "C21": NullCheck("switch_c2_blocks_max", "low", (("switch_c2_blocks_max", 0.10),)),
}
F_B_IDENTITY = ("the time mean of f_b equals the row-normalized PC1 share exactly (f_b(t) is the squared cosine of "
                "each normalized drift with v_b, whose mean over rows is sigma_1^2 / T), so it is not separate "
                "evidence")


def _bands_text(entry: dict, kinds) -> str:
    """'N1 [lo, hi], N2 [lo, hi], ...' of one nulls.json entry."""
    return ", ".join(f"{k} [{fmt(entry[k]['lo'])}, {fmt(entry[k]['hi'])}]" for k in kinds if k in entry)


# Control claims: (control run, window of <controls>/analysis/nulls.json, paper PC1 in %); the key statistic is the
# window's row-normalized PC1 and the paper predicts it high (SGD collinear).
CONTROL_NULLS = {"C15": ("C", "standard", 100.0), "C16": ("C", "centred-wide", 97.7)}


def control_null_window(res: dict, run: str, which: str) -> tuple[str, dict] | None:
    """(label, entry) of a control run's window in the control nulls.json: "standard" (Table 4) or
    "centred-wide" (the wider window centred on the run's matched-loss checkpoint)."""
    windows = res["rows"].get(run) or {}
    if which == "centred-wide":
        centred = sorted((k for k in windows if k.startswith("centred")), key=lambda k: float(k.split("-")[-1]))
        which = centred[-1] if centred else ""
    entry = windows.get(which)
    return (which, entry) if entry and "statistics" in entry else None


def control_null_outcome(ev: Evidence, claim_id: str) -> dict:
    from drift.nulls.trajectory import KEY_NULL, NO_NULL, in_band, null_verdict
    run, which, paper = CONTROL_NULLS[claim_id]
    res = ev.control("nulls")
    found = control_null_window(res, run, which) if res is not None else None
    if found is None:
        why = ev.missing_control("nulls") if res is None else f"no null for run {run}'s {which} window"
        return {"null": NO_NULL, "null_text": why, "paper_in_band": []}
    label, entry = found
    e = entry["statistics"]["pc1"]
    bands = _bands_text(e, res["nulls"])
    inside = ([f"the paper's PC1 {fmt(paper)}% lies inside our {KEY_NULL} band"] if in_band(paper, e.get(KEY_NULL))
              else [])
    return {"null": null_verdict(e["observed"], e.get(KEY_NULL), "high"),
            "null_text": f"high side; run {run} {label} window PC1 {fmt(e['observed'])}% vs {bands}",
            "paper_in_band": inside}


# beta2-sweep claims: the statistic of <beta2>/analysis/nulls.json and how it is read (drift/nulls/beta2.py, fixed
# before any real-sweep null): "trend", the observed net fall from the highest to the lowest beta2 of every compared
# p_probe group lies above the N1 band of the null's net fall; "each", every compared run lies above its own N1 band.
BETA2_NULLS = {"C14": ("window_pc1", "trend"), "C17": ("pc1_common", "trend"), "C18": ("gamma_a", "each"),
               "C19": ("early_abs_cos", "trend")}


def beta2_null_outcome(ev: Evidence, claim_id: str) -> dict:
    from drift.nulls.trajectory import BEYOND, KEY_NULL, NO_NULL, WITHIN, null_verdict
    stat, how = BETA2_NULLS[claim_id]
    res = ev.beta2_nulls
    if res is None or not res.get("groups"):
        why = ev.missing_beta2_nulls() if res is None else "no p_probe group with >= 3 beta2 runs"
        return {"null": NO_NULL, "null_text": why, "paper_in_band": []}
    verdicts, parts = [], []
    for label, names in res["groups"].items():
        if how == "trend":
            e = res["trends"][label][stat]
            if "note" in e:
                verdicts.append(NO_NULL)
                parts.append(f"p_probe {label}: {e['note']}")
                continue
            verdicts.append(null_verdict(e["observed"], e.get(KEY_NULL), "high"))
            parts.append(f"p_probe {label}: net fall of {stat} from beta2 {e['beta2'][0]:g} to {e['beta2'][1]:g} "
                         f"{fmt(e['observed'])} vs the null's {_bands_text(e, res['nulls'])}")
            continue
        cells = []
        for name in names:
            e = (res["runs"][name].get("statistics") or {}).get(stat) or {}
            if finite(e.get("observed")):    # as read_c18, a run without a fit is skipped
                verdicts.append(null_verdict(e["observed"], e.get(KEY_NULL), "high"))
                cells.append(f"{name} {fmt(e['observed'])} vs {KEY_NULL} [{fmt(e[KEY_NULL]['lo'])}, "
                             f"{fmt(e[KEY_NULL]['hi'])}]")
        parts.append(f"p_probe {label}: {stat} " + ("; ".join(cells) or "no run with a value"))
    verdict = (NO_NULL if not verdicts or NO_NULL in verdicts else
               BEYOND if all(v == BEYOND for v in verdicts) else WITHIN)
    return {"null": verdict, "null_text": "high side; " + "; ".join(parts), "paper_in_band": []}


def set_kind(claim_id: str) -> str | None:
    """"controls" or "beta2" for the claims judged on a control set or a beta2 sweep (one per seed), else None."""
    return "controls" if claim_id in CONTROL_NULLS else "beta2" if claim_id in BETA2_NULLS else None


def null_outcome_over_sets(ev: Evidence, claim_id: str) -> dict:
    """null_outcome in every set of a control or beta2 claim: beyond iff beyond in all, no null if any has none."""
    from drift.nulls.trajectory import BEYOND, NO_NULL, WITHIN
    kind = set_kind(claim_id)
    views = ev.sets(kind) if kind else [ev]
    if len(views) == 1:
        return null_outcome(views[0], claim_id)
    outs = [(v.set_label(kind), null_outcome(v, claim_id)) for v in views]
    verdicts = [o["null"] for _, o in outs]
    verdict = NO_NULL if NO_NULL in verdicts else BEYOND if all(v == BEYOND for v in verdicts) else WITHIN
    return {"null": verdict, "null_text": "; ".join(f"{label}: {o['null_text']}" for label, o in outs),
            "paper_in_band": [f"{label}: {p}" for label, o in outs for p in o["paper_in_band"]]}


def null_outcome(ev: Evidence, claim_id: str) -> dict:
    """{"null": beyond / within / no null / "" (no trajectory null for this claim), "null_text", "paper_in_band"}."""
    from drift.nulls.trajectory import BEYOND, KEY_NULL, NO_NULL, WITHIN, in_band, null_verdict
    if claim_id in CONTROL_NULLS:
        return control_null_outcome(ev, claim_id)
    if claim_id in BETA2_NULLS:
        return beta2_null_outcome(ev, claim_id)
    check = CLAIM_NULLS.get(claim_id)
    if check is None or not ev.runs:
        return {"null": "", "null_text": "", "paper_in_band": []}
    verdicts, parts, inside = [], [], []
    for run in ev.runs:
        res = run.results("nulls")
        entry = res["statistics"].get(check.stat) if res is not None else None
        if entry is None or not finite(entry.get("observed")):
            verdicts.append(NO_NULL)
            parts.append(f"{run.label}: " + (run.missing("nulls") if res is None else f"{check.stat} undefined"))
            continue
        verdicts.append(null_verdict(entry["observed"], entry.get(KEY_NULL), check.side))
        bands = _bands_text(entry, res["nulls"])
        parts.append(f"{run.label}: {check.stat} {fmt(entry['observed'])} vs {bands}")
        for stat, value in check.paper:
            e = res["statistics"].get(stat) or {}
            if in_band(value, e.get(KEY_NULL)):
                inside.append(f"the paper's {stat} {fmt(value)} lies inside our {KEY_NULL} band "
                              f"[{fmt(e[KEY_NULL]['lo'])}, {fmt(e[KEY_NULL]['hi'])}] ({run.label})")
    verdict = (NO_NULL if NO_NULL in verdicts else BEYOND if all(v == BEYOND for v in verdicts) else WITHIN)
    text = f"{check.side} side; " + "; ".join(parts)
    if claim_id == "C5":
        text += "; " + F_B_IDENTITY
    return {"null": verdict, "null_text": text, "paper_in_band": inside}
