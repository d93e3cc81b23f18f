"""Tests for drift.run.info's checks before an analysis: runs of one setup only, holed, running and diverged
trajectories refused (or allowed) with hints that work.

Run: pytest tests/test_run_info.py
"""

import shutil

import pytest

import backbone_update_analysis
import make_report
from drift.config import resolve
from drift.run import checkpoint as ck
from drift.run.info import check_seed_set, checked_run, schedule_holes
from helpers.runs import one_line_error, set_info


def _clone(src, dst, **config_train):
    shutil.copytree(src, dst)
    info = ck.read_json(dst / "run.json")
    info["config"]["train"].update(config_train)
    ck.atomic_write_json(info, dst / "run.json")
    return dst

def test_report_refuses_runs_that_are_not_seeds_of_one_setup(tiny_run, tmp_path, capsys):
    seed2 = _clone(tiny_run, tmp_path / "s2", seed=2)
    check_seed_set([tiny_run, seed2])  # differs in the seed only: accepted
    other = _clone(tiny_run, tmp_path / "other", seed=3, lr=3e-4)
    assert make_report.main(["--runs", str(tiny_run), str(other), "--out", str(tmp_path / "gen")]) == 2
    assert "differ in more than the seed (train.lr: 0.001 vs 0.0003)" in one_line_error(capsys, "make_report.py")
    # a control directory made with another preset
    ctrl = tmp_path / "ctrl"
    (ctrl / "A").mkdir(parents=True)
    info = ck.read_json(tiny_run / "run.json")
    info["config"]["model"].update(resolve("cpu").to_dict()["model"])
    info["kind"] = "controls"
    ck.atomic_write_json(info, ctrl / "A" / "run.json")
    assert make_report.main(["--runs", str(tiny_run), "--controls", str(ctrl), "--out", str(tmp_path / "g")]) == 2
    assert f"--controls {ctrl}: runs" in (err := one_line_error(capsys, "make_report.py")) and "another preset" in err
    assert not (tmp_path / "gen").exists() and not (tmp_path / "g").exists()

def _analysis(run_dir) -> dict:
    return ck.read_json(run_dir / "analysis" / "update_alignment.json")

def test_holed_trajectory_is_refused_unless_allowed(tiny_run_copy, capsys):
    ck.ckpt_path(tiny_run_copy, 15).unlink()
    assert schedule_holes(ck.read_json(tiny_run_copy / "run.json"), ck.list_steps(tiny_run_copy)) == [15]
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk"]) == 2
    msg = one_line_error(capsys, "backbone_update_analysis.py")
    assert "lacks 1 checkpoint(s) of its own schedule (step 15)" in msg
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk", "--allow-missing"]) == 0
    run = _analysis(tiny_run_copy)["run"]
    assert run["missing_steps"] == [15] and run["steps_used"] == [1, 5, 10, 20, 25, 30]
    assert run["status_text"] == "finished"

def test_missing_first_checkpoint_is_a_hole_too(tiny_run_copy):
    ck.ckpt_path(tiny_run_copy, 1).unlink()
    with pytest.raises(ck.RunError, match=r"\(step 1\)"):
        checked_run(tiny_run_copy, None)

def test_corrupt_checkpoint_hint_is_a_command_that_works(tiny_run_copy, capsys):
    path = ck.ckpt_path(tiny_run_copy, 10)
    path.write_bytes(path.read_bytes()[:200])
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk"]) == 2
    msg = one_line_error(capsys, "backbone_update_analysis.py")
    assert "ckpt_000010.pt is corrupt" in msg and "--allow-missing" in msg
    assert f"python train.py --restart {tiny_run_copy}" in msg and "--steps" not in msg
    path.unlink()  # what the hint says: delete it and rerun the analysis with --allow-missing
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk", "--allow-missing"]) == 0
    assert 10 not in _analysis(tiny_run_copy)["run"]["steps_used"]

def test_running_run_is_refused_and_divergence_is_carried(tiny_run_copy, capsys, tmp_path):
    set_info(tiny_run_copy, status="running")
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk"]) == 2
    msg = one_line_error(capsys, "backbone_update_analysis.py")
    assert "still running" in msg and "no process holds its lock" in msg and "--allow-running" in msg
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk", "--allow-running"]) == 0
    # a diverged run: analysed, and "diverged at step N" reaches the JSON and the report
    set_info(tiny_run_copy, status="diverged", diverged_step=27)
    ck.ckpt_path(tiny_run_copy, 30).unlink()
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk"]) == 0
    run = _analysis(tiny_run_copy)["run"]
    assert run["status_text"] == "diverged at step 27" and run["missing_steps"] == []
    from drift.report.inputs import load_evidence
    from drift.report.tables import setup_table
    assert "run status & finished & diverged at step 27" in setup_table(load_evidence([tiny_run_copy]))
