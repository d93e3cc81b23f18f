"""Tests for the paper figures, the LaTeX report and the claims checklist (drift/report/figures.py, drift/report/tables.py,
drift/report/claims.py, make_paper_figures.py, make_report.py).

Known answers: every decision rule on crafted numbers (one case that holds, one that does not), the seed-spread
and number formatting, the claim readers on crafted control / beta2 / reheating JSON with planted outcomes, and, on
a copy of the tiny run with its trajectory and mechanism analyses, the figure script's files, every generated
table, and a verdict for each of C1-C22. A slow test compiles the PDF when latexmk is installed.

Run: pytest tests/test_report.py          (add -m slow for the LaTeX build)
"""
from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from drift.report import claims as cl, inputs as inp, readers as rd
from drift.report import latex, rules, table_cells
from drift.report import tables as rp
from drift.config import resolve

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------
# Decision rules on crafted numbers: (arguments that hold, arguments that do not)
# ---------------------------------------------------------------------------------------------------------------

STEPS = list(range(0, 220, 20))
OSC = [0.0, 0.1, 0.5, 0.8, 0.3, 0.2, 0.6, 0.7, 0.65, 0.66, 0.64]   # 0.8 -> 0.2: a drop of 0.6
MONO = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85]   # no peak, no trough
VAL_DOWN = list(np.linspace(8.0, 3.0, len(STEPS)))
VAL_FLAT = [5.0, 5.1, 4.9, 5.2, 4.8, 5.0, 5.3, 4.9, 5.0, 5.1, 5.05]
Q_B, FISHER_STEPS = [1e-6, 2e-6, 1e-4, 1e-3], [20, 180, 480, 960]

RULE_CASES = {
    "c1": (rules.rule_c1, (OSC, 256, STEPS, VAL_DOWN), (MONO, 256, STEPS, VAL_DOWN)),
    "c1_val": (rules.rule_c1, (OSC, 256, STEPS, VAL_DOWN), (OSC, 256, STEPS, VAL_FLAT)),
    "c2": (rules.rule_c2, ([0.8, 0.7, 0.55],), ([0.8, 0.45, 0.9],)),
    "c3": (rules.rule_c3, (0.7, 0.1, 0.8), (0.7, 0.3, 0.8)),
    "c3_raw": (rules.rule_c3, (0.7, 0.1, 0.8), (0.7, 0.1, 0.65)),
    "c4": (rules.rule_c4, ([0.995, 0.999],), ([0.995, 0.98],)),
    "c5": (rules.rule_c5, (0.7,), (0.4,)),
    "c6": (rules.rule_c6, (450.0, 400, 1000), (300.0, 400, 1000)),
    "c6_late": (rules.rule_c6, (590.0, 400, 1000), (610.0, 400, 1000)),
    "c7": (rules.rule_c7, (0.6, 0.8, 0.3, 0.4), (0.8, 0.6, 0.3, 0.4)),
    "c7_cos": (rules.rule_c7, (0.6, 0.8, 0.3, 0.4), (0.6, 0.8, 0.5, 0.4)),   # |cos| inside the N3 band
    "c7_no_null": (rules.rule_c7, (0.6, 0.8, 0.3, 0.4), (0.6, 0.8, 0.3, float("nan"))),
    "c8": (rules.rule_c8, ([100, 300, 450, 550, 800], [0.8, 0.6, 0.2, 0.2, 0.1], [0.1, 0.2, 0.6, 0.7, 0.1], 400, 1000),
           ([100, 300, 450, 550, 800], [0.8, 0.6, 0.7, 0.6, 0.1], [0.1, 0.2, 0.6, 0.5, 0.1], 400, 1000)),
    "c9": (rules.rule_c9, ([2.0, 0.7, 0.15, -0.2], 0.97), ([2.0, 0.7, 1.2, -0.2], 0.97)),
    "c9_sub": (rules.rule_c9, ([2.0, 0.7, 0.15, -0.2], 0.97), ([0.9, 0.7, 0.15, -0.2], 0.97)),
    "c10": (rules.rule_c10, (0.8, -0.7), (0.8, 0.2)),
    "c11": (rules.rule_c11, (510.0, 400, 0.3, 0.1), (300.0, 400, 0.3, 0.1)),
    "c11_weaker": (rules.rule_c11, (510.0, 400, 0.3, 0.1), (510.0, 400, 0.3, 0.4)),
    "c12": (rules.rule_c12, (0.25, 0.002, 0.001), (0.25, 0.05, 0.001)),
    "c12_floor": (rules.rule_c12, (0.25, 0.002, 0.001), (0.25, 0.01, 0.001)),
    "c13": (rules.rule_c13, (Q_B, [1.3, 1.9, 12.0, 4.8], FISHER_STEPS, 400, [0.1, 0.2, 0.3, 0.2]),
            (Q_B, [1.3, 12.0, 2.0, 4.8], FISHER_STEPS, 400, [0.1, 0.2, 0.3, 0.2])),   # alpha peaks before
    "c13_u1": (rules.rule_c13, ([1e-6, 1e-3], [1.3, 4.8], [20, 960], 400, [0.1, 0.5]),
               ([1e-6, 1e-3], [1.3, 4.8], [20, 960], 400, [0.1, 0.95])),
    "c15": (rules.rule_c15, ({"A": 61.5, "B": 100.0, "C": 99.0}, {"A": 9, "B": 1, "C": 1}, {"A": 1.6, "B": 8.1, "C": 5.1}),
            ({"A": 61.5, "B": 100.0, "C": 90.0}, {"A": 9, "B": 1, "C": 2}, {"A": 1.6, "B": 8.1, "C": 5.1})),
    "c16": (rules.rule_c16, ([(98.1, 1), (97.7, 1)], 0.6, 24.9), ([(98.1, 1), (97.7, 1)], 5.0, 24.9)),
    "c17": (rules.rule_c17, ([68.8, 68.3, 66.7, 63.8, 52.5], [0.95, 0.94, 0.81, 0.68, 0.005], 1300.0, False),
            ([68.8, 68.3, 70.7, 63.8, 52.5], [0.95, 0.94, 0.81, 0.68, 0.005], 1300.0, False)),
    "c17_blowup": (rules.rule_c17, ([68.8, 52.5], [0.95, 0.005], None, True), ([68.8, 52.5], [0.95, 0.005], 2.0, False)),
    "c20": (rules.rule_c20, (0.16, [0.7, 0.78], [0.22, 0.28], [0.01, 0.02], [0.2, 0.3]),
            (0.16, [0.7, 0.18], [0.22, 0.17], [0.01, 0.02], [0.2, 0.3])),
    "c20_a": (rules.rule_c20, (0.16, [0.7], [0.22], [0.01], [0.2]), (0.16, [0.7], [0.22], [0.3], [0.2])),
    "c21": (rules.rule_c21, ([0.04, 0.1, 0.06],), ([0.04, 0.5, 0.06],)),
    "c22": (rules.rule_c22, ({"s42": [71.4, 79.1], "s271": [71.7, 79.3]},),
            ({"s42": [71.4, 79.1], "s271": [75.0, 79.3]},)),
}


