"""Exporting a run's results for git (drift/run/export.py): the result files only, never checkpoints, identical
bytes, stale copies removed, a set of runs exported whole, and one-line refusals."""
import json
import subprocess
import sys

import pytest

from drift.run import export as ex


def test_a_run_exports_its_results_and_nothing_else(tiny_run_copy, tmp_path):
    (tiny_run_copy / "analysis").mkdir()
    (tiny_run_copy / "analysis" / "trajectory_pca.json").write_text('{"results": {}}')
    (tiny_run_copy / "analysis" / "gram_cache.npz").write_bytes(b"cache")  # a cache, not a result
    out = tmp_path / "results"
    ex.export(tiny_run_copy, out)
    dest = out / tiny_run_copy.name
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == ["analysis/trajectory_pca.json", "codewords.json", "metrics.jsonl", "run.json"]
    assert (dest / "run.json").read_bytes() == (tiny_run_copy / "run.json").read_bytes()
    # the run's analysis goes away: so does its copy on the next export
    (tiny_run_copy / "analysis" / "trajectory_pca.json").unlink()
    ex.export(tiny_run_copy, out)
    assert not (dest / "analysis" / "trajectory_pca.json").exists()


def test_a_set_of_runs_exports_each_sub_run(tiny_run, tmp_path):
    import shutil
    ctrl = tmp_path / "ctrl_s1"
    for name in ("A", "B"):
        shutil.copytree(tiny_run, ctrl / name, ignore=shutil.ignore_patterns("ckpt_*", "resume.pt"))
    (ctrl / "analysis").mkdir()
    (ctrl / "analysis" / "sgd_control.json").write_text(json.dumps({"results": {"rows": []}}))
    ex.export(ctrl, tmp_path / "out")
    dest = tmp_path / "out" / "ctrl_s1"
    assert (dest / "A" / "metrics.jsonl").exists() and (dest / "B" / "run.json").exists()
    assert (dest / "analysis" / "sgd_control.json").exists() and not list(dest.rglob("ckpt_*"))


def test_refusals_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ex.ExportError, match="holds no run.json"):
        ex.export(tmp_path / "empty", tmp_path / "out")
    run = tmp_path / "big"
    (run / "analysis").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "analysis" / "nulls.json").write_bytes(b"0" * (ex.MAX_BYTES + 1))
    with pytest.raises(ex.ExportError, match="over the 5 MiB"):
        ex.export(run, tmp_path / "out")
    r = subprocess.run([sys.executable, "-m", "drift.run.export", str(tmp_path / "nope"), "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a directory" in r.stderr
