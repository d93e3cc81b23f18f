"""Provenance: every checkpoint is the file its place says (its run, by run_id, and its step, by its name), and every
directory is the kind of run its consumer takes (drift/run/checkpoint.py, drift/run/kinds.py).

Run: pytest tests/test_provenance.py
"""
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

import beta2_sweep
import make_report
import reheat
import sgd_control_analysis
import train as train_script
import trajectory_nulls
import trajectory_pca_uncentered as pca_script
from drift.analysis.controls import load_controls
from drift.analysis.reheat import check_reheat_of
from drift.config import Config, resolve
from drift.run import checkpoint as ck
from drift.run import integrity, kinds
from drift.run.info import RunInfo
from drift.train.trainer import train
from helpers.runs import SHORT, one_line_error, set_info

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results" / "cpu_runs"  # legacy runs
pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture(scope="module")
def seed4_run(tmp_path_factory):
    """Another tiny run, seed 4, 6 steps (checkpoints 0, 1, 5, 6): the source of foreign files."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny_s4"
    train(resolve("tiny", seed=4, overrides=SHORT), run_dir, progress=False)
    return run_dir


def run_id(run_dir) -> str:
    return ck.read_json(Path(run_dir) / "run.json")["run_id"]


# ---------------------------------------------------------------------------------------------------------------
# Run identity
# ---------------------------------------------------------------------------------------------------------------

def test_a_run_and_each_of_its_checkpoints_share_one_run_id(tiny_run, seed4_run):
    info = ck.read_json(tiny_run / "run.json")
    assert re.fullmatch(r"[0-9a-f]{32}", info["run_id"]) and info["kind"] == "main"
    assert run_id(seed4_run) != info["run_id"]
    for step in ck.list_steps(tiny_run):
        held = ck.load_checkpoint(tiny_run, step, mmap=True, verify=False)
        assert (held["run_id"], held["step"]) == (info["run_id"], step)


def test_a_checkpoint_from_another_run_is_refused_by_every_reader(tiny_run_copy, seed4_run, capsys):
    """Case 1: `cp runs/s4/ckpt_000005.pt runs/a/` used to pass every check (the analysis exited 0 with other
    numbers, the integrity command verified every file)."""
    path = ck.ckpt_path(tiny_run_copy, 5)
    shutil.copy(ck.ckpt_path(seed4_run, 5), path)
    why = (f"checkpoint {path} belongs to run {run_id(seed4_run)}, not to the run of {tiny_run_copy} "
           f"(run {run_id(tiny_run_copy)}): it was copied in from another run; delete it")
    steps = ck.list_steps(tiny_run_copy)
    for load in (lambda: ck.load_checkpoint(tiny_run_copy, 5), lambda: ck.load_checkpoint_file(path),
                 lambda: list(ck.iter_checkpoints(tiny_run_copy, steps))):
        with pytest.raises(ck.ForeignCheckpointError, match=re.escape(why)):
            load()
    assert pca_script.main([str(tiny_run_copy), "--no-progress"]) == 2
    assert why in one_line_error(capsys, "trajectory_pca_uncentered.py")
    assert integrity.main([str(tiny_run_copy)]) == 1
    out = capsys.readouterr().out
    assert f"{len(steps) - 1} verified, 0 corrupt, 1 of another run or step" in out
    assert f"not this run's: {why}" in out


def test_a_checkpoint_under_another_steps_name_is_refused(tiny_run_copy):
    """Case 1b: a checkpoint renamed to another step's file name."""
    path = ck.ckpt_path(tiny_run_copy, 15)
    shutil.copy(ck.ckpt_path(tiny_run_copy, 10), path)
    for load in (lambda: ck.load_checkpoint_file(path), lambda: ck.load_checkpoint(tiny_run_copy, 15)):
        with pytest.raises(ck.ForeignCheckpointError, match=re.escape(f"{path} holds step 10, not step 15 as its "
                                                                      f"name says")):
            load()
    checked = integrity.check_run(tiny_run_copy)
    assert [name for name, _ in checked.foreign] == ["ckpt_000015.pt"] and checked.corrupt == []


