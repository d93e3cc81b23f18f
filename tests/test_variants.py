"""The de-confounded variants (drift/report/variants.py) on planted analysis JSON: each verdict follows its rule,
and a JSON written before the variant existed reads as not measured, saying what to rerun."""
import pytest

from drift.report import variants as VA


class Run:
    def __init__(self, label, **results):
        self.label, self._r = label, results

    def results(self, name):
        return self._r.get(name)

    def missing(self, name):
        return f"{name} absent"


class Ev:
    def __init__(self, runs=(), controls=None, beta2=None):
        self.runs, self._c, self.beta2 = list(runs), controls or {}, beta2

    def control(self, name):
        return self._c.get(name)

    def sets(self, kind):
        return [self]

    def missing_control(self, name):
        return f"{name} absent"

    def missing_beta2(self):
        return "no sweep"


def _horizon(u, g):
    return {"scope": "block0", "summary": {"update_mean_abs_cos": u, "summed_grad_mean_abs_cos": g,
                                           "update_over_summed_grad": u / g, "update_summed_grad_mean_abs_cos": 0.3,
                                           "n_intervals": 11}}


def test_c12_equal_horizon_needs_the_factor_in_every_seed():
    held = Ev([Run("s1", gradient_horizon=_horizon(0.5, 0.04)), Run("s2", gradient_horizon=_horizon(0.4, 0.039))])
    assert VA.read_c12_horizon(held).verdict == "held"
    one_short = Ev([Run("s1", gradient_horizon=_horizon(0.5, 0.04)), Run("s2", gradient_horizon=_horizon(0.39, 0.04))])
    out = VA.read_c12_horizon(one_short)
    assert out.verdict == "not held" and "s2" in out.reason
    assert VA.read_c12_horizon(Ev([Run("s1")])).verdict == "not measured"


def test_c15_b0_collinear_only_with_pc1_and_k95():
    def ev(pc1, k95):
        return Ev(controls={"sgd_control": {"rows": [{"run": "A"}, {"run": "B0", "pc1": pc1, "k95": k95,
                                                                      "final_val": 7.0}]}})
    assert VA.read_c15_b0(ev(96.0, 1)).verdict == "held"
    assert VA.read_c15_b0(ev(94.9, 1)).verdict == "not held"
    assert VA.read_c15_b0(ev(99.0, 2)).verdict == "not held"
    assert "no run B0" in VA.read_c15_b0(Ev(controls={"sgd_control": {"rows": [{"run": "A"}]}})).reason


def _matched(adam_within=True, sgd_pc1=97.0, legacy=False):
    def row(run, step, within, pc1, drift):
        win = [{"kind": "after-warmup", "geometry": {"pc1": pc1, "k95": 1, "drift": drift}}] * 2
        match = {"step": step} if legacy else {"step": step, "after_warmup": {"step": step + 40,
                                                                              "within_tol": within}}
        return {"run": run, "match": match, "windows": [] if legacy else win}
    return Ev(controls={"sgd_matched_valloss": {"target": 4.2, "rel_tol": 0.02, "rows": [
        row("C", 300, True, sgd_pc1, 0.4), row("A", 75, adam_within, 80.0, 5.0)]}})


def test_c16_after_warmup_states_the_limitation_when_adamw_has_no_match():
    assert VA.read_c16_after_warmup(_matched()).verdict == "held"  # collinear SGD, drift 0.4 <= 0.1 x AdamW's 5.0
    assert VA.read_c16_after_warmup(_matched(sgd_pc1=90.0)).verdict == "not held"
    out = VA.read_c16_after_warmup(_matched(adam_within=False))
    assert out.verdict == "not measured" and out.reason.startswith("limitation: AdamW (A)")
    assert "predates" in VA.read_c16_after_warmup(_matched(legacy=True)).reason


def _sweep(pc1, abs_cos, drift, legacy=False, best_p=(0.9, 0.85, 0.6, 0.1)):
    rows = []
    for b, p, c, d, bp in zip((0.99, 0.95, 0.5, 0.0), pc1, abs_cos, drift, best_p):
        r = {"beta2": b, "p_probe": 0.2, "best_p_ood": bp, "status": "finished"}
        if not legacy:
            r.update(span=[150, 800], pc1_span=p, abs_cos_span=c, drift_span=d)
        rows.append(r)
    return Ev(beta2={"rows": rows})


def test_span_variants_apply_the_old_rules_to_the_span():
    falling = _sweep([90, 85, 70, 40], [0.5, 0.45, 0.4, 0.2], [1.0, 1.0, 2.0, 12.0])
    assert VA.read_c14_span(falling).verdict == "held" and VA.read_c19_span(falling).verdict == "held"
    rising = _sweep([90, 92, 70, 40], [0.5, 0.53, 0.4, 0.2], [1.0, 1.0, 2.0, 3.0])
    assert VA.read_c14_span(rising).verdict == "not held" and VA.read_c19_span(rising).verdict == "not held"
    assert "steps 150-800" in VA.read_c14_span(falling).ours
    # C17: PC1 and best p_ood fall, and drift(0) / drift(.95) over the span is 12 >= 10: blown up; 3 is not
    assert VA.read_c17_span(falling).verdict == "held"
    assert VA.read_c17_span(_sweep([90, 85, 70, 40], [0.5] * 4, [1.0, 1.0, 2.0, 3.0])).verdict == "not held"
    legacy = _sweep([1] * 4, [1] * 4, [1] * 4, legacy=True)
    for read in (VA.read_c14_span, VA.read_c17_span, VA.read_c19_span):
        assert "predates" in read(legacy).reason


def test_every_variant_row_is_well_formed_on_empty_evidence():
    rows = VA.evaluate_variants(Ev())
    assert [r["id"] for r in rows] == ["C12", "C14", "C15", "C16", "C17", "C19"]
    assert {r["verdict"] for r in rows} == {"not measured"}