# The same rules at their thresholds (PROTOCOL section 6, fixed before any result): each pair is (arguments exactly
# on the threshold, or just inside it, that hold; the same arguments moved just across it, that do not). Values
# are chosen so the products and sums the rules form are exact in binary (3 x 0.125, 10 x 0.25, 5 x 0.05 ...), so
# ">=" against ">" and a moved threshold both show.
C8_CENTRES = [400, 500, 601]       # switch 400, T 1000: 400 counts as before, the handoff range is (400, 600]
BOUNDARY_CASES = {
    "c2_0.5": (rules.rule_c2, ([0.5, 0.9],), ([0.4999, 0.9],)),
    "c3_3x": (rules.rule_c3, (0.375, 0.125, 0.5), (0.375, 0.1250001, 0.5)),
    "c3_raw_strict": (rules.rule_c3, (0.375, 0.125, 0.3750001), (0.375, 0.125, 0.375)),
    "c4_0.99": (rules.rule_c4, ([0.99, 1.0],), ([0.9899, 1.0],)),
    "c5_0.5": (rules.rule_c5, (0.5,), (0.4999,)),
    "c6_switch": (rules.rule_c6, (400, 400, 1000), (399, 400, 1000)),
    "c6_0.2T": (rules.rule_c6, (600, 400, 1000), (601, 400, 1000)),
    "c7_n3_strict": (rules.rule_c7, (0.6, 0.8, 0.3, 0.3000001), (0.6, 0.8, 0.3, 0.3)),
    "c7_late_strict": (rules.rule_c7, (0.6, 0.6000001, 0.3, 0.4), (0.6, 0.6, 0.3, 0.4)),
    "c8_0.2T": (rules.rule_c8, (C8_CENTRES, [0.6, 0.1, 0.9], [0.1, 0.6, 0.0], 400, 1000),
                ([400, 500, 600], [0.6, 0.1, 0.9], [0.1, 0.6, 0.0], 400, 1000)),
    "c9_gamma_1": (rules.rule_c9, ([1.0 + 2 ** -20, 1.0], 0.8), ([1.0, 1.0], 0.8)),
    "c9_r2_0.8": (rules.rule_c9, ([2.0, 1.0], 0.8), ([2.0, 1.0], 0.7999)),
    "c9_tol_0.1": (rules.rule_c9, ([2.0, 1.5, 1.6], 0.9), ([2.0, 1.5, 1.6001], 0.9)),
    "c10_signs": (rules.rule_c10, (1e-9, -1e-9), (0.0, -0.5)),
    "c10_late": (rules.rule_c10, (0.5, -1e-9), (0.5, 0.0)),
    "c11_switch": (rules.rule_c11, (400, 400, 0.3, 0.1), (399, 400, 0.3, 0.1)),
    "c11_weaker_strict": (rules.rule_c11, (400, 400, 0.3, 0.2999), (400, 400, 0.3, 0.3)),
    "c12_10x": (rules.rule_c12, (2.5, 0.25, 0.05), (2.4999, 0.25, 0.05)),
    "c12_5x_floor": (rules.rule_c12, (2.5, 0.25, 0.05), (2.5, 0.25, 0.0499)),
    "c13_rise_10": (rules.rule_c13, ([1.0, 10.0], [0.5, 1.5], [100, 400], 400, [0.1, 0.89]),
                    ([1.0, 9.99], [0.5, 1.5], [100, 400], 400, [0.1, 0.89])),
    "c13_alpha_1": (rules.rule_c13, ([1.0, 10.0], [0.5, 1.0001], [100, 400], 400, [0.1, 0.89]),
                    ([1.0, 10.0], [0.5, 1.0], [100, 400], 400, [0.1, 0.89])),
    "c13_after_switch": (rules.rule_c13, ([1.0, 10.0], [0.5, 1.5], [100, 400], 400, [0.1, 0.89]),
                         ([1.0, 10.0], [0.5, 1.5], [100, 399], 400, [0.1, 0.89])),
    "c13_u1_0.9": (rules.rule_c13, ([1.0, 10.0], [0.5, 1.5], [100, 400], 400, [0.1, 0.8999]),
                   ([1.0, 10.0], [0.5, 1.5], [100, 400], 400, [0.1, 0.9])),
    "c15_95": (rules.rule_c15, ({"A": 60.0, "B": 95.0, "C": 95.0}, {"A": 2, "B": 1, "C": 1}, {"A": 1.5, "B": 2.5}),
               ({"A": 60.0, "B": 95.0, "C": 94.99}, {"A": 2, "B": 1, "C": 1}, {"A": 1.5, "B": 2.5})),
    "c15_k95_A": (rules.rule_c15, ({"A": 60.0, "B": 95.0, "C": 95.0}, {"A": 2, "B": 1, "C": 1}, {"A": 1.5, "B": 2.5}),
                  ({"A": 60.0, "B": 95.0, "C": 95.0}, {"A": 1, "B": 1, "C": 1}, {"A": 1.5, "B": 2.5})),
    "c15_1nat": (rules.rule_c15, ({"A": 60.0, "B": 95.0, "C": 95.0}, {"A": 2, "B": 1, "C": 1}, {"A": 1.5, "B": 2.5}),
                 ({"A": 60.0, "B": 95.0, "C": 95.0}, {"A": 2, "B": 1, "C": 1}, {"A": 1.5, "B": 2.4999})),
    "c16_95": (rules.rule_c16, ([(95.0, 1)], 2.0, 20.0), ([(94.99, 1)], 2.0, 20.0)),
    "c16_0.1x": (rules.rule_c16, ([(95.0, 1)], 2.0, 20.0), ([(95.0, 1)], 2.0001, 20.0)),
    "c17_tol": (rules.rule_c17, ([70.0, 71.0, 68.5], [0.5, 0.52, 0.47], 10.0, False),
                ([70.0, 71.0001, 68.5], [0.5, 0.52, 0.47], 10.0, False)),
    "c17_net_fall": (rules.rule_c17, ([70.0, 68.9999], [0.5, 0.47], 10.0, False),
                     ([70.0, 69.0], [0.5, 0.47], 10.0, False)),
    "c17_p_tol": (rules.rule_c17, ([70.0, 71.0, 68.5], [0.5, 0.52, 0.47], 10.0, False),
                  ([70.0, 71.0, 68.5], [0.5, 0.5201, 0.47], 10.0, False)),
    "c17_blowup_10": (rules.rule_c17, ([70.0, 68.5], [0.5, 0.47], 10.0, False), ([70.0, 68.5], [0.5, 0.47], 9.99, False)),
    "c20_reentry": (rules.rule_c20, (0.25, [0.3], [0.25], [0.1], [0.2]), (0.25, [0.2999], [0.2499], [0.1], [0.2])),
    "c20_decay": (rules.rule_c20, (0.25, [0.3], [0.25], [0.1], [0.2]), (0.25, [0.3], [0.2501], [0.1], [0.2])),
    "c20_a_below_r": (rules.rule_c20, (0.25, [0.3], [0.25], [0.1999], [0.2]), (0.25, [0.3], [0.25], [0.2], [0.2])),
    "c21_0.25": (rules.rule_c21, ([0.1, 0.25],), ([0.1, 0.2501],)),
    "c22_2pp": (rules.rule_c22, ({"s42": [70.0, 80.0], "s271": [72.0, 79.0]},),
                ({"s42": [70.0, 80.0], "s271": [72.01, 79.0]},)),
}


