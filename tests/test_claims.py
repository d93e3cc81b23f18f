"""Tests for the claims checklist (drift/report/claims.py, readers.py, rules.py): every decision rule on crafted
numbers (a case that holds, one that does not, and each threshold exactly), each claim's tag, paper value and stated
thresholds against PROTOCOL section 6, and the claim readers on crafted control / beta2 / reheating JSON with
planted outcomes.

Run: pytest tests/test_claims.py
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

from drift.report import claims as cl, inputs as inp, readers as rd
from drift.report import rules
from helpers.crafted import crafted_evidence, crafted_reheat, verdicts


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


def test_claim_readers_give_the_plantedverdicts():
    good, bad = verdicts(crafted_evidence(True)), verdicts(crafted_evidence(False))
    for cid in ("C1", "C14", "C15", "C16", "C17", "C18", "C19", "C20"):
        assert good[cid]["verdict"] == rd.HELD, (cid, good[cid])
    for cid in ("C1", "C14", "C15", "C17", "C20"):
        assert bad[cid]["verdict"] == rd.NOT_HELD, (cid, bad[cid])
    assert "0.99 / 0.95 / 0.9 / 0.8 / 0" in good["C17"]["ours"]


def test_c16_reads_the_centred_windows_and_c17_the_common_span():
    ev = crafted_evidence(True)
    c_row = ev.controls["sgd_matched_valloss"]["rows"][1]
    c_row["windows"][0]["geometry"]["pc1"] = 60.0            # a paper-step window off the matched loss: ignored
    assert verdicts(ev)["C16"]["verdict"] == rd.HELD
    c_row["windows"][3]["geometry"]["k95"] = 3                # the wide centred window is not collinear
    assert verdicts(ev)["C16"]["verdict"] == rd.NOT_HELD
    ev = crafted_evidence(True)
    for r in ev.beta2["rows"]:
        r["pc1_common"] = 68.0                                # equal spans: no fall, whatever the full spans say
    assert verdicts(ev)["C17"]["verdict"] == rd.NOT_HELD


def test_missing_analyses_are_not_measured_with_the_script_to_run():
    rows = verdicts(crafted_evidence(True))
    for cid in ("C2", "C11", "C12", "C13"):
        assert rows[cid]["verdict"] == rd.NOT_MEASURED
    assert "backbone_update_analysis.py runs/cpu_s42" in rows["C11"]["reason"]
    assert "backbone_fisher_analysis.py" in rows["C13"]["reason"]
    empty = verdicts(inp.Evidence([]))
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
    row = verdicts(ev)["C20"]
    assert row["verdict"] == rd.NOT_HELD and "s271" in row["reason"] and row["ours"].startswith("s42:")
