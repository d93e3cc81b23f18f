"""The claim readers: Evidence -> Outcome. Each `read_cN` pulls a few numbers out of the analysis JSON, formats them
("ours") and applies the claim's decision rule from rules.py. A verdict is one of

    held          the rule is satisfied (in every seed, when there are several)
    not held      the rule fails in at least one seed (the text says which)
    not measured  an input is missing or too short; the text says which and how to produce it

    out = read_c3(load_evidence(["runs/cpu_s42"]))
    out.verdict, out.ours, out.reason
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from drift.analysis.beta2 import compared_groups, p_probe_groups
from drift.report.inputs import Evidence, RunEvidence
from drift.report.rules import (THRESHOLDS, rule_c1, rule_c2, rule_c3, rule_c4, rule_c5, rule_c6, rule_c7, rule_c8,
                                rule_c9, rule_c10, rule_c11, rule_c12, rule_c13, rule_c15, rule_c16, rule_c17, rule_c20,
                                rule_c21, rule_c22, falls, finite, oscillation_drops)

HELD, NOT_HELD, NOT_MEASURED = "held", "not held", "not measured"


# ---------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------

def fmt(x, digits: int = 3) -> str:
    """Plain-text number: None/NaN -> 'n/a'; large or tiny magnitudes in scientific notation."""
    if not finite(x):
        return "n/a"
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-2):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}"


def pct(x, digits: int = 1) -> str:
    """A fraction as a percentage string."""
    return "n/a" if not finite(x) else f"{100 * x:.{digits}f}%"


@dataclass
class Outcome:
    verdict: str
    ours: str
    reason: str = ""


def not_measured(reason: str, ours: str = "n/a") -> Outcome:
    return Outcome(NOT_MEASURED, ours, reason)


def per_seed(ev: Evidence, name: str | None, check: Callable[[RunEvidence], tuple[bool | None, str]]) -> Outcome:
    """Apply `check(run) -> (held, our values | reason)` to every seed; held iff held in all. A seed whose input
    is missing (`name` absent) or where the check returns None makes the whole claim "not measured"."""
    if not ev.runs:
        return not_measured("no main run given")
    parts, verdicts = [], []
    for run in ev.runs:
        if name is not None and run.results(name) is None:
            return not_measured(run.missing(name))
        held, text = check(run)
        if held is None:
            return not_measured(f"{run.label}: {text}")
        verdicts.append(held)
        parts.append(f"{run.label}: {text}" if len(ev.runs) > 1 else text)
    ours = "; ".join(parts)
    if all(verdicts):
        return Outcome(HELD, ours)
    failed = [r.label for r, v in zip(ev.runs, verdicts) if not v]
    return Outcome(NOT_HELD, ours, f"fails in {', '.join(failed)}" if len(ev.runs) > 1 else "")


def over_sets(ev: Evidence, kind: str, read: Callable[[Evidence], Outcome]) -> Outcome:
    """A control or beta2 claim read in every set of `kind` (one per seed): held iff held in all, not measured if
    any set is; with one set, that set's outcome unchanged."""
    views = ev.sets(kind)
    if len(views) == 1:
        return read(views[0])
    outs = [(v.set_label(kind), read(v)) for v in views]
    ours = "; ".join(f"{label}: {o.ours}" for label, o in outs)
    missing = next(((label, o) for label, o in outs if o.verdict == NOT_MEASURED), None)
    if missing is not None:
        return Outcome(NOT_MEASURED, ours, f"{missing[0]}: {missing[1].reason}")
    failed = [label for label, o in outs if o.verdict != HELD]
    return Outcome(NOT_HELD if failed else HELD, ours, f"fails in {', '.join(failed)}" if failed else "")


# ---------------------------------------------------------------------------------------------------------------
# Readers: Evidence -> Outcome (our numbers formatted, the rule applied)
# ---------------------------------------------------------------------------------------------------------------