@pytest.mark.parametrize("case", sorted(RULE_CASES) + sorted(BOUNDARY_CASES))
def test_decision_rule_holds_and_fails(case):
    rule, held_args, failed_args = {**RULE_CASES, **BOUNDARY_CASES}[case]
    assert rule(*held_args) == True and not rule(*failed_args)  # noqa: E712 (numpy bools)


def test_val_loss_falls_by_spearman_and_last_below_first():
    steps = [1, 2, 3, 4, 5]
    assert rules.val_falls(steps, [5, 4, 2, 3, 1])          # squared rank differences 38: Spearman -0.9 <= -0.8
    assert not rules.val_falls(steps, [5, 3, 2, 4, 1])      # 34: Spearman -0.7
    falling = list(range(40, 1, -1))                          # 40 evals: one rise at the end keeps Spearman at
    assert rules.val_falls(range(40), falling + [1])          # -0.854, but the last loss is then above the first
    assert not rules.val_falls(range(40), falling + [41])


def test_c22_needs_two_seeds():
    assert not rules.rule_c22({"s42": [71.4, 79.1]})


def test_falls_needs_a_net_fall():
    assert rules.falls([68.8, 68.3, 66.7, 63.8, 52.5], 1.0)
    assert rules.falls([68.8, 69.5, 66.7], 1.0)            # a rise within the tolerance is allowed
    assert not rules.falls([93.9, 93.9, 94.1, 94.2], 1.0)  # flat: no net fall
    assert not rules.falls([68.8, 70.5, 60.0], 1.0)        # a rise beyond the tolerance


def test_oscillation_drop_must_beat_sampling_noise():
    p = [0.0, 0.1, 0.5, 0.55, 0.45, 0.5, 0.52, 0.5, 0.51, 0.5, 0.5]  # 0.55 -> 0.45 on 20 examples: noise
    assert rules.oscillation_drops(p, 20) == []
    assert rules.oscillation_drops(p, 100_000) == pytest.approx([0.1])


