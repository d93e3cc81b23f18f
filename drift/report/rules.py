"""The claims' decision rules (PROTOCOL section 6): pure functions of a few numbers -> bool, with the thresholds
they use. The thresholds and rules were written down before any cpu- or paper-scale result existed; this file's git
history is their audit trail, so change a rule or a threshold only in a commit of its own, with a note in the report.
The readers in readers.py pull the numbers out of the analysis JSON and apply these rules; tests/test_claims.py
checks each rule on crafted values, at its threshold and just across it.

    from drift.report.rules import rule_c3
    rule_c3(rn_pc1=0.62, rn_pc2=0.11, raw_pc1=0.8)   # True: row-normalized PC1 >= 3 x PC2
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------------------------
# Decision thresholds. Fixed before looking at any result; change them only with a note in the report.
# ---------------------------------------------------------------------------------------------------------------
THRESHOLDS = {
    "osc_prominence": 0.03,        # C1: the paper's own peak/trough prominence (PROTOCOL A11)
    "osc_sigma": 3.0,              # C1: a peak->trough drop must also exceed 3 binomial std of p_ood at the peak
    "val_spearman": -0.8,          # C1: val loss "falls steadily": Spearman(step, val) <= -0.8 and last < first
    "pc1_dominant": 0.5,           # C2: raw PC1 explains >= 50% of the squared drift in every block
    "pc1_over_pc2": 3.0,           # C3: trunk row-normalized PC1 >= 3 x PC2
    "stability_cos": 0.99,         # C4: mean adjacent-window |cos| (per block, raw, global ref) >= 0.99
    "f_b_majority": 0.5,           # C5: trunk backbone fraction at the last checkpoint >= 0.5
    "rho_dip_after": 0.2,          # C6: argmin of rho(t) in [switch, switch + 0.2 T], both ends included
    "handoff_after": 0.2,          # C8: A_L > A_E on average over window centers in (switch, switch + 0.2 T]
    "gamma_superlinear": 1.0,      # C9, C18: gamma_a of the first window > 1 ...
    "gamma_r2": 0.8,               # ... with R^2 >= 0.8
    "gamma_tol": 0.1,              # C9: gamma_a non-increasing across the 4 windows, up to +0.1
    "update_over_grad": 10.0,      # C12: mean |cos(u, v_b)| >= 10 x mean |cos(g, v_b)| ...
    "grad_over_floor": 5.0,        # ... and mean |cos(g, v_b)| <= 5 x sqrt(2 / (pi D))
    "fisher_rise": 10.0,           # C13: q_b(last) / q_b(first) >= 10
    "fisher_u1_max": 0.9,          # C13: |<u_1, v_b>| < 0.9 at every Fisher checkpoint
    "pc1_tol": 1.0,                # C14, C17: "falls monotonically" up to +1 percentage point between neighbours
    "p_ood_tol": 0.02,             # C17: best p_ood non-increasing up to +0.02
    "blowup": 10.0,                # C17: beta2 = 0 drift >= 10 x the beta2 = 0.95 drift (or the run diverged)
    "abs_cos_tol": 0.01,           # C19: early |C| non-increasing up to +0.01
    "sgd_pc1": 95.0,               # C15, C16: SGD-family window PC1 >= 95% with k95 = 1
    "sgd_fails_val": 1.0,          # C15: plain SGD's final val loss >= AdamW's + 1 nat
    "stationary": 0.1,             # C16: SGD+mom drift over [1800..2600] <= 0.1 x AdamW drift over [1..600]
    "reentry": 0.05,               # C20: peak >= start + 0.05 and end <= peak - 0.05, for every LR
    "switch_c2_max": 0.25,         # C21: c^2 = |<v_sw, v_b>|^2 <= 0.25 in every block (>= 75% transverse)
    "seed_pp": 2.0,                # C22: seeds agree within 2 percentage points on the headline fractions
}


def finite(x) -> bool:
    """A real number that is not NaN or infinite (None, bools and strings are not)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


# ---------------------------------------------------------------------------------------------------------------
# Decision rules: pure functions of numbers -> bool (unit-tested on crafted values)
# ---------------------------------------------------------------------------------------------------------------