def read_c1(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        steps, p = run.series("p_ood")
        _, val = run.series("val_loss")
        if steps.size < 5:
            return None, f"{steps.size} evals; need >= 5"
        drops = oscillation_drops(p, run.config.train.n_probe_eval)
        i = int(np.nanargmax(p))
        text = (f"p_ood max {fmt(p[i])} @{int(steps[i])}, last {fmt(p[-1])}; {len(drops)} significant drop(s)"
                + (f" (largest {fmt(max(drops))})" if drops else "") + f"; val {fmt(val[0])} -> {fmt(val[-1])}")
        return rule_c1(p, run.config.train.n_probe_eval, steps, val), text
    return per_seed(ev, None, check)


def _traj(run: RunEvidence) -> dict:
    return run.results("trajectory_pca")


def _paper_window(windows: Sequence[dict], lo: int, hi: int) -> int | None:
    """Index of the window whose paper bounds are (lo, hi] (trajectory_pca.json records both)."""
    return next((i for i, w in enumerate(windows) if w["paper_lo"] == lo and w["paper_hi"] == hi), None)


def read_c2(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        pc1 = _traj(run)["blocks"]["pc1"]
        text = ("trunk matrices " + " ".join(pct(x, 1) for x in pc1["block"]) + "; with LN "
                + " ".join(pct(x, 1) for x in pc1["block+ln"]))
        return rule_c2(pc1["block"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c3(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        t = _traj(run)["trunk"]
        text = (f"row-norm PC1 {pct(t['pc1_rownorm_top10'])} (top-10) / {pct(t['pc1_rownorm_full'])} (full), "
                f"PC2 {pct(t['pc2_rownorm_full'])}, raw PC1 {pct(t['pc1_raw_full'])}")
        if not all(finite(t[k]) for k in ("pc1_rownorm_full", "pc2_rownorm_full", "pc1_raw_full")):
            return None, "trunk spectrum has fewer than 2 components"
        return rule_c3(t["pc1_rownorm_full"], t["pc2_rownorm_full"], t["pc1_raw_full"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c4(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        r = _traj(run)
        means = [r["rolling"]["blocks"][f"block{l}"]["rho_mean"] for l in r["blocks"]["layers"]]
        if not all(finite(m) for m in means):
            return None, f"fewer than {r['rolling']['trunk']['window'] + 1} drift rows for two adjacent windows"
        return rule_c4(means), "mean adjacent |cos| per block " + " ".join(fmt(m, 4) for m in means)
    return per_seed(ev, "trajectory_pca", check)


def read_c5(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        t, b = _traj(run)["trunk"], _traj(run)["blocks"]
        text = (f"trunk f_b final {fmt(t['f_b_final'])}, time-mean {fmt(t['f_b_mean'])}; per block (+LN) final "
                f"{fmt(min(b['f_b_final']['block+ln']))}-{fmt(max(b['f_b_final']['block+ln']))}")
        return rule_c5(t["f_b_final"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c6(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        r = _traj(run)
        roll = r["rolling"]["trunk"]
        if not finite(roll["rho_argmin_step"]):
            return None, f"fewer than {roll['window'] + 1} checkpoints for two adjacent windows"
        text = (f"rho mean {fmt(roll['rho_mean'])}, max {fmt(roll['rho_max'])}, min {fmt(roll['rho_min'])} at "
                f"{fmt(roll['rho_argmin_step'])} (switch {r['setup']['switch_step']})")
        return rule_c6(roll["rho_argmin_step"], r["setup"]["switch_step"], r["setup"]["total_steps"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c7(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        ph = _traj(run)["phases"]
        if "skipped" in ph:
            return None, ph["skipped"]
        if run.results("nulls") is None:
            return None, run.missing("nulls")
        n3 = (run.results("nulls")["statistics"].get("phase_abs_cos") or {}).get("N3") or {}
        text = (f"early PC1 {pct(ph['early_pc1_full'])}, late {pct(ph['late_pc1_full'])}, |<v_E,v_L>| "
                f"{fmt(ph['abs_cos'])} ({fmt(ph['angle_deg'])} deg; N3 band {fmt(n3.get('lo'))}-{fmt(n3.get('hi'))})")
        return rule_c7(ph["early_pc1_full"], ph["late_pc1_full"], ph["abs_cos"], n3.get("lo")), text
    return per_seed(ev, "trajectory_pca", check)


def read_c8(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        r = _traj(run)
        ph = r["phases"]
        if "skipped" in ph or not ph.get("centers"):
            return None, ph.get("skipped", "no rolling windows (run too short for W = 10)")
        held = rule_c8(ph["centers"], ph["A_E"], ph["A_L"], r["setup"]["switch_step"], r["setup"]["total_steps"])
        if held is None:
            return None, "no window centre before the switch or within 0.2 T after it"
        e, l = np.asarray(ph["A_E"]), np.asarray(ph["A_L"])
        return held, f"A_E {fmt(e[0])} -> {fmt(e[-1])}, A_L {fmt(l[0])} -> max {fmt(l.max())} -> {fmt(l[-1])}"
    return per_seed(ev, "trajectory_pca", check)


C9_WINDOWS = ((0, 2000), (2000, 4000), (4000, 6000), (6000, 10000))


def read_c9(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        pw = _traj(run)["power_laws"]
        idx = [_paper_window(pw["windows"], lo, hi) for lo, hi in C9_WINDOWS]
        if None in idx:
            return None, "power-law windows missing"
        fits = [pw["a"][i] for i in idx]
        if not all(finite(f["gamma"]) for f in fits):
            return None, "a power-law window has fewer than 3 checkpoints"
        text = ("gamma_a " + " / ".join(fmt(f["gamma"]) for f in fits) + f" (R2 first {fmt(fits[0]['r2'])}); "
                "gamma_r " + " / ".join(fmt(pw["r_norm"][i]["gamma"]) for i in idx))
        return rule_c9([f["gamma"] for f in fits], fits[0]["r2"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c10(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        c = _traj(run)["correlations"]
        i, j = _paper_window(c["windows"], 0, 4000), _paper_window(c["windows"], 6000, 10000)
        if i is None or j is None:
            return None, "correlation windows missing"
        r = c["p_ood_vs_r_norm"]
        text = "r " + " / ".join(f"{fmt(x['r'])} (n={x['n']})" for x in r) + " on full, 0-0.4T, 0.4T-T, 0.6T-T"
        if not (finite(r[i]["r"]) and finite(r[j]["r"])):
            return None, f"correlation undefined (constant p_ood or < 3 points): {text}"
        return rule_c10(r[i]["r"], r[j]["r"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c21(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        sw = _traj(run)["switching"]
        if not sw.get("first"):
            return None, "no p_ood peak -> trough pair (the run does not oscillate)"
        first = sw["first"]
        c2 = [first["by_scope"][f"block{l}"]["c2"] for l in _traj(run)["blocks"]["layers"]]
        summ = first["summary"]["block+ln"]
        dim = sw.get("dimension") or {}
        text = (f"pair {first['pair'][0]}->{first['pair'][1]}: c^2 per block " + " ".join(fmt(c) for c in c2)
                + f"; with LN c {fmt(summ['c_min'])}-{fmt(summ['c_max'])}, E_2:6 {fmt(summ['e_2_6_min'])}-"
                f"{fmt(summ['e_2_6_max'])}; {dim.get('effective_dim', 'n/a')} independent switch direction(s)")
        return rule_c21(c2), text
    return per_seed(ev, "trajectory_pca", check)


SEED_KEYS = ("trunk row-norm PC1", "trunk raw PC1", "mean block PC1", "mean rho")


def seed_headline(results: dict) -> list[float]:
    """The C22 headline fractions of one seed, in percent (NaN where not defined)."""
    t, b, roll = results["trunk"], results["blocks"], results["rolling"]["trunk"]
    vals = [t["pc1_rownorm_full"], t["pc1_raw_full"], float(np.mean(b["pc1"]["block"])), roll["rho_mean"]]
    return [100 * v if finite(v) else math.nan for v in vals]


def read_c22(ev: Evidence) -> Outcome:
    if len(ev.runs) < 2:
        return not_measured("needs at least two seeds")
    missing = [r.missing("trajectory_pca") for r in ev.runs if r.results("trajectory_pca") is None]
    if missing:
        return not_measured(missing[0])
    vals = {r.label: seed_headline(_traj(r)) for r in ev.runs}
    keep = [k for k in range(len(SEED_KEYS)) if all(finite(v[k]) for v in vals.values())]
    text = "; ".join(f"{SEED_KEYS[k]} " + " / ".join(f"{v[k]:.1f}" for v in vals.values()) for k in keep)
    held = rule_c22({label: [v[k] for k in keep] for label, v in vals.items()})
    return Outcome(HELD if held else NOT_HELD, text + " (%)")


def _update_scope(results: dict) -> tuple[str, dict] | None:
    """The block-0 entry compared with the paper: LN-inclusive when present (PROTOCOL 8.19), else trunk-only."""
    for scope in ("block0+ln", "block0"):
        if scope in results.get("scopes", {}):
            return scope, results["scopes"][scope]["raw"]["consecutive_summary"]
    return None


def read_c11(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        found = _update_scope(run.results("update_alignment"))
        if found is None:
            return None, "update_alignment.json has no block0 scope"
        scope, s = found
        flip = s["flip_end_step"]
        text = (f"{scope}: |C| max {fmt(s['max_abs_cos'])} @{fmt(s['max_abs_cos_end_step'])}, flip at "
                f"{fmt(flip)}, mean |C| {fmt(s['mean_abs_cos_before_flip'])} before / "
                f"{fmt(s['mean_abs_cos_after_flip'])} after")
        return rule_c11(flip, run.switch_step, s["mean_abs_cos_before_flip"], s["mean_abs_cos_after_flip"]), text
    return per_seed(ev, "update_alignment", check)


def read_c12(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        res = run.results("gradient_alignment")
        s, floor = res["summary"], res["floors"]["abs_cos_mean_asymptotic"]
        text = (f"{res['scope']}: |cos(u,v_b)| {fmt(s['update_mean_abs_cos'])}, |cos(g,v_b)| "
                f"{fmt(s['grad_mean_abs_cos'])} (floor {fmt(floor)}; ratio {fmt(s['update_over_grad'], 2)}x)")
        return rule_c12(s["update_mean_abs_cos"], s["grad_mean_abs_cos"], floor), text
    return per_seed(ev, "gradient_alignment", check)


def read_c13(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        res = run.results("fisher")
        s = res["summary"]
        if len(s["steps"]) < 2:
            return None, "fewer than 2 Fisher checkpoints"
        text = (f"q_b {fmt(s['q_b'][0])} @{s['steps'][0]} -> {fmt(s['q_b'][-1])} @{s['steps'][-1]} "
                f"(x{fmt(s['q_b_last_over_first'])}); alpha max {fmt(s['alpha_max'])} @{s['alpha_max_step']}; "
                f"max |<u1,v_b>| {fmt(max(s['u1_overlap_v_b']))}")
        return rule_c13(s["q_b"], s["alpha"], s["steps"], res["switch_step"], s["u1_overlap_v_b"]), text
    return per_seed(ev, "fisher", check)


def beta2_groups(beta2: dict) -> dict[float, list[dict]]:
    """Sweep rows grouped by p_probe, each group ordered by decreasing beta2."""
    return p_probe_groups(beta2["rows"])


def beta2_claim(ev: Evidence, check: Callable[[list[dict]], tuple[bool | None, str]]) -> Outcome:
    """Apply `check` to each p_probe group with >= 3 runs; held iff held in every such group."""
    if ev.beta2 is None:
        return not_measured(ev.missing_beta2())
    groups = compared_groups(ev.beta2["rows"])
    if not groups:
        return not_measured("the beta2 sweep has fewer than 3 runs at any p_probe")
    parts, verdicts = [], []
    for p, rows in groups.items():
        held, text = check(rows)
        if held is None:
            return not_measured(f"p_probe {p:g}: {text}")
        verdicts.append(held)
        parts.append(f"p_probe {p:g}: {text}")
    failed = [f"p_probe {p:g}" for p, v in zip(groups, verdicts) if not v]
    reason = f"fails at {', '.join(failed)}" if failed else ""
    return Outcome(HELD if all(verdicts) else NOT_HELD, "; ".join(parts), reason)


def series_text(rows: list[dict], key: str, digits: int = 3) -> str:
    if key == "beta2":
        return " / ".join(f"{r['beta2']:g}" for r in rows)
    return " / ".join(fmt(r.get(key), digits) for r in rows)


def read_c14(ev: Evidence) -> Outcome:
    def check(rows):
        pc1 = [r.get("window_pc1") for r in rows]
        if sum(finite(x) for x in pc1) < 2:
            return None, "window PC1 missing"
        return falls(pc1, THRESHOLDS["pc1_tol"]), (
            f"beta2 {series_text(rows, 'beta2')}: window PC1 {series_text(rows, 'window_pc1')}%")
    return beta2_claim(ev, check)


C17_PAIR_MISSING = "needs the beta2 = 0.95 and beta2 = 0 runs"


def c17_pair(rows: list[dict]) -> tuple[dict | None, dict | None]:
    """C17's two runs of a sweep group: (beta2 = 0, beta2 = 0.95), None where absent."""
    zero = next((r for r in rows if r["beta2"] == 0.0), None)
    ref = next((r for r in rows if abs(r["beta2"] - 0.95) < 1e-9), None)
    return zero, ref


def read_c17(ev: Evidence) -> Outcome:
    def check(rows):
        zero, ref = c17_pair(rows)
        if zero is None or ref is None:
            return None, C17_PAIR_MISSING
        # Rule fix: equal spans. A run that diverged early (beta2 = 0) is compared with the others over the
        # steps every run reached (pc1_common, drift_common), not its short span against their full runs.
        ratio = (zero["drift_common"] / ref["drift_common"]
                 if finite(zero.get("drift_common")) and finite(ref.get("drift_common")) and ref["drift_common"]
                 else None)
        text = (f"beta2 {series_text(rows, 'beta2')}: PC1 over steps <= {rows[0].get('common_last_step')} "
                f"{series_text(rows, 'pc1_common')}%, best p_ood {series_text(rows, 'best_p_ood')}, "
                f"drift(0)/drift(.95) over the same span {fmt(ratio)}")
        return rule_c17([r.get("pc1_common") for r in rows], [r.get("best_p_ood") for r in rows], ratio,
                        zero.get("status") == "diverged"), text
    return beta2_claim(ev, check)


def read_c18(ev: Evidence) -> Outcome:
    def check(rows):
        fits = [(r["beta2"], r["gamma_a"][0]) for r in rows if r.get("gamma_a")]
        if not fits:
            return None, "no gamma fits"
        held = all(finite(f["gamma"]) and f["gamma"] > THRESHOLDS["gamma_superlinear"]
                   and finite(f["r2"]) and f["r2"] >= THRESHOLDS["gamma_r2"] for _, f in fits)
        return held, "gamma_a(first half) " + " / ".join(f"{b:g}: {fmt(f['gamma'])} (R2 {fmt(f['r2'])})"
                                                         for b, f in fits)
    return beta2_claim(ev, check)


def read_c19(ev: Evidence) -> Outcome:
    def check(rows):
        early = [r.get("early_abs_cos") for r in rows]
        if sum(finite(x) for x in early) < 2:
            return None, "early |C| missing"
        return falls(early, THRESHOLDS["abs_cos_tol"]), (
            f"beta2 {series_text(rows, 'beta2')}: early |C| {series_text(rows, 'early_abs_cos')}, mean |C| "
            f"{series_text(rows, 'mean_abs_cos')}, early corr {series_text(rows, 'early_corr', digits=2)}")
    return beta2_claim(ev, check)


def read_c15(ev: Evidence) -> Outcome:
    res = ev.control("sgd_control")
    if res is None:
        return not_measured(ev.missing_control("sgd_control"))
    rows = {r["run"]: r for r in res["rows"]}
    if not all(r in rows for r in ("A", "B", "C")):
        return not_measured(f"control runs present: {', '.join(rows)}; need A, B and C")
    ours = "; ".join(f"{r}: val {fmt(rows[r]['final_val'])}, PC1 {fmt(rows[r]['pc1'], 3)}%, k95 {fmt(rows[r]['k95'])}"
                     for r in rows)
    get = lambda k: {r: rows[r].get(k) for r in rows}  # noqa: E731
    if not all(finite(rows[r].get("final_val")) for r in ("A", "B")):
        return not_measured("final val loss of A or B missing", ours)
    return Outcome(HELD if rule_c15(get("pc1"), get("k95"), get("final_val")) else NOT_HELD, ours)


def _matched_window(res: dict, run: str, label: str) -> dict | None:
    for row in res["rows"]:
        if row["run"] == run:
            for w in row["windows"]:
                if w["window"] == label and "note" not in w["geometry"]:
                    return w["geometry"]
    return None


def _centred_windows(res: dict, run: str) -> tuple[list[dict | None], dict | None]:
    """The geometry of a run's windows centred on its own matched-loss checkpoint (narrow, then wide), and its
    match record."""
    row = next((r for r in res["rows"] if r["run"] == run), None)
    if row is None:
        return [None, None], None
    wins = [w for w in row["windows"] if w.get("kind") == "centred"]
    geos = [w["geometry"] if "note" not in w["geometry"] else None for w in wins[:2]]
    return geos + [None] * (2 - len(geos)), row["match"]


def read_c16(ev: Evidence) -> Outcome:
    """Rule fix: the windows are read at each optimizer's own matched-loss checkpoint (the centred windows), not
    at the paper's fixed step lists, which at another scale need not sit at matched loss."""
    res = ev.control("sgd_matched_valloss")
    if res is None:
        return not_measured(ev.missing_control("sgd_matched_valloss"))
    sgd, m_c = _centred_windows(res, "C")
    adam, m_a = _centred_windows(res, "A")
    if any(g is None for g in sgd) or adam[1] is None:
        return not_measured("a window centred on the matched checkpoint of run C or A has too few checkpoints "
                            "(or the run is absent)")
    ours = (f"SGD+mom @{m_c['step']}: PC1 {fmt(sgd[0]['pc1'])}% / {fmt(sgd[1]['pc1'])}%, k95 {sgd[0]['k95']} / "
            f"{sgd[1]['k95']}, wide-window drift {fmt(sgd[1]['drift'])}; AdamW @{m_a['step']}"
            f"{'' if m_a.get('within_tol') else ' (nearest, outside tolerance)'}: wide-window drift "
            f"{fmt(adam[1]['drift'])}")
    held = rule_c16([(g["pc1"], g["k95"]) for g in sgd], sgd[1]["drift"], adam[1]["drift"])
    return Outcome(HELD if held else NOT_HELD, ours)


def relative_change(x: Sequence[float]) -> float:
    """max_t |x(t) - x(0)| / |x(0)| (NaN when x(0) is 0 or missing)."""
    x = np.asarray([np.nan if v is None else v for v in x], dtype=np.float64)
    return float(np.nanmax(np.abs(x - x[0])) / abs(x[0])) if x.size and finite(x[0]) and x[0] != 0 else math.nan


def read_c20(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        res = run.results("reheat")
        rows = [r for r in res["rows"] if r.get("peak") is not None]
        if not rows or not finite(res.get("start_p_ood")):
            return None, "no reheating evals"
        a_rel = [relative_change(r["coords"]["a"]) for r in rows]
        r_rel = [relative_change(r["coords"]["residual_norm"]) for r in rows]
        text = (f"start {fmt(res['start_p_ood'])}; " + ", ".join(
            f"lr {r['lr']:g}: peak {fmt(r['peak'])} @{r['peak_step']}, end {fmt(r['end'])}" for r in rows)
            + "; max rel. change a " + "/".join(fmt(x, 2) for x in a_rel)
            + ", ||r|| " + "/".join(fmt(x, 2) for x in r_rel))
        return rule_c20(res["start_p_ood"], [r["peak"] for r in rows], [r["end"] for r in rows], a_rel, r_rel), text
    return per_seed(ev, "reheat", check)