# PROTOCOL section 6, claim by claim: its tag, a paper value quoted there, and the thresholds its pre-declared rule
# must state (the numbers of rules.THRESHOLDS, as written when the rules were fixed).
CLAIM_SPEC = {
    "C1": ("Q+S", "0.40-0.78", ("prominence rule (0.03)", "3 binomial std", "Spearman(step, val) <= -0.8")),
    "C2": ("Q+S", "78-81%", ("PC1 >= 0.5 in every block",)),
    "C3": ("Q+S", "71.4/71.7%", ("raw PC1 > row-normalized PC1", "PC1 >= 3 x PC2")),
    "C4": ("S", "0.997-0.998", ("|cos| >= 0.99 in every block",)),
    "C5": ("S", "68-72%", ("last checkpoint >= 0.5",)),
    "C6": ("Q+S", "0.749/0.702", ("[switch, switch + 0.2 T]",)),
    "C7": ("Q+S", "0.323", ("late PC1 > early PC1", "N3 band")),
    "C8": ("Q+S", ".83 .61 .02", ("(switch, switch + 0.2 T]",)),
    "C9": ("Q+S", "+2.07", ("> 1 with R^2 >= 0.8", "up to +0.1")),
    "C10": ("Q+S", "+0.61/+0.45", ("(0, 0.4T] > 0", "(0.6T, T] < 0")),
    "C11": ("Q+S", "5100", ("at or after the switch",)),
    "C12": ("Q+S", "4e-4", (">= 10 x mean |cos(g, v_b)|", "<= 5 x sqrt(2/(pi D))")),
    "C13": ("Q+S", "2.4e-6", ("q_b(first) >= 10", "max alpha > 1", "< 0.9 at every checkpoint")),
    "C14": ("S", "68.1 / 68.4 / 66.3 / 63.4 / 51.6", ("above +1 point", "net fall of more than 1 point")),
    "C15": ("Q+S", "A 61.5% k95 9", ("PC1 >= 95% with k95 = 1", "k95 >= 2", "final val(A) + 1")),
    "C16": ("Q+S", "drift 0.26", ("PC1 >= 95% with k95 = 1", "<= 0.1 x")),
    "C17": ("Q+S", "68.8 / 68.3 / 66.7 / 63.8 / 52.5", ("+1 point (PC1)", "+0.02 (p_ood)", ">= 10 x drift(0.95)")),
    "C18": ("Q+S", "1.97 / 1.94 / 1.93 / 1.98 / 2.45", ("> 1 with R^2 >= 0.8",)),
    "C19": ("Q+S", ".368 / .363 / .343 / .328 / .269", ("above +0.01", "larger than 0.01")),
    "C20": ("Q+S", ".782 @1000", ("peak >= start + 0.05", "end <= peak - 0.05")),
    "C21": ("Q+S", ".20-.25", ("c^2 <= 0.25",)),
    "C22": ("S", "1-2%", ("<= 2 points",)),
}


def test_every_claim_has_its_protocol_tag_paper_value_thresholds_and_reader():
    from drift.report import readers
    assert [c.id for c in cl.CLAIMS] == list(CLAIM_SPEC)
    for c in cl.CLAIMS:
        kind, paper, thresholds = CLAIM_SPEC[c.id]
        assert c.kind == kind and paper in c.paper, c.id
        assert all(t in c.test for t in thresholds), (c.id, c.test)
        assert c.read is getattr(readers, f"read_{c.id.lower()}"), c.id      # each claim read by its own reader


# ---------------------------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------------------------

def test_spread_reads_like_the_paper_for_two_seeds_and_mean_half_range_beyond():
    assert latex.spread([71.4, 71.7], 3) == "71.4 / 71.7"
    assert latex.spread([1.0, 2.0, 3.0], 3) == r"2 $\pm$ 1"
    assert latex.spread([None, 0.5]) == "n/a / 0.5"


def test_numbers_and_text_are_latex_safe():
    assert latex.num(None) == "n/a" and latex.num(float("nan")) == "n/a"
    assert latex.num(2.4e-6) == r"$2.4\times10^{-6}$"
    assert latex.num(211694.0) == r"$2.12\times10^{5}$"
    assert latex.num(113.7) == "113.7"
    # "_" and "/" allow a line break after them (long statistic names and paths overflowed table cells)
    assert latex.esc("k95 & 50% of d_model #1") == r"k95 \& 50\% of d\_\allowbreak{}model \#1"
    assert latex.esc("a/b") == r"a/\allowbreak{}b"


def test_infer_preset_names_the_preset_and_lists_overrides():
    assert table_cells.infer_preset(resolve("cpu", 42)) == "cpu"
    assert table_cells.infer_preset(resolve("cpu", 271, ["total_steps=500"])) == "cpu + total_steps=500"


# ---------------------------------------------------------------------------------------------------------------
# Claim readers, tables and figures on crafted JSON (layouts as drift.analysis.control_tables writes them)
# ---------------------------------------------------------------------------------------------------------------

def _curve(steps, p):
    return {"step": list(steps), "p_ood": list(p), "val_loss": list(np.linspace(8, 3, len(steps)))}


def crafted_reheat(transient: bool = True) -> dict:
    steps = [0, 10, 20, 30, 40]
    rows = []
    for lr, peak in ((1e-3, 0.7), (6e-4, 0.78), (3e-4, 0.58)):
        p = [0.16, peak * 0.8, peak, peak * 0.6 if transient else peak, peak * 0.4 if transient else peak]
        rows.append({"lr": lr, "name": f"lr{lr:g}", "status": "finished", "peak": peak, "peak_step": 20,
                     "first_above": 20 if peak >= 0.6 else None, "end": p[-1], "end_step": 40, "step1": 0.16,
                     "coords": {"step": steps, "a": [10.0, 10.05, 10.1, 10.1, 10.12],
                                "residual_norm": [3.0, 3.3, 3.6, 3.5, 3.4]},
                     "curves": _curve(steps, p)})
    return {"main_run": "runs/cpu_s42", "main_last_step": 1000, "start_p_ood": 0.16, "paper_start_p_ood": 0.16,
            "main_curve": _curve(range(0, 1001, 20), 0.4 + 0.3 * np.sin(np.arange(51) / 4)), "rows": rows}