def oscillation_drops(p_ood: Sequence[float], n_eval: int) -> list[float]:
    """Peak -> next-trough drops of the p_ood series that pass the A11 prominence rule and the 3-sigma test."""
    from drift.geometry.switching import find_peaks_troughs, switch_pairs
    p = np.nan_to_num(np.asarray(p_ood, dtype=np.float64), nan=0.0)
    ext = find_peaks_troughs(p, prominence=THRESHOLDS["osc_prominence"])
    drops = []
    for i, j in switch_pairs(ext["peaks"], ext["troughs"]):
        sigma = math.sqrt(max(p[i] * (1 - p[i]), 0.0) / max(n_eval, 1))
        if p[i] - p[j] >= max(THRESHOLDS["osc_prominence"], THRESHOLDS["osc_sigma"] * sigma):
            drops.append(float(p[i] - p[j]))
    return drops


def val_falls(steps: Sequence[float], val_loss: Sequence[float]) -> bool:
    from scipy.stats import spearmanr
    s, v = np.asarray(steps, float), np.asarray(val_loss, float)
    ok = np.isfinite(v)
    if ok.sum() < 3:
        return False
    rho = spearmanr(s[ok], v[ok]).statistic
    return bool(v[ok][-1] < v[ok][0] and rho <= THRESHOLDS["val_spearman"])


def rule_c1(p_ood: Sequence[float], n_eval: int, steps: Sequence[float], val_loss: Sequence[float]) -> bool:
    """p_ood has at least one significant peak->trough drop, and the val loss falls steadily."""
    return bool(oscillation_drops(p_ood, n_eval)) and val_falls(steps, val_loss)


def rule_c2(block_pc1: Sequence[float]) -> bool:
    """Raw per-block PC1 fraction >= 0.5 in every block."""
    return len(block_pc1) > 0 and all(finite(x) and x >= THRESHOLDS["pc1_dominant"] for x in block_pc1)


def rule_c3(rn_pc1: float, rn_pc2: float, raw_pc1: float) -> bool:
    """Raw PC1 > row-normalized PC1, and row-normalized PC1 >= 3 x PC2."""
    return raw_pc1 > rn_pc1 and rn_pc1 >= THRESHOLDS["pc1_over_pc2"] * rn_pc2


def rule_c4(block_mean_cos: Sequence[float]) -> bool:
    return len(block_mean_cos) > 0 and all(finite(c) and c >= THRESHOLDS["stability_cos"] for c in block_mean_cos)


def rule_c5(f_b_final: float) -> bool:
    return f_b_final >= THRESHOLDS["f_b_majority"]


def rule_c6(rho_argmin_step: float, switch: float, total: float) -> bool:
    """Tie rule (written down after a rerun landed one checkpoint outside): the interval is closed at both ends,
    and among equal minima of rho the earliest counts (numpy argmin). rho is placed between two window centres, so
    its argmin moves in steps of ckpt_every and can sit exactly on a bound; the null verdict (rho_min against the
    matched random walk) is the test that does not hinge on one grid step."""
    return switch <= rho_argmin_step <= switch + THRESHOLDS["rho_dip_after"] * total


def rule_c7(early_pc1: float, late_pc1: float, abs_cos: float, n3_lo: float) -> bool:
    """Late PC1 > early PC1, and |<v_E, v_L>| below the lower end of its N3 band (the run's own updates in random
    order). The former fixed bound |cos| <= 0.8 could not fail: independent random-walk phases give |cos| ~ 0. N3
    keeps the updates and destroys only their order, so a |cos| below its band says the two phases point in
    different directions beyond what reordering the same updates gives."""
    return late_pc1 > early_pc1 and finite(n3_lo) and abs_cos < n3_lo


def rule_c8(centers: Sequence[float], a_e: Sequence[float], a_l: Sequence[float], switch: float,
            total: float) -> bool | None:
    """A_E > A_L on average before the switch, A_L > A_E on average in (switch, switch + 0.2 T]; None if either
    range has no window center."""
    from drift.geometry.windows import handoff_margin
    m = handoff_margin(centers, a_e, a_l, switch, total, THRESHOLDS["handoff_after"])
    return None if math.isnan(m) else bool(m > 0)


def rule_c9(gamma_a: Sequence[float], r2_first: float) -> bool:
    """gamma_a over the 4 windows: the first > 1 with R^2 >= 0.8, and non-increasing up to +0.1."""
    g = list(gamma_a)
    if len(g) < 2 or not all(finite(x) for x in g) or not finite(r2_first):
        return False
    falls = all(b <= a + THRESHOLDS["gamma_tol"] for a, b in zip(g[:-1], g[1:]))
    return g[0] > THRESHOLDS["gamma_superlinear"] and r2_first >= THRESHOLDS["gamma_r2"] and falls


