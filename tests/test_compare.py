"""experiments/compare_verdicts.py and drift/report/compare.py: two reports' verdicts claim by claim."""
from pathlib import Path

from drift.report import compare as C
from experiments import compare_verdicts

ROOT = Path(__file__).resolve().parents[1]
RUNS = "experiments/results/cpu_runs"


def _sources(tmp_path, name, *lines):
    p = tmp_path / name
    p.write_text("".join(f"{line}\n" for line in lines))
    return p


def test_dropping_a_seed_changes_exactly_the_seed_tests(tmp_path, capsys):
    both = _sources(tmp_path, "two.txt", f"runs {RUNS}/cpu_s42", f"runs {RUNS}/cpu_s271", f"controls {RUNS}/ctrl_s42")
    one = _sources(tmp_path, "one.txt", f"runs {RUNS}/cpu_s42", f"controls {RUNS}/ctrl_s42")
    rows = {r["id"]: r for r in C.compare_sources(both, one)}
    # with one seed no trajectory claim has a test over seeds; C2 was beyond N1, N2, N3 with two
    assert rows["C2"]["old"]["seed_verdict"] == "beyond N1, N2, N3"
    assert rows["C2"]["new"]["seed_verdict"] == "one seed: no test" and rows["C2"]["changed"]
    assert all(r["new"]["seed_verdict"] in ("", "one seed: no test") for r in rows.values())
    # C15 is judged on the control set alone, which both reports share
    assert rows["C15"]["old"] == rows["C15"]["new"] and not rows["C15"]["changed"]
    # no beta2 sweep in either: its claims are not measured in both and unchanged
    assert rows["C17"]["new"]["label"] == "not measured" and not rows["C17"]["changed"]
    assert "C12 (equal horizon)" in rows and list(rows)[:3] == ["C1", "C2", "C3"]
    assert compare_verdicts.main([str(both), str(one), "--names", "two", "one", "--out", str(tmp_path / "v.md")]) == 0
    text = (tmp_path / "v.md").read_text()
    n = sum(r["changed"] for r in rows.values())
    assert text == capsys.readouterr().out and f"{n} of {len(rows)} claims changed" in text
    assert "| C2 * | held, not diagnostic; over seeds: beyond N1, N2, N3" in text and "| C15 | " in text


def test_a_report_against_itself_changes_nothing_and_bad_input_is_one_line(tmp_path, capsys):
    same = ROOT / "paper" / "generated" / "sources.txt"
    assert not any(r["changed"] for r in C.compare_sources(same, same))
    bad = _sources(tmp_path, "bad.txt", f"main {RUNS}/cpu_s42")
    assert compare_verdicts.main([str(bad), str(same)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not '<runs|controls|beta2> DIRECTORY'" in err