def crafted_beta2(monotone: bool = True) -> dict:
    rows = []
    pc1 = [68.8, 68.3, 66.7, 63.8, 52.5] if monotone else [63.8, 68.3, 66.7, 68.8, 52.5]
    for b, p, best, early in zip((0.99, 0.95, 0.9, 0.8, 0.0), pc1, (0.95, 0.94, 0.81, 0.68, 0.005),
                                 (0.37, 0.36, 0.34, 0.33, 0.27)):
        rows.append({"name": f"b{b}", "beta2": b, "p_probe": 0.1, "status": "finished", "marker": "", "pc1": p,
                     "pc2": 10.0, "raw_pc1": p + 14, "drift": 1.6e5 if b == 0 else 120.0, "best_p_ood": best,
                     "pc1_common": p, "drift_common": 1.6e5 if b == 0 else 120.0, "common_last_step": 400,
                     "mean_abs_cos": 0.24, "early_abs_cos": early, "early_corr": 0.8, "window_pc1": p - 0.5,
                     "window_abs_cos": 0.22, "gamma_a": [{"gamma": 1.95, "r2": 0.99, "lo": 0, "hi": 200}],
                     "curves": _curve(range(0, 401, 20), np.linspace(0, best, 21))})
    return {"rows": rows}


def crafted_controls() -> tuple[dict, dict]:
    table4 = {"rows": [], "curves": {}}
    for run, pc1, k95, val in (("A", 61.5, 9, 1.6), ("B", 100.0, 1, 8.1), ("C", 99.9, 1, 5.1)):
        table4["rows"].append({"run": run, "optimizer": run, "status": "finished", "marker": "", "final_val": val,
                               "best_p_ood": 0.4 if run == "A" else 0.0, "pc1": pc1, "k95": k95, "k99": k95 + 1,
                               "drift": 100.0, "window": [60, 200]})
        table4["curves"][run] = _curve(range(0, 401, 20), np.zeros(21))

    def window(label, pc1, k95, drift, kind="paper"):
        return {"window": label, "kind": kind, "steps": [1, 2, 3], "missing": [],
                "paper": {"pc1": 98.1} if kind == "paper" else None,
                "geometry": {"window_steps": [1, 2, 3], "pc1": pc1, "k95": k95, "k99": 2, "drift": drift}}
    matched = {"target": 5.1, "rel_tol": 0.02, "rows": [
        {"run": "A", "optimizer": "AdamW", "match": {"step": 20, "val_loss": 4.3, "within_tol": False},
         "windows": [window("[1,200,400,600]", 69.2, 3, 24.9), window("centred +-20", 75.0, 2, 12.0, "centred"),
                     window("centred +-40", 70.0, 3, 24.9, "centred")]},
        {"run": "C", "optimizer": "SGD+momentum", "match": {"step": 400, "val_loss": 5.1, "within_tol": True},
         "windows": [window("[2000,2200,2400]", 98.1, 1, 0.26), window("[1800..2600]", 97.7, 1, 0.6),
                     window("centred +-20", 98.1, 1, 0.26, "centred"),
                     window("centred +-40", 97.7, 1, 0.6, "centred")]}]}
    return table4, matched


def crafted_evidence(good: bool = True) -> inp.Evidence:
    cfg = resolve("cpu", 42)
    steps = list(range(0, 1001, 20))
    p = 0.5 + 0.3 * np.sin(np.arange(len(steps)) / 3) if good else np.zeros(len(steps))
    metrics = [{"step": s, "p_ood": float(v), "val_loss": float(8 - 5 * i / len(steps))}
               for i, (s, v) in enumerate(zip(steps, p))]
    info = {"n_params": 1_300_000, "ckpt_steps": steps, "device": "cpu", "timers": {"compute": 400.0}}
    run = inp.RunEvidence(run_dir=Path("runs/cpu_s42"), info=info, config=cfg, steps=steps, metrics=metrics,
                         analyses={"reheat": crafted_reheat(good)})
    table4, matched = crafted_controls()
    if not good:
        table4["rows"][2]["pc1"], table4["rows"][2]["k95"] = 80.0, 3
    return inp.Evidence([run], Path("runs/ctrl_s42"), Path("runs/beta2_s42"),
                       {"sgd_control": table4, "sgd_matched_valloss": matched}, crafted_beta2(good))


def _verdicts(ev):
    return {r["id"]: r for r in cl.evaluate_claims(ev)}


def test_claim_readers_give_the_planted_verdicts():
    good, bad = _verdicts(crafted_evidence(True)), _verdicts(crafted_evidence(False))
    for cid in ("C1", "C14", "C15", "C16", "C17", "C18", "C19", "C20"):
        assert good[cid]["verdict"] == rd.HELD, (cid, good[cid])
    for cid in ("C1", "C14", "C15", "C17", "C20"):
        assert bad[cid]["verdict"] == rd.NOT_HELD, (cid, bad[cid])
    assert "0.99 / 0.95 / 0.9 / 0.8 / 0" in good["C17"]["ours"]


def test_c16_reads_the_centred_windows_and_c17_the_common_span():
    ev = crafted_evidence(True)
    c_row = ev.controls["sgd_matched_valloss"]["rows"][1]
    c_row["windows"][0]["geometry"]["pc1"] = 60.0            # a paper-step window off the matched loss: ignored
    assert _verdicts(ev)["C16"]["verdict"] == rd.HELD
    c_row["windows"][3]["geometry"]["k95"] = 3                # the wide centred window is not collinear
    assert _verdicts(ev)["C16"]["verdict"] == rd.NOT_HELD
    ev = crafted_evidence(True)
    for r in ev.beta2["rows"]:
        r["pc1_common"] = 68.0                                # equal spans: no fall, whatever the full spans say
    assert _verdicts(ev)["C17"]["verdict"] == rd.NOT_HELD


