"""Seed-level null tests and the diagnostic check (drift/verdicts.py), on planted answers."""
import math

import numpy as np
import pytest
from scipy.stats import ttest_1samp

from drift.report import readers, rules
from drift.report import verdicts as V


def test_seed_test_planted_effect_is_beyond():
    m = np.array([0.880, 0.885, 0.890, 0.882, 0.887])
    x = m + np.array([0.010, 0.012, 0.009, 0.011, 0.010])
    r = V.seed_test(x, m, "high")
    assert r["verdict"] == V.BEYOND and r["all_on_side"] and r["n"] == 5
    assert r["mean_diff"] == pytest.approx(0.0104)
    assert r["effect"] == pytest.approx(0.0104 / np.std(x, ddof=1))
    ref = ttest_1samp(x - m, 0.0, alternative="greater")
    assert r["t"] == pytest.approx(ref.statistic) and r["p"] == pytest.approx(ref.pvalue)


def test_seed_test_no_effect_is_within_and_sides_flip():
    m = np.full(5, 0.5)
    x = m + np.array([0.01, -0.012, 0.008, -0.009, 0.002])
    assert V.seed_test(x, m, "high")["verdict"] == V.WITHIN
    low = V.seed_test(m - 0.02 - np.arange(5) * 1e-3, m, "low")  # below the null on the predicted low side
    assert low["verdict"] == V.BEYOND and low["mean_diff"] > 0
    assert V.seed_test(m - 0.02 - np.arange(5) * 1e-3, m, "high")["verdict"] == V.WITHIN


def test_seed_test_needs_every_seed_on_the_predicted_side():
    m = np.zeros(6)
    x = np.array([0.5, 0.6, 0.55, 0.52, 0.58, -0.001])  # t-test alone passes (p ~ 0.001), one seed is below
    r = V.seed_test(x, m, "high")
    assert r["p"] < 0.01 and not r["all_on_side"] and r["verdict"] == V.WITHIN


def test_one_seed_has_no_test_and_nonfinite_seeds_drop():
    assert V.seed_test([0.9], [0.8], "high")["verdict"] == V.ONE_SEED
    r = V.seed_test([0.9, math.nan, 0.91], [0.8, 0.8, math.nan], "high")
    assert r["n"] == 1 and r["n_dropped"] == 2 and r["verdict"] == V.ONE_SEED
    with pytest.raises(ValueError, match="side"):
        V.seed_test([1, 2], [0, 0], "up")


def test_seed_verdict_lists_the_nulls_passed():
    b, w = {"verdict": V.BEYOND}, {"verdict": V.WITHIN}
    assert V.seed_verdict({"N1": b, "N2": w, "N3": b}) == "beyond N1, N3"
    assert V.seed_verdict({"N1": w, "N2": w}) == "within every null"
    assert V.seed_verdict({"N1": {"verdict": V.ONE_SEED}}) == V.ONE_SEED


def _ctx():
    return {"switch": 400, "total": 1000, "layers": [0, 1], "c9_windows": readers.C9_WINDOWS, "n3_abs_cos_lo": 0.3}


def test_rule_pass_rate_counts_the_draws_where_the_rule_holds():
    # C5: f_b final >= 0.5 in 3 of 10 draws; C4 reads the minimum over blocks; C21 the maximum
    draws = {"trunk_f_b_final": [0.6, 0.7, 0.55] + [0.4] * 7}
    assert V.rule_pass_rate("C5", draws, _ctx(), rules) == {"rate": 0.3, "n": 10}
    assert V.rule_pass_rate("C4", {"blocks_adjacent_cos_min": [0.995, 0.98, 0.999, 0.5]}, _ctx(),
                            rules)["rate"] == 0.5
    assert V.rule_pass_rate("C21", {"switch_c2_blocks_max": [0.1, 0.3, math.nan, 0.2]}, _ctx(), rules)["rate"] == 0.5
    # C6: the argmin of rho inside [switch, switch + 0.2 T] = [400, 600]
    assert V.rule_pass_rate("C6", {"rho_argmin_step": [400, 600, 601, 399, math.nan]}, _ctx(), rules)["rate"] == 0.4


def test_c11_on_a_draw_uses_after_below_the_overall_mean():
    s = {"update_block0+ln_flip_step": [450, 450, 300, math.nan],
         "update_block0+ln_mean_abs_cos": [0.2, 0.2, 0.2, 0.2],
         "update_block0+ln_abs_cos_after_flip": [0.1, 0.3, 0.1, 0.1]}
    # held only in draw 0: draw 1 is stronger after, draw 2 flips before the switch, draw 3 never flips
    assert V.rule_pass_rate("C11", s, _ctx(), rules)["rate"] == 0.25


def test_diagnostic_label_from_the_key_null():
    def results(n1_values):
        return {"draws": {"N1": {"trunk_f_b_final": n1_values}},
                "statistics": {"trunk_f_b_final": {"observed": 0.9, "N1": {"median": float(np.median(n1_values))}}}}
    lax = V.diagnostic("C5", results([0.9] * 20), _ctx(), rules)
    assert lax["diagnostic"] is False and lax["on_medians"]["N1"] is True and lax["pass_rate"]["N1"]["rate"] == 1.0
    sharp = V.diagnostic("C5", results([0.1] * 19 + [0.9]), _ctx(), rules)  # holds in 1 of 20 draws: 5%
    assert sharp["diagnostic"] is True and sharp["on_medians"]["N1"] is False
    edge = V.diagnostic("C5", results([0.1] * 18 + [0.9] * 2), _ctx(), rules)  # 10%
    assert edge["diagnostic"] is False


def test_sharp_rule_needs_the_old_rule_and_the_seed_test():
    beyond, within = {"verdict": V.BEYOND}, {"verdict": V.WITHIN}
    assert V.sharp_verdict(True, beyond) == "held"
    assert V.sharp_verdict(True, within) == "not held"
    assert V.sharp_verdict(False, beyond) == "not held"
    assert V.sharp_verdict(True, {"verdict": V.ONE_SEED}) == V.ONE_SEED
    assert V.sharp_verdict(None, beyond) == "not measured"