def rule_c10(r_early: float, r_late: float) -> bool:
    return r_early > 0 and r_late < 0


def rule_c11(flip_step: float | None, switch: float, before: float, after: float) -> bool:
    """A persistent sign flip of C at or after the switch, and a weaker |C| after it."""
    return flip_step is not None and flip_step >= switch and finite(after) and after < before


def rule_c12(update_abs_cos: float, grad_abs_cos: float, floor: float) -> bool:
    return (update_abs_cos >= THRESHOLDS["update_over_grad"] * grad_abs_cos
            and grad_abs_cos <= THRESHOLDS["grad_over_floor"] * floor)


def rule_c13(q_b: Sequence[float], alpha: Sequence[float], steps: Sequence[float], switch: float,
             u1_overlap: Sequence[float]) -> bool:
    if len(q_b) < 2 or not q_b[0] or q_b[0] <= 0:
        return False
    i = int(np.nanargmax(np.asarray(alpha, dtype=np.float64)))
    return (q_b[-1] / q_b[0] >= THRESHOLDS["fisher_rise"] and alpha[i] > 1 and steps[i] >= switch
            and max(u1_overlap) < THRESHOLDS["fisher_u1_max"])


def falls(values: Sequence[float], tol: float) -> bool:
    """"Falls monotonically": over the finite values in order, every step rises by at most `tol`, and the last
    value is below the first by more than `tol` (a flat series does not fall)."""
    v = [x for x in values if finite(x)]
    return len(v) >= 2 and all(b <= a + tol for a, b in zip(v[:-1], v[1:])) and v[0] - v[-1] > tol


def rule_c17(pc1: Sequence[float], best_p: Sequence[float], blowup_ratio: float | None, diverged: bool) -> bool:
    """Ordered by decreasing beta2: PC1 and best p_ood fall (tolerances), and beta2 = 0 blows up."""
    blew = diverged or (finite(blowup_ratio) and blowup_ratio >= THRESHOLDS["blowup"])
    return falls(pc1, THRESHOLDS["pc1_tol"]) and falls(best_p, THRESHOLDS["p_ood_tol"]) and bool(blew)


def rule_c15(pc1: dict, k95: dict, final_val: dict) -> bool:
    """pc1/k95/final_val keyed by run A, B, C."""
    sgd = all(finite(pc1.get(r)) and pc1[r] >= THRESHOLDS["sgd_pc1"] and k95.get(r) == 1 for r in ("B", "C"))
    return (sgd and finite(k95.get("A")) and k95["A"] >= 2
            and final_val["B"] >= final_val["A"] + THRESHOLDS["sgd_fails_val"])


def rule_c16(sgd_windows: Sequence[tuple[float, int]], sgd_drift: float, adam_drift: float) -> bool:
    collinear = all(p >= THRESHOLDS["sgd_pc1"] and k == 1 for p, k in sgd_windows)
    return bool(sgd_windows) and collinear and sgd_drift <= THRESHOLDS["stationary"] * adam_drift


def rule_c20(start: float, peaks: Sequence[float], ends: Sequence[float], a_rel: Sequence[float],
             r_rel: Sequence[float]) -> bool:
    """Every LR: re-entry (peak >= start + 0.05), then decay (end <= peak - 0.05); and the relative change of a
    stays below that of ||r||."""
    d = THRESHOLDS["reentry"]
    transient = all(p >= start + d and e <= p - d for p, e in zip(peaks, ends))
    return bool(peaks) and transient and all(a < r for a, r in zip(a_rel, r_rel))


def rule_c21(c2_by_block: Sequence[float]) -> bool:
    return len(c2_by_block) > 0 and all(finite(c) and c <= THRESHOLDS["switch_c2_max"] for c in c2_by_block)


def rule_c22(values_by_seed: dict[str, Sequence[float]]) -> bool:
    """Each headline fraction (in %) differs by at most 2 points across seeds."""
    rows = np.array(list(values_by_seed.values()), dtype=np.float64)
    return rows.shape[0] >= 2 and bool(np.all(np.ptp(rows, axis=0) <= THRESHOLDS["seed_pp"]))
