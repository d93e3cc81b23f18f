"""The evidence behind each verdict (drift/report/evidence.py, evidence_tables.py) on planted runs, and the
committed report rebuilt from experiments/results/ byte for byte."""
import math
from pathlib import Path

import numpy as np
import pytest

from drift.report import evidence as E
from drift.report import verdicts as V
from drift.report.evidence_tables import changes_after_results, evidence_table, rule_history_table

ROOT = Path(__file__).resolve().parents[1]


class FakeRun:
    """What the evidence reader uses of a RunEvidence: a label and results(name)."""

    def __init__(self, label, nulls, traj):
        self.label, self._r = label, {"nulls": nulls, "trajectory_pca": traj}

    def results(self, name):
        return self._r.get(name)


class FakeEvidence:
    def __init__(self, runs):
        self.runs = runs

    def control(self, name):
        return None

    beta2_nulls = None


TRAJ = {"setup": {"switch_step": 400, "total_steps": 1000}, "blocks": {"layers": [0, 1]}}


def _run(label, observed, n1_median, rng, rule_holds_in):
    """A seed whose C3 key statistic (trunk_pc1_rownorm) is `observed` against an N1 median, and whose N1 draws
    satisfy C3's rule (raw > row-norm PC1 >= 3 x PC2) in `rule_holds_in` of 40 draws."""
    n = 40
    rn = rng.normal(n1_median, 1e-3, n)
    raw = rn + np.where(np.arange(n) < rule_holds_in, 0.1, -0.1)  # raw > rn only in the first draws
    nulls = {"statistics": {"trunk_pc1_rownorm": {"observed": observed,
                                                  "N1": {"median": n1_median}, "N2": {"median": n1_median - 0.1},
                                                  "N3": {"median": observed + 0.05}}},
             "draws": {"N1": {"trunk_pc1_rownorm": list(rn), "trunk_pc2_rownorm": list(rn / 10),
                              "trunk_pc1_raw": list(raw)}}}
    return FakeRun(label, nulls, TRAJ)


def test_planted_effect_beyond_n1_and_a_diagnostic_rule():
    rng = np.random.default_rng(0)
    runs = [_run(f"s{i}", 0.80 + d, 0.75, rng, rule_holds_in=1) for i, d in enumerate([0.01, 0.012, 0.009, 0.011])]
    e = E.trajectory_evidence(FakeEvidence(runs), "C3")
    assert e["verdict"] == "beyond N1, N2" and e["tests"]["N3"]["verdict"] == V.WITHIN
    assert e["tests"]["N1"]["mean_diff"] == pytest.approx(0.0605)
    assert e["n1_pass_rate"] == pytest.approx(1 / 40) and e["diagnostic"] is True


def test_planted_walk_that_passes_the_rule_is_not_diagnostic():
    rng = np.random.default_rng(1)
    runs = [_run(f"s{i}", 0.75 + d, 0.75, rng, rule_holds_in=30) for i, d in enumerate([0.001, -0.002, 0.0005])]
    e = E.trajectory_evidence(FakeEvidence(runs), "C3")
    assert e["verdict"] == "beyond N2" and e["diagnostic"] is False and e["n1_pass_rate"] == pytest.approx(0.75)
    rows = E.annotate([{"id": "C3", "verdict": "held"}, {"id": "C1", "verdict": "held"}], {"C3": e})
    assert rows[0]["label"] == E.NOT_DIAGNOSTIC and rows[0]["sharp"] == "not held"  # not beyond N1 over seeds
    assert rows[1]["label"] == "held" and rows[1]["seed_verdict"] == "" and rows[1]["sharp"] == ""
    assert "held, not diagnostic" in evidence_table(rows) and "C1 &" not in evidence_table(rows)


def test_one_seed_has_no_test():
    e = E.trajectory_evidence(FakeEvidence([_run("s42", 0.8, 0.75, np.random.default_rng(2), 0)]), "C3")
    assert e["verdict"] == V.ONE_SEED and math.isnan(e["tests"]["N1"]["effect"])


def test_rule_history_table_lists_every_entry():
    hist = {"entries": [{"claim": "C2,C3", "date": "2026-12-02T13:18:24", "commit": "abc1234", "old_rule": "x <= 0.8",
                         "new_rule": "x below N3", "why": "could not fail", "timing": "changed after results"}]}
    tex = rule_history_table(hist)
    assert "C2, C3" in tex and "abc1234" in tex and r"x $\leq$ 0.8" in tex and "changed after results" in tex


def test_changes_after_results_counts_only_late_changes_and_their_claims():
    entry = {"date": "2026-12-02", "commit": "abc1234", "old_rule": "a", "new_rule": "b", "why": "c"}
    hist = {"entries": [{**entry, "claim": "C16", "timing": "changed after results"},
                        {**entry, "claim": "C1 (cpu preset selection)", "timing": "changed after results"},
                        {**entry, "claim": "C16", "timing": "changed after results"},
                        {**entry, "claim": "C2,C3 (null verdict)", "timing": "changed before results"},
                        {**entry, "claim": "C14, C17", "timing": "changed before results (of the seeds it will judge)"}]}
    assert changes_after_results(hist) == (3, ["C1", "C16"])
    assert changes_after_results({"entries": []}) == (0, [])