def test_resume_keeps_the_run_id_and_restart_draws_a_new_one(tmp_path, monkeypatch, seed4_run):
    import drift.train.trainer as tr
    original = tr._train_step

    def interrupt_at_3(model, fwd, opt, ctx, step, state):
        if step == 3:
            raise KeyboardInterrupt
        return original(model, fwd, opt, ctx, step, state)

    cfg, run = resolve("tiny", seed=1, overrides=SHORT), tmp_path / "r"
    monkeypatch.setattr(tr, "_train_step", interrupt_at_3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, progress=False, kind="controls")
    monkeypatch.undo()
    first = run_id(run)
    # another run's resume point is refused before anything is restored
    shutil.copy(run / "resume.pt", tmp_path / "own.pt")
    shutil.copy(seed4_run / "resume.pt", run / "resume.pt")
    with pytest.raises(ck.RunError, match=f"resume.pt belongs to run {run_id(seed4_run)}, not to the run of {run}"):
        train(cfg, run, resume=True, progress=False)
    shutil.copy(tmp_path / "own.pt", run / "resume.pt")
    assert train(cfg, run, resume=True, progress=False)["status"] == "finished"
    info = ck.read_json(run / "run.json")
    assert (info["run_id"], info["kind"]) == (first, "controls")
    assert [ck.load_checkpoint(run, s)["run_id"] for s in (5, 6)] == [first, first]  # written after the resume
    assert train_script.main(["--restart", str(run), "--no-progress"]) == 0  # every checkpoint deleted, retrained
    info = ck.read_json(run / "run.json")
    assert info["run_id"] != first and info["kind"] == "controls"
    assert {ck.load_checkpoint(run, s)["run_id"] for s in ck.list_steps(run)} == {info["run_id"]}


def test_run_json_is_read_once_per_run_not_once_per_checkpoint(tiny_run_copy, monkeypatch):
    reads = []
    real = ck.read_json
    monkeypatch.setattr(ck, "read_json", lambda path, *a, **k: reads.append(Path(path).name) or real(path, *a, **k))
    steps = ck.list_steps(tiny_run_copy)
    assert len([s for s, _ in ck.iter_checkpoints(tiny_run_copy, steps, verify=False)]) == len(steps) == 8
    assert reads.count("run.json") <= 1
    # the cache follows the file: run.json rewritten (here with another run's id) is read again
    set_info(tiny_run_copy, run_id="0" * 32)
    with pytest.raises(ck.ForeignCheckpointError, match="not to the run of .* \\(run 0{32}\\)"):
        ck.load_checkpoint(tiny_run_copy, steps[-1])


# ---------------------------------------------------------------------------------------------------------------
# Legacy runs: no run_id in run.json
# ---------------------------------------------------------------------------------------------------------------

def _without_run_id(path):
    ckpt = torch.load(path, weights_only=True)
    del ckpt["run_id"]
    torch.save(ckpt, path)


def _make_legacy(run_dir):
    """As a run made before run ids and kinds existed: neither in run.json nor in any checkpoint."""
    info = ck.read_json(run_dir / "run.json")
    del info["run_id"], info["kind"]
    ck.atomic_write_json(info, run_dir / "run.json")
    for step in ck.list_steps(run_dir):
        _without_run_id(ck.ckpt_path(run_dir, step))


def test_legacy_runs_load_and_another_configs_checkpoint_is_still_refused(tiny_run_copy, seed4_run, tmp_path):
    _make_legacy(tiny_run_copy)
    steps = ck.list_steps(tiny_run_copy)
    assert [s for s, _ in ck.iter_checkpoints(tiny_run_copy, steps)] == steps  # the identity check is skipped
    assert integrity.check_run(tiny_run_copy).foreign == []
    # a legacy checkpoint of another seed: its config differs from run.json's
    foreign = tmp_path / "ckpt_000005.pt"
    shutil.copy(ck.ckpt_path(seed4_run, 5), foreign)
    _without_run_id(foreign)
    shutil.copy(foreign, ck.ckpt_path(tiny_run_copy, 5))
    with pytest.raises(ck.ForeignCheckpointError, match=re.escape("was written with train.seed 4 (run.json: 1), "
                                                                  "train.total_steps 6 (run.json: 30): it comes from "
                                                                  "another run")):
        ck.load_checkpoint(tiny_run_copy, 5)
    # a checkpoint of a run with a run_id, in a legacy run
    shutil.copy(ck.ckpt_path(seed4_run, 6), ck.ckpt_path(tiny_run_copy, 6))
    with pytest.raises(ck.ForeignCheckpointError, match="records no run id"):
        ck.load_checkpoint(tiny_run_copy, 6)
    # the step / file-name check still applies
    shutil.copy(ck.ckpt_path(tiny_run_copy, 10), ck.ckpt_path(tiny_run_copy, 15))
    with pytest.raises(ck.ForeignCheckpointError, match="holds step 10, not step 15"):
        ck.load_checkpoint_file(ck.ckpt_path(tiny_run_copy, 15))