def test_missing_analyses_are_not_measured_with_the_script_to_run():
    rows = _verdicts(crafted_evidence(True))
    for cid in ("C2", "C11", "C12", "C13"):
        assert rows[cid]["verdict"] == rd.NOT_MEASURED
    assert "backbone_update_analysis.py runs/cpu_s42" in rows["C11"]["reason"]
    assert "backbone_fisher_analysis.py" in rows["C13"]["reason"]
    empty = _verdicts(inp.Evidence([]))
    assert {r["verdict"] for r in empty.values()} == {rd.NOT_MEASURED}
    why = {cid: "no main run given" for cid in empty} | {"C22": "needs at least two seeds"}
    why |= {f"C{i}": "beta2 sweep not given (run `python beta2_sweep.py" for i in (14, 17, 18, 19)}
    why |= {f"C{i}": "optimizer controls not given (train them with `python sgd_control.py" for i in (15, 16)}
    assert all(empty[cid]["reason"].startswith(w) for cid, w in why.items()), empty


def test_two_seeds_must_both_hold():
    ev = crafted_evidence(True)
    second = copy.deepcopy(ev.runs[0])
    second.config.train.seed = 271
    second.analyses["reheat"] = crafted_reheat(False)
    ev.runs.append(second)
    row = _verdicts(ev)["C20"]
    assert row["verdict"] == rd.NOT_HELD and "s271" in row["reason"] and row["ours"].startswith("s42:")


def test_tables_on_crafted_json_show_paper_beside_ours(tmp_path):
    paths, rows = rp.write_report(crafted_evidence(True), tmp_path)
    names = {p.stem for p in paths}
    assert set(rp.TABLES) | {"claims", "macros"} <= names
    t4 = (tmp_path / "table4.tex").read_text()
    assert r"61.5 {\color{gray}(61.5)}" in t4 and r"\begin{table}" in t4
    assert "not run" in (tmp_path / "fisher.tex").read_text()
    assert r"{\color{gray}(0.782)}" in (tmp_path / "reheat.tex").read_text()
    beta2 = (tmp_path / "beta2.tex").read_text()
    assert r"68.8 {\color{gray}(68.8)}" in beta2
    macros = (tmp_path / "macros.tex").read_text()
    assert r"\newcommand{\RunPreset}{cpu}" in macros and r"\newcommand{\NClaims}{22}" in macros
    # one checklist row per claim, "Cn [tag] & ...", whose verdict cell is the planted verdict
    lines = {line.split(" [")[0]: line for line in (tmp_path / "claims.tex").read_text().splitlines()
             if re.match(r"C\d+ \[", line)}
    assert list(lines) == [c.id for c in cl.CLAIMS] and lines["C22"].startswith("C22 [S] &")
    for cid, mark in (("C1", r"& \textbf{held} &"), ("C17", r"& \textbf{held} &"), ("C2", r"& \emph{not measured} &")):
        assert mark in lines[cid], (cid, lines[cid])
    rp.write_report(crafted_evidence(False), tmp_path / "bad")
    bad = (tmp_path / "bad" / "claims.tex").read_text()
    assert r"& \textbf{not held} &" in next(line for line in bad.splitlines() if line.startswith("C15 ["))


def test_optional_figures_draw_from_crafted_json():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from drift.report.figures import FIGURES
    ev = crafted_evidence(True)
    labels = {}
    for key in ("fig4", "beta2", "sgd"):
        fig = FIGURES[key].draw(ev)
        FigureCanvasAgg(fig).draw()  # lays out every artist, as saving would
        labels[key] = [[l.get_label() for l in ax.get_lines() if not l.get_label().startswith("_")] for ax in fig.axes]
    # one curve per crafted run: the training run and the three reheating LRs; A, B, C; the five beta2 runs
    assert labels["fig4"][0] == ["training", "reheat lr 0.001", "reheat lr 0.0006", "reheat lr 0.0003"]
    assert labels["sgd"][0] == ["A", "B", "C"]
    assert labels["beta2"][2] == [f"beta2 {b} (p_probe 0.1)" for b in ("0.99", "0.95", "0.9", "0.8", "0")]
    stars = [l for ax in FIGURES["fig4"].draw(ev).axes for l in ax.get_lines() if l.get_marker() == "*"]
    assert len(stars) == 3  # one peak per reheating LR



def test_beta2_figure_shares_one_decreasing_beta2_axis_across_p_probe_groups():
    from drift.report.figures import FIGURES
    ev = crafted_evidence(True)
    pair = [dict(r, p_probe=0.05, name=r["name"] + "_p0.05") for r in ev.beta2["rows"] if r["beta2"] in (0.95, 0.0)]
    ev.beta2["rows"] = pair + ev.beta2["rows"]            # the pair first, as its runs sort before the sweep
    ax_g = FIGURES["beta2"].draw(ev).axes[0]
    assert [t.get_text() for t in ax_g.get_xticklabels()] == ["0.99", "0.95", "0.9", "0.8", "0"]
    pair_pc1 = next(l for l in ax_g.get_lines() if l.get_label() == "row-norm PC1 (p_probe 0.05)")
    assert list(pair_pc1.get_xdata()) == [1, 4]               # 0.95 and 0 sit where the full sweep puts them