def test_committed_report_rebuilds_byte_identical(tmp_path):
    """paper/generated is exactly what the committed analysis JSON named in its sources.txt gives: nothing in the
    report is typed by hand, and the list of sources is itself part of the rebuilt report."""
    from drift.report.compare import load_sources
    from drift.report.tables import SOURCES, read_sources, write_report
    generated = ROOT / "paper" / "generated"
    src = read_sources(generated / SOURCES)
    assert src["runs"] and all(d.is_relative_to(ROOT / "experiments" / "results") for v in src.values() for d in v)
    paths, _ = write_report(load_sources(generated / SOURCES), tmp_path)
    committed = sorted(p.name for p in generated.iterdir() if p.suffix in (".tex", ".txt", ".md"))
    assert sorted(p.name for p in paths) == committed
    for p in paths:
        assert p.read_bytes() == (generated / p.name).read_bytes(), p.name


def test_sources_list_round_trips(tmp_path):
    from drift.report.inputs import load_evidence
    from drift.report.tables import read_sources, sources_text
    runs = ROOT / "experiments" / "results" / "cpu_runs"
    ev = load_evidence([runs / "cpu_s271", runs / "cpu_s42"], [runs / "ctrl_s42"], runs / "beta2_s42")
    text = sources_text(ev)
    assert text == ("runs experiments/results/cpu_runs/cpu_s42\nruns experiments/results/cpu_runs/cpu_s271\n"
                    "controls experiments/results/cpu_runs/ctrl_s42\nbeta2 experiments/results/cpu_runs/beta2_s42\n")
    (tmp_path / "s.txt").write_text(text + f"runs {tmp_path}\n")
    back = read_sources(tmp_path / "s.txt")
    assert back["runs"] == [runs / "cpu_s42", runs / "cpu_s271", tmp_path] and back["beta2"] == [runs / "beta2_s42"]
    (tmp_path / "bad.txt").write_text("main experiments/results/cpu_runs/cpu_s42\n")
    with pytest.raises(ValueError, match="is not '<runs"):
        read_sources(tmp_path / "bad.txt")


def test_undefined_statistics_written_as_null_are_nan():
    """The analyses write an undefined value (NaN) as JSON null: a claim whose statistic is undefined in a seed drops
    that seed, and one undefined everywhere has no data, never a crash."""
    rng = np.random.default_rng(3)
    runs = [_run(f"s{i}", 0.8 + 0.01 * i, 0.75, rng, 0) for i in range(3)]
    runs[1]._r["nulls"]["statistics"]["trunk_pc1_rownorm"]["observed"] = None
    runs[2]._r["nulls"]["statistics"]["trunk_pc1_rownorm"]["N1"]["median"] = None
    runs[0]._r["nulls"]["draws"]["N1"]["trunk_pc1_raw"][0] = None
    e = E.trajectory_evidence(FakeEvidence(runs), "C3")
    assert e["tests"]["N1"]["n"] == 1 and e["tests"]["N1"]["n_dropped"] == 2 and e["verdict"] == V.ONE_SEED
    for r in runs:
        r._r["nulls"]["statistics"]["trunk_pc1_rownorm"] = {"observed": None}
    assert E.trajectory_evidence(FakeEvidence(runs), "C3")["verdict"] == "no null"


def _control_copy(tmp_path, name, b_pc1=None, pc1_shift=0.0):
    """A copy of the committed control set under `name` (ctrl_s<seed>), its runs' recorded seed set to that seed,
    optionally with run B's window PC1 set and the nulls' observed PC1 of every window shifted, as another seed's
    set would differ."""
    import json
    import shutil
    src = ROOT / "experiments" / "results" / "cpu_runs" / "ctrl_s42"
    dst = tmp_path / name
    shutil.copytree(src, dst)
    for run_json in dst.glob("*/run.json"):
        info = json.loads(run_json.read_text())
        info["config"]["train"]["seed"] = int(name.rsplit("_s", 1)[1])
        run_json.write_text(json.dumps(info))
    ctl = dst / "analysis" / "sgd_control.json"
    d = json.loads(ctl.read_text())
    for r in d["results"]["rows"]:
        if r["run"] == "B" and b_pc1 is not None:
            r["pc1"] = b_pc1
    ctl.write_text(json.dumps(d))
    nl = dst / "analysis" / "nulls.json"
    d = json.loads(nl.read_text())
    for windows in d["results"]["rows"].values():
        for entry in windows.values():
            if isinstance(entry, dict) and "statistics" in entry:
                entry["statistics"]["pc1"]["observed"] += pc1_shift
    nl.write_text(json.dumps(d))
    return dst