# ---------------------------------------------------------------------------------------------------------------
# Kinds
# ---------------------------------------------------------------------------------------------------------------

def test_each_script_records_its_kind(tiny_run, tiny_control_set, tiny_beta2_sweep):
    assert kinds.kind_of(tiny_run) == ("main", False)
    assert kinds.kind_of(tiny_control_set) == ("controls", True)
    assert kinds.kind_of(tiny_beta2_sweep) == ("beta2", True)
    assert {ck.read_json(d / "run.json")["kind"] for d in kinds.members(tiny_control_set)} == {"controls"}
    assert {ck.read_json(d / "run.json")["kind"] for d in kinds.members(tiny_beta2_sweep)} == {"beta2"}


def test_a_control_set_is_refused_as_a_beta2_sweep(tiny_control_set, tmp_path, capsys):
    """Case 2b: `trajectory_nulls.py CTRL --beta2` used to overwrite the controls' nulls.json with beta2 bands."""
    ctrl = tmp_path / "ctrl"
    shutil.copytree(tiny_control_set, ctrl)
    nulls = ctrl / "analysis" / "nulls.json"
    nulls.write_text('{"results": "the controls\' bands"}')
    assert trajectory_nulls.main([str(ctrl), "--beta2", "--draws", "20"]) == 2
    assert one_line_error(capsys, "trajectory_nulls.py") == (
        f'trajectory_nulls.py: error: --beta2 {ctrl} is an optimizer-control set (kind "controls"), not a beta2 '
        f'sweep; pass it to --controls')
    assert nulls.read_text() == '{"results": "the controls\' bands"}'
    assert trajectory_nulls.main([str(ctrl), "--draws", "20"]) == 2  # nor read as one run
    assert f'{ctrl} is an optimizer-control set (kind "controls"), a directory of runs, not one run; pass it to ' \
           f'--controls' in one_line_error(capsys, "trajectory_nulls.py")
    assert beta2_sweep.main(["--out", str(ctrl), "--analyze-only", "--no-figure"]) == 2  # nor tabulated as one
    assert "is an optimizer-control set (kind \"controls\")" in one_line_error(capsys, "beta2_sweep.py")
    assert not (ctrl / "analysis" / "beta2_sweep.json").exists()
    assert beta2_sweep.main(["--preset", "tiny", "--seed", "3", "--out", str(ctrl), "--beta2", "0.9",
                             "--no-progress", "--no-figure"]) == 2  # nor trained into
    assert "is an optimizer-control set (its run A has kind \"controls\")" in one_line_error(capsys, "beta2_sweep.py")
    assert not (ctrl / "b0.9").exists()