# ---------------------------------------------------------------------------------------------------------------
# End to end on a copy of the tiny run
# ---------------------------------------------------------------------------------------------------------------

def analyse(run_dir: Path) -> None:
    """The trajectory and mechanism analyses, cut to a few checkpoints and batches so they take seconds."""
    import backbone_fisher_analysis
    import backbone_gradient_analysis
    import backbone_update_analysis
    import trajectory_pca_uncentered
    assert trajectory_pca_uncentered.main([str(run_dir), "--no-figures"]) == 0
    assert backbone_update_analysis.main([str(run_dir)]) == 0
    assert backbone_gradient_analysis.main([str(run_dir), "--steps", "1", "30", "--n-batches", "2",
                                            "--n-random", "4", "--no-progress"]) == 0
    assert backbone_fisher_analysis.main([str(run_dir), "--steps", "5", "30", "--m", "4", "--k", "2",
                                          "--no-progress"]) == 0


def test_pipeline_on_the_tiny_run(tiny_run_copy, tmp_path, capsys):
    import make_paper_figures
    import make_report
    analyse(tiny_run_copy)
    figs = tmp_path / "figures"
    figs.mkdir()
    for ext in (".pdf", ".png"):  # an earlier build's reheating figure, from runs that are not these
        (figs / f"fig4_reheat{ext}").write_bytes(b"stale")
    assert make_paper_figures.main(["--runs", str(tiny_run_copy), "--out", str(figs)]) == 0
    out = capsys.readouterr().out
    assert not list(figs.glob("fig4_reheat.*")) and "removed" in out
    for name in ("fig1_backbone_residual", "fig2_alignment", "fig3_fisher"):
        for ext, magic in ((".pdf", b"%PDF-"), (".png", b"\x89PNG\r\n\x1a\n")):
            assert (figs / f"{name}{ext}").read_bytes().startswith(magic), name + ext
    assert "skipped fig4_reheat" in out  # optional experiment not run: a note, not a failure

    gen = tmp_path / "generated"
    assert make_report.main(["--runs", str(tiny_run_copy), "--out", str(gen), "--quiet"]) == 0
    for name in list(rp.TABLES) + ["claims"]:
        assert re.search(r"\\begin\{(long)?table\}", (gen / f"{name}.tex").read_text()), name
    assert r"\newcommand{\NClaims}{22}" in (gen / "macros.tex").read_text()
    assert "not run" in (gen / "table4.tex").read_text()          # no controls given
    blocks = (gen / "table2_blocks.tex").read_text()
    assert "80.5 / 78.6" in blocks and "not run" not in blocks       # paper beside ours, from the JSON

    ev = inp.load_evidence([tiny_run_copy])
    _tiny_run_verdicts(ev)
    _planted_verdicts(ev)


# Why each claim cannot be measured on one 30-step tiny run (6 drift rows, W = 10 windows, p_ood flat at 0, no
# nulls, controls, sweep, reheating or second seed): a phrase of the reason each must give.
TINY_NOT_MEASURED = {
    "C4": "fewer than 11 drift rows", "C6": "fewer than 11 checkpoints", "C7": "nulls.json absent",
    "C8": "no rolling windows", "C9": "fewer than 3 checkpoints", "C10": "correlation undefined",
    "C14": "beta2 sweep not given", "C15": "optimizer controls not given", "C16": "optimizer controls not given",
    "C17": "beta2 sweep not given", "C18": "beta2 sweep not given", "C19": "beta2 sweep not given",
    "C20": "reheat.json absent", "C21": "no p_ood peak", "C22": "needs at least two seeds"}


def _tiny_run_verdicts(ev: inp.Evidence) -> None:
    """The tiny run's verdicts: the claims it cannot measure say why, and each measured verdict is the one the
    pre-declared rule gives on the numbers in its JSON (thresholds written out here, as in PROTOCOL section 6)."""
    rows = _verdicts(ev)
    assert list(rows) == [f"C{i}" for i in range(1, 23)]
    for cid, why in TINY_NOT_MEASURED.items():
        assert rows[cid]["verdict"] == rd.NOT_MEASURED and why in rows[cid]["reason"], (cid, rows[cid])
    run = ev.runs[0]
    traj, upd = run.results("trajectory_pca"), run.results("update_alignment")
    grad, fis = run.results("gradient_alignment")["summary"], run.results("fisher")
    t, u = traj["trunk"], upd["scopes"]["block0+ln"]["raw"]["consecutive_summary"]
    p_ood = [m["p_ood"] for m in run.metrics if "p_ood" in m]
    floor = run.results("gradient_alignment")["floors"]["abs_cos_mean_asymptotic"]
    q, alpha = fis["summary"]["q_b"], fis["summary"]["alpha"]
    flip = u["flip_end_step"]
    expected = {
        "C1": max(p_ood) - min(p_ood) >= 0.03,     # no drop can pass the 0.03 prominence rule otherwise
        "C2": all(x >= 0.5 for x in traj["blocks"]["pc1"]["block"]),
        "C3": t["pc1_raw_full"] > t["pc1_rownorm_full"] >= 3 * t["pc2_rownorm_full"],
        "C5": t["f_b_final"] >= 0.5,
        "C11": flip is not None and flip >= 12 and u["mean_abs_cos_after_flip"] < u["mean_abs_cos_before_flip"],
        "C12": (grad["update_mean_abs_cos"] >= 10 * grad["grad_mean_abs_cos"]
                and grad["grad_mean_abs_cos"] <= 5 * floor),
        "C13": (q[-1] / q[0] >= 10 and max(alpha) > 1 and fis["summary"]["steps"][int(np.argmax(alpha))] >= 12
                and max(fis["summary"]["u1_overlap_v_b"]) < 0.9)}
    assert {cid: r["verdict"] for cid, r in rows.items() if cid not in TINY_NOT_MEASURED} == \
        {cid: rd.HELD if held else rd.NOT_HELD for cid, held in expected.items()}