def test_control_claims_are_judged_in_every_control_set(tmp_path):
    """Three control sets (one per seed): C15 holds only if it holds in each, and its key statistic gets a seed
    test over the sets instead of "one seed: no test"."""
    from drift.report.claims import evaluate_claims
    from drift.report.inputs import load_evidence
    runs = ROOT / "experiments" / "results" / "cpu_runs"
    sets = [_control_copy(tmp_path, f"ctrl_s{s}", pc1_shift=d) for s, d in ((42, 0.0), (271, -1e-3), (137, 2e-3))]
    ev = load_evidence([runs / "cpu_s42"], sets)
    rows = {r["id"]: r for r in evaluate_claims(ev)}
    one = {r["id"]: r for r in evaluate_claims(load_evidence([runs / "cpu_s42"], sets[0]))}
    assert rows["C15"]["verdict"] == one["C15"]["verdict"] == "held"
    assert rows["C15"]["ours"].startswith("ctrl_s42: ") and "; ctrl_s137: " in rows["C15"]["ours"]
    e = E.control_evidence(ev, "C15")
    assert e["seeds"] == ["ctrl_s42", "ctrl_s137", "ctrl_s271"] and e["tests"]["N1"]["n"] == 3  # by seed
    assert e["tests"]["N1"]["verdict"] in (V.BEYOND, V.WITHIN) and e["verdict"] != V.ONE_SEED
    assert E.control_evidence(load_evidence([runs / "cpu_s42"], sets[0]), "C15")["verdict"] == V.ONE_SEED
    # B's window PC1 below 95% in one set: the claim fails there, and the reason names that set
    sets[1] = _control_copy(tmp_path / "x", "ctrl_s271", b_pc1=90.0)
    row = {r["id"]: r for r in evaluate_claims(load_evidence([runs / "cpu_s42"], sets))}["C15"]
    assert row["verdict"] == "not held" and row["reason"] == "fails in ctrl_s271"


def test_the_method_says_how_the_preset_was_chosen():
    """macros.tex's \\PresetChoice follows the runs' preset: cpu_p40 was picked by C1's rule, cpu by phase criteria
    that imply it; a preset without a recorded choice adds nothing."""
    from drift.report.claims_tables import macros
    from drift.report.inputs import load_evidence
    results = ROOT / "experiments" / "results"

    def choice(run_dir):
        ev = load_evidence([run_dir])
        line = next(ln for ln in macros(ev, []).splitlines() if "{\\PresetChoice}" in ln)
        return line.partition("{\\PresetChoice}")[2]

    assert choice(results / "cpu_runs" / "cpu_s42") == \
        "{, and the \\texttt{cpu\\_p40} configuration was chosen among configurations by C1's rule}"
    assert "phase criteria" in choice(results / "cpu_runs_p20" / "cpu_s271") and "C1" in choice(
        results / "cpu_runs_p20" / "cpu_s271")


def test_null_band_cells_per_seed_then_one_hull():
    """Tables show the N1 band per seed with one or two seeds; with more, the hull over the seeds (lowest lower to
    highest upper bound), saying how many seeds had a band."""
    from drift.report.table_cells import null_cell

    def run(label, lo, hi):
        band = None if lo is None else {"N1": {"lo": lo, "hi": hi}}
        return FakeRun(label, {"statistics": {"x": band}}, TRAJ)

    assert null_cell(FakeEvidence([run("a", 0.1, 0.2), run("b", 0.15, 0.25)]), "x") == "0.1--0.2 / 0.15--0.25"
    three = [run("a", 0.1, 0.2), run("b", 0.15, 0.25), run("c", 0.12, 0.22)]
    assert null_cell(FakeEvidence(three), "x") == "0.1--0.25 (3 seeds)"
    assert null_cell(FakeEvidence(three + [run("d", None, None)]), "x") == "0.1--0.25 (3 of 4 seeds)"
    assert null_cell(FakeEvidence(three), None) == "--"


def test_claims_markdown_quotes_the_verdicts_and_escapes_cells():
    from drift.report.claims_md import claims_markdown
    rng = np.random.default_rng(4)
    runs = [_run(f"s{i}", 0.80 + d, 0.75, rng, rule_holds_in=30) for i, d in enumerate([0.01, 0.012, 0.009])]
    e = E.trajectory_evidence(FakeEvidence(runs), "C3")
    rows = E.annotate([{"id": "C3", "verdict": "held", "text": "raw PC1 > row-norm | PC1", "paper": "71%",
                        "ours": "n/a", "reason": "why"}], {"C3": e})
    variants = [{"id": "C12", "variant": "equal horizon", "rule": ">= 10x", "ours": "8.3x", "verdict": "not held",
                 "reason": ""}]
    md = claims_markdown(rows, variants)
    line = next(ln for ln in md.splitlines() if ln.startswith("| C3 "))
    assert line.startswith("| C3 raw PC1 > row-norm \\| PC1 | 71% | why | **held, not diagnostic; sharp rule: held** | ")
    assert "trunk_pc1_rownorm (high): 0.8103 +/- 0.0015 (3 seeds); beyond N1, N2; effect vs N1 39.5 sd (p 0.00011)" in line
    assert "; not diagnostic |" in line
    assert "Totals: 0 held, 1 held, not diagnostic, 0 not held, 0 not measured." in md
    assert "| C12 | equal horizon | >= 10x | 8.3x | **not held** |" in md