def test_make_report_takes_each_directory_only_as_its_kind(tiny_run, tiny_control_set, tiny_beta2_sweep, tmp_path,
                                                           capsys):
    """Case 2a: `make_report.py --beta2 CTRL` used to report the beta2 claims from the optimizer controls."""
    gen = tmp_path / "gen"
    given = {"--beta2": tiny_control_set, "--controls": tiny_beta2_sweep}
    expected = {"--beta2": f'--beta2 {tiny_control_set} is an optimizer-control set (kind "controls"), not a beta2 '
                           f'sweep; pass it to --controls',
                "--controls": f'--controls {tiny_beta2_sweep} is a beta2 sweep (kind "beta2"), not an '
                              f'optimizer-control set; pass it to --beta2'}
    for option, d in given.items():
        assert make_report.main(["--runs", str(tiny_run), option, str(d), "--out", str(gen), "--quiet"]) == 2
        assert one_line_error(capsys, "make_report.py") == f"make_report.py: error: {expected[option]}"
    a = tiny_control_set / "A"
    assert make_report.main(["--runs", str(a), "--out", str(gen), "--quiet"]) == 2
    assert one_line_error(capsys, "make_report.py").endswith(
        f'--runs {a} is an optimizer-control run (kind "controls"), not a main run; pass its directory '
        f'{tiny_control_set} to --controls')
    assert not gen.exists()
    assert sgd_control_analysis.main([str(tiny_beta2_sweep)]) == 2
    assert 'is a beta2 sweep (kind "beta2"), not an optimizer-control set' in one_line_error(
        capsys, "sgd_control_analysis.py")


def test_legacy_directories_take_their_kind_from_their_script_or_layout(tmp_path, capsys):
    """Every committed result is legacy (no kind in run.json): its kind is inferred, and case 2a is refused on it."""
    assert "kind" not in ck.read_json(RESULTS / "ctrl_s42" / "A" / "run.json")
    assert kinds.kind_of(RESULTS / "ctrl_s42") == ("controls", True)
    assert kinds.kind_of(RESULTS / "beta2_s42") == ("beta2", True)
    assert kinds.kind_of(RESULTS / "cpu_s42") == ("main", False)
    assert make_report.main(["--runs", str(RESULTS / "cpu_s42"), "--beta2", str(RESULTS / "ctrl_s42"),
                             "--out", str(tmp_path / "gen")]) == 2
    assert '(kind "controls"), not a beta2 sweep; pass it to --controls' in one_line_error(capsys, "make_report.py")
    # without a set script in argv (a library call, or train.py --restart), the layout decides
    layout = {"A": "controls", "C_prime": "controls", "b0.95_p0.20": "beta2", "b1e-05": "beta2",
              "main/reheat/lr0.0006": "reheat", "cpu_s42": "main", "notes": "main"}
    for name, kind in layout.items():
        d = tmp_path / "layout" / name
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({"config": {}, "argv": ["train.py", "--restart", str(d)]}))
        assert kinds.kind_of(d) == (kind, False), name


def test_a_directory_mixing_kinds_is_refused(tiny_control_set, tiny_beta2_sweep, tmp_path):
    mixed = tmp_path / "ctrl"
    shutil.copytree(tiny_control_set, mixed)
    shutil.copytree(tiny_beta2_sweep / "b0.9", mixed / "b0.9")
    with pytest.raises(ck.RunError, match=re.escape(f"{mixed} mixes runs of different kinds (A is controls, b0.9 is "
                                                    f"beta2); keep one kind per directory")):
        load_controls(mixed)


def test_reheat_takes_a_main_run_and_its_own_reheating_runs(tiny_control_set, tmp_path, capsys):
    a = tiny_control_set / "A"
    assert reheat.main([str(a), "--lrs", "1e-3", "--no-progress"]) == 2  # nothing trained into a control run
    assert f'reheat.py {a} is an optimizer-control run (kind "controls"), not a main run' in one_line_error(
        capsys, "reheat.py")
    assert not (a / "reheat").exists()
    # a reheating run started from another run's checkpoint is not tabulated as this run's
    main_dir, lr_dir = tmp_path / "main", tmp_path / "main" / "reheat" / "lr0.001"
    lr_dir.mkdir(parents=True)
    (lr_dir / "run.json").write_text(json.dumps({"kind": "reheat", "init_from_run_id": "1" * 32}))
    cfg = resolve("tiny")
    main = RunInfo(main_dir, {"run_id": "2" * 32}, cfg, [], [])
    run = RunInfo(lr_dir, ck.read_json(lr_dir / "run.json"), Config.from_dict(cfg.to_dict()), [], [])
    with pytest.raises(ck.RunError, match=f"was started from a checkpoint of run 1{{32}}, not of {main_dir}"):
        check_reheat_of(main, run)
    run.info["init_from_run_id"] = "2" * 32
    check_reheat_of(main, run)