def _planted_verdicts(ev: inp.Evidence) -> None:
    """The same JSON with one number moved onto, then just across, a claim's threshold: the verdict follows."""
    def verdict(cid: str, **edits) -> str:
        planted = copy.deepcopy(ev)
        res = planted.runs[0].analyses
        for path, value in edits.items():            # "trajectory_pca__trunk__f_b_final" = res[...][...][...]
            *keys, last = path.split("__")
            node = res
            for k in keys:
                node = node[k]
            node[last] = value
        return _verdicts(planted)[cid]["verdict"]

    f_b, pc = "trajectory_pca__trunk__f_b_final", "trajectory_pca__trunk__pc1_"
    assert (verdict("C5", **{f_b: 0.5}), verdict("C5", **{f_b: 0.4999})) == (rd.HELD, rd.NOT_HELD)
    c3 = {pc + "rownorm_full": 0.375, "trajectory_pca__trunk__pc2_rownorm_full": 0.125, pc + "raw_full": 0.5}
    assert verdict("C3", **c3) == rd.HELD
    assert verdict("C3", **{**c3, "trajectory_pca__trunk__pc2_rownorm_full": 0.1250001}) == rd.NOT_HELD
    assert verdict("C3", **{**c3, pc + "raw_full": 0.375}) == rd.NOT_HELD
    assert verdict("C2", trajectory_pca__blocks__pc1={"block": [0.5, 0.9], "block+ln": [0.1, 0.1]}) == rd.HELD
    assert verdict("C2", trajectory_pca__blocks__pc1={"block": [0.4999, 0.9], "block+ln": [0.9, 0.9]}) == rd.NOT_HELD
    s = "gradient_alignment__summary__"
    floor = ev.runs[0].results("gradient_alignment")["floors"]["abs_cos_mean_asymptotic"]
    g = 5 * floor                                   # the gradient exactly at 5x the sqrt(2/(pi D)) floor
    c12 = {s + "grad_mean_abs_cos": g, s + "update_mean_abs_cos": 10 * g}
    assert verdict("C12", **c12) == rd.HELD
    assert verdict("C12", **{**c12, s + "update_mean_abs_cos": 10 * g * (1 - 1e-12)}) == rd.NOT_HELD
    assert verdict("C12", **{s + "grad_mean_abs_cos": g * (1 + 1e-12), s + "update_mean_abs_cos": 20 * g}) == \
        rd.NOT_HELD
    u = "update_alignment__scopes__block0+ln__raw__consecutive_summary__"
    c11 = {u + "flip_end_step": 12.0, u + "mean_abs_cos_before_flip": 0.3, u + "mean_abs_cos_after_flip": 0.1}
    assert verdict("C11", **c11) == rd.HELD                                   # the switch is at step 12
    assert verdict("C11", **{**c11, u + "flip_end_step": 11.0}) == rd.NOT_HELD
    f = "fisher__summary__"
    c13 = {f + "q_b": [1.0, 10.0], f + "alpha": [0.5, 1.5], f + "steps": [5, 30], f + "u1_overlap_v_b": [0.1, 0.5]}
    assert verdict("C13", **c13) == rd.HELD
    assert verdict("C13", **{**c13, f + "q_b": [1.0, 9.99]}) == rd.NOT_HELD


def test_missing_analysis_names_the_script_and_exits_2(tiny_run, tmp_path, capsys):
    import make_paper_figures
    assert make_paper_figures.main(["--runs", str(tiny_run), "--out", str(tmp_path), "--only", "fig1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "python trajectory_pca_uncentered.py" in err
    assert not list(tmp_path.iterdir())
    assert make_paper_figures.main(["--runs", "--out", str(tmp_path)]) == 2  # an empty run list: no defaults
    assert "no main run given" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["make_paper_figures", "make_report"])
def test_scripts_have_help(script, capsys):
    module = __import__(script)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0 and "Examples:" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed")
def test_pdf_builds_from_a_tiny_run(tiny_run_copy, tmp_path):
    import make_paper_figures
    import make_report
    analyse(tiny_run_copy)
    paper = tmp_path / "paper"
    paper.mkdir()
    shutil.copy(ROOT / "paper" / "paper_backbone.tex", paper)
    assert make_paper_figures.main(["--runs", str(tiny_run_copy), "--out", str(paper / "figures")]) == 0
    assert make_report.main(["--runs", str(tiny_run_copy), "--out", str(paper / "generated"), "--quiet"]) == 0
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-outdir=paper/build",
           "paper/paper_backbone.tex"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (paper / "build" / "paper_backbone.pdf").stat().st_size > 20_000


def test_default_inputs_pair_controls_only_with_the_same_model(tmp_path):
    import json

    def fake_run(path: Path, preset: str):
        path.mkdir(parents=True)
        (path / "run.json").write_text(json.dumps({"config": resolve(preset, 42).to_dict()}))
    fake_run(tmp_path / "runs/cpu_s42", "cpu")
    fake_run(tmp_path / "runs/ctrl_s42/A", "cpu")
    fake_run(tmp_path / "runs/beta2_s42/b0.9", "tiny")
    runs, controls, beta2 = inp.default_inputs(root=tmp_path)
    assert runs == [tmp_path / "runs/cpu_s42"] and controls == tmp_path / "runs/ctrl_s42" and beta2 is None
    assert inp.default_inputs(root=tmp_path / "nothing_here") == ([], None, None)
