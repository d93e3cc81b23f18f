"""The paper's claims checklist (PROTOCOL section 6) as data, and the verdicts our runs give.

Each claim C1..C22 carries the paper's value, our reading of it from the analysis JSON, and a decision rule.
The rules were written down, with their thresholds, before any cpu- or paper-scale result existed; they test the
scale-free ("qualitative", [Q]) part of a claim. For claims that are only [S] (numbers specific to the paper's
scale), the rule tests the nearest scale-free statement and says so. A verdict is one of

    held          the rule is satisfied (in every seed, when there are several)
    not held      the rule fails in at least one seed (the text says which)
    not measured  an input is missing or too short; the text says which and how to produce it

Rules are pure functions of a few numbers (`rule_*`, in rules.py), unit-tested on crafted values; the readers
(`read_*`, in readers.py) only pull those numbers out of the JSON. Everything is read through `Evidence`
(inputs.py), which loads the run directories' analysis files once and never touches a checkpoint; null_verdicts.py
sets each claim's key statistic against its null.

    from drift.report.inputs import load_evidence
    ev = load_evidence(["runs/cpu_s42", "runs/cpu_s271"], controls="runs/ctrl_s42", beta2="runs/beta2_s42")
    for row in evaluate_claims(ev):
        print(row["id"], row["verdict"], row["ours"])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from drift.report.inputs import Evidence
from drift.report.null_verdicts import null_outcome_over_sets, set_kind
from drift.report.readers import (Outcome, not_measured, over_sets, read_c1, read_c2, read_c3, read_c4, read_c5,
                                  read_c6, read_c7, read_c8, read_c9, read_c10, read_c11, read_c12, read_c13,
                                  read_c14, read_c15, read_c16, read_c17, read_c18, read_c19, read_c20, read_c21,
                                  read_c22)
from drift.report.rules import THRESHOLDS


# ---------------------------------------------------------------------------------------------------------------
# The checklist
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    id: str
    kind: str        # "Q", "S" or "Q+S" (PROTOCOL section 6 tags)
    text: str        # the claim, in our words
    paper: str       # the paper's values
    source: str      # where our numbers come from
    test: str        # the pre-declared decision rule
    read: Callable[[Evidence], Outcome]


def _t(key: str) -> str:
    return f"{THRESHOLDS[key]:g}"


CLAIMS: list[Claim] = [
    Claim("C1", "Q+S", "The probe accuracy p_ood oscillates while the validation loss falls steadily.",
          "p_ood within 0.40-0.78 (s42), 0.20-0.67 (s271); val 10.8 -> 1.22; s42 peak 0.777 @5000; late < 0.2",
          "metrics.jsonl",
          f"at least one peak -> next-trough drop of p_ood passing the prominence rule ({_t('osc_prominence')}) and "
          f"exceeding {_t('osc_sigma')} binomial std at the peak; val loss last < first and Spearman(step, val) <= "
          f"{_t('val_spearman')}", read_c1),
    Claim("C2", "Q+S", "Within every block, the first uncentered principal component dominates the raw drift.",
          "raw PC1 78-81% in every block (s42 80.5 ... 77.9; s271 78.6 ... 78.3)", "trajectory_pca.json (A1)",
          f"raw per-block PC1 >= {_t('pc1_dominant')} in every block", read_c2),
    Claim("C3", "Q+S", "At trunk level, raw PC1 exceeds the row-normalized PC1, and PC1 >> PC2.",
          "row-norm PC1 71.4/71.7% (top-10 denominator), PC2 12.1/11.8%, raw PC1 79.1/79.3%",
          "trajectory_pca.json (A2)",
          f"raw PC1 > row-normalized PC1 (full denominator), and row-normalized PC1 >= {_t('pc1_over_pc2')} x PC2",
          read_c3),
    Claim("C4", "S", "The per-block backbone is stable between adjacent windows (raw drifts from step 1).",
          "adjacent-window |cos| 0.997-0.998", "trajectory_pca.json (A4, per-block variant)",
          f"scale-free version: mean adjacent-window |cos| >= {_t('stability_cos')} in every block", read_c4),
    Claim("C5", "S", "The backbone carries most of the final displacement.",
          "f_b at the final checkpoint 68-72% (ambiguous; the reference code gives 0.865/0.872 at trunk level)",
          "trajectory_pca.json (A3)", f"scale-free version: trunk f_b at the last checkpoint >= {_t('f_b_majority')}",
          read_c5),
    Claim("C6", "Q+S", "The rolling backbone turns fastest just after the lambda switch.",
          "rho mean 0.800/0.793, max 0.936/0.938, min 0.749/0.702 near step 5000; rho > 0.7",
          "trajectory_pca.json (A4)",
          f"argmin of rho(t) lies in [switch, switch + {_t('rho_dip_after')} T] (T = run length), both ends "
          "included, the earliest of equal minima", read_c6),
    Claim("C7", "Q+S", "The late-phase backbone is more dominant than the early one and points elsewhere.",
          "early PC1 60.0/59.2%, late 81.3/81.7%, |<v_E, v_L>| = 0.323 (about 71 degrees)",
          "trajectory_pca.json (A5), nulls.json",
          "late PC1 > early PC1, and |<v_E, v_L>| below the lower end of its N3 band (the run's updates in random "
          "order)", read_c7),
    Claim("C8", "Q+S", "Around the switch, the rolling backbone hands over from v_E to v_L.",
          "A_E .83 .61 .02 .21 .20 .18 .18, A_L .16 .28 .16 .59 .69 .29 .02 at centres 1100 ... 8900 (s42)",
          "trajectory_pca.json (A5)",
          f"mean A_E > mean A_L over window centres <= switch, and mean A_L > mean A_E over centres in "
          f"(switch, switch + {_t('handoff_after')} T]", read_c8),
    Claim("C9", "Q+S", "The backbone coordinate grows superlinearly at first, and its exponent falls over time.",
          "gamma_a +2.07, +0.67, +0.15/+0.12, -0.19/-0.20 on 0-2k, 2-4k, 4-6k, 6-10k; gamma_r +1.24 ... +0.36",
          "trajectory_pca.json (A6)",
          f"gamma_a of the first window (0, 0.2T] > {_t('gamma_superlinear')} with R^2 >= {_t('gamma_r2')}, and "
          f"gamma_a non-increasing over the four windows up to +{_t('gamma_tol')}", read_c9),
    Claim("C10", "Q+S", "corr(p_ood, ||r||) is positive early and negative late.",
          "+0.61/+0.45 full, +0.85/+0.76 on 0-4k, +0.43/+0.28 on 4-10k, -0.73/-0.79 on 6-10k",
          "trajectory_pca.json (A7)", "r on (0, 0.4T] > 0 and r on (0.6T, T] < 0", read_c10),
    Claim("C11", "Q+S", "Update alignment with the block-0 backbone reverses sign after the switch and weakens.",
          "|C| 0.15-0.32 early (peak ~0.32 near 1700, s271), sign flip ~5100, |C| ~0.11 after",
          "update_alignment.json (A8)",
          "a persistent sign flip of C (block 0, LN-inclusive when available) at or after the switch, and mean "
          "|C| after the flip < before", read_c11),
    Claim("C12", "Q+S", "Updates align with the backbone far above the gradient, which sits near the isotropic floor.",
          "|cos(g, v_b)| ~4e-4 (Fig 2) or 0.008-0.012 (sec 9.2); gap '20-30x'", "gradient_alignment.json (A9)",
          f"mean |cos(u, v_b)| >= {_t('update_over_grad')} x mean |cos(g, v_b)|, and mean |cos(g, v_b)| <= "
          f"{_t('grad_over_floor')} x sqrt(2/(pi D))", read_c12),
    Claim("C13", "Q+S", "Fisher curvature along the backbone rises by orders of magnitude; anisotropy peaks after "
          "the switch; v_b is not the top Fisher eigenvector.",
          "q_b 2.4e-6 -> 8.1e-3 (x3000); alpha 1.35 / 1.92 / 12.4 / 4.81 at 200 / 1800 / 4800 / 9600",
          "fisher.json (A10)",
          f"q_b(last) / q_b(first) >= {_t('fisher_rise')}; max alpha > 1 at a step >= the switch; |<u_1, v_b>| < "
          f"{_t('fisher_u1_max')} at every checkpoint", read_c13),
    Claim("C14", "S", "In the [600, 2000] window, PC1 falls as beta2 drops.",
          "window PC1 68.1 / 68.4 / 66.3 / 63.4 / 51.6; mean |cos| .226 ... .099 (beta2 .99 ... 0)",
          "beta2_sweep.json (A13, window variant)",
          f"scale-free version: window PC1 falls as beta2 drops (.99 ... 0): no rise above +{_t('pc1_tol')} point "
          f"between neighbours, and a net fall of more than {_t('pc1_tol')} point",
          read_c14),
    Claim("C15", "Q+S", "SGD-family trajectories are collinear (PC1 ~ 100%, k95 = 1); AdamW is not; plain SGD "
          "fails to train.", "A 61.5% k95 9; B 100% k95 1 (val 8.12); C 100% k95 1 (val 5.10)",
          "sgd_control.json (A12)",
          f"B and C: window PC1 >= {_t('sgd_pc1')}% with k95 = 1; A: k95 >= 2; final val(B) >= final val(A) + "
          f"{_t('sgd_fails_val')}", read_c15),
    Claim("C16", "Q+S", "At matched loss, momentum SGD stays collinear and nearly stationary.",
          "SGD+mom [2000..2400] 98.1% k95 1 drift 0.26; [1800..2600] 97.7% drift 0.60; AdamW [1..600] drift 24.9",
          "sgd_matched_valloss.json (A12)",
          f"the two windows centred on C's own matched-loss checkpoint (+-200 and +-400 paper steps): PC1 >= "
          f"{_t('sgd_pc1')}% with k95 = 1; drift of C's wide window <= {_t('stationary')} x that of AdamW's wide "
          "window centred on AdamW's matched checkpoint", read_c16),
    Claim("C17", "Q+S", "Row-normalized PC1 and best p_ood fall monotonically as beta2 drops; beta2 = 0 blows up.",
          "PC1 68.8 / 68.3 / 66.7 / 63.8 / 52.5; best p .951 / .939 / .814 / .682 / .005; drift x1300 at beta2 = 0",
          "beta2_sweep.json (A13)",
          f"over the span every run reached (equal spans): ordered by decreasing beta2, PC1 and best p_ood fall: no "
          f"rise between neighbours above +{_t('pc1_tol')} point (PC1) / +{_t('p_ood_tol')} (p_ood) and a net fall "
          f"larger than that; drift(beta2=0) >= {_t('blowup')} x drift(0.95) over that span, or the run diverged",
          read_c17),
    Claim("C18", "Q+S", "The early backbone coordinate grows superlinearly for every beta2.",
          "gamma_a(0-2k) 1.97 / 1.94 / 1.93 / 1.98 / 2.45, R^2 > 0.98", "beta2_sweep.json (A13, A6)",
          f"gamma_a on the first half > {_t('gamma_superlinear')} with R^2 >= {_t('gamma_r2')} for every beta2",
          read_c18),
    Claim("C19", "Q+S", "Early update alignment falls as beta2 drops.",
          "early |C| .368 / .363 / .343 / .328 / .269; mean |C| .243 ... .238", "beta2_sweep.json (A13, A8)",
          f"early |C| falls as beta2 drops: no rise between neighbours above +{_t('abs_cos_tol')} and a net fall "
          f"larger than {_t('abs_cos_tol')}", read_c19),
    Claim("C20", "Q+S", "Reheating re-enters the high-p_ood regime only transiently; a(t) barely moves while ||r|| "
          "responds.", "peaks .705 @900 / .782 @1000 / .578 @1500; end .221 / .279 / .421; start 0.16",
          "reheat.json (A14)",
          f"for every LR: peak >= start + {_t('reentry')} and end <= peak - {_t('reentry')}; the largest relative "
          "change of a(t) < that of ||r(t)||", read_c20),
    Claim("C21", "Q+S", "The p_ood switch is mostly transverse to the backbone.",
          "|<v_sw, v_b>| .20-.25 (s42), .28-.31 (s271); c^2 .04-.10; E_2:6 15-22% / 60-67%",
          "trajectory_pca.json (A11)", f"c^2 <= {_t('switch_c2_max')} in every block for the first switch pair",
          read_c21),
    Claim("C22", "S", "Seeds agree closely.", "within 1-2%", "trajectory_pca.json (A1, A2, A4)",
          f"with >= 2 seeds: trunk row-norm PC1, raw PC1, mean per-block PC1 and mean rho (in %) differ by <= "
          f"{_t('seed_pp')} points", read_c22),
]


def evaluate_claims(ev: Evidence) -> list[dict]:
    """One row per claim: id, kind, text, paper, source, test, verdict, ours, reason, and the null comparison
    (null: beyond null / within null / no null, or "" for claims with no trajectory null; null_text;
    paper_in_band: the paper's own values that lie inside our N1 band)."""
    rows = []
    for c in CLAIMS:
        try:
            kind = set_kind(c.id)
            if c.read is None:
                out = not_measured("reader not available")
            else:  # a control or beta2 claim is read in every set (one per seed)
                out = over_sets(ev, kind, c.read) if kind else c.read(ev)
        except (KeyError, IndexError, TypeError, ValueError) as e:  # a JSON layout we do not know: say so
            out = not_measured(f"could not read the analysis JSON ({type(e).__name__}: {e})")
        try:
            null = null_outcome_over_sets(ev, c.id)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            null = {"null": "no null", "null_text": f"could not read nulls.json ({type(e).__name__}: {e})",
                    "paper_in_band": []}
        rows.append({"id": c.id, "kind": c.kind, "text": c.text, "paper": c.paper, "source": c.source,
                     "test": c.test, "verdict": out.verdict, "ours": out.ours, "reason": out.reason, **null})
    return rows
