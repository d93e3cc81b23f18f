"""Reliability: each test reproduces one failure case of a run directory (two writers, a holed or running
trajectory, mismatched inputs, a full or read-only disk, bad arguments) and checks the refusal or recovery."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import backbone_update_analysis
import make_report
import train as train_script
from drift.run import checkpoint as ck
from drift.config import ConfigError, resolve, validate
from drift.analysis.controls import load_controls
from drift.data.corpus import SINGLE_FILE_VAL_EVERY, load_stories, split_description
from drift.run.info import check_seed_set, checked_run, schedule_holes
from drift.run.lock import LOCK_NAME, RunLock, holder
from drift.train.trainer import train

SHORT = ["total_steps=6"]  # checkpoints 0, 1, 5, 6: a run in a few seconds


def _one_line_error(capsys, prog: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith(f"{prog}: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _set_info(run_dir, **fields):
    info = ck.read_json(run_dir / "run.json")
    info.update(fields)
    ck.atomic_write_json(info, run_dir / "run.json")


# ---------------------------------------------------------------------------------------------------------------
# 1. One writer per run directory
# ---------------------------------------------------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import fcntl, json, os, socket, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "start_time": "T0"}).encode())
    print("held", flush=True)
    time.sleep(60)
""")


def test_second_writer_is_refused_and_stale_lock_taken_over(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(run / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        assert holder(run)["pid"] == other.pid
        with pytest.raises(ck.RunError, match=f"being written by another process \\(pid {other.pid} on "):
            train(resolve("tiny", seed=4, overrides=SHORT), run, progress=False)
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # the refused writer wrote nothing
    finally:
        other.kill()
        other.wait()
    # kill -9 left the lock file naming a dead pid: the next writer takes it over and says so
    assert holder(run) is None
    info = train(resolve("tiny", seed=4, overrides=SHORT), run, progress=False)
    assert info["status"] == "finished" and info["config"]["train"]["seed"] == 4
    assert f"taking over a stale run lock (pid {other.pid}" in capsys.readouterr().err
    assert not (run / LOCK_NAME).exists()  # released cleanly: removed
    metrics = ck.read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 5, 6]


def test_lock_is_exclusive_within_a_process_too(tmp_path):
    with RunLock(tmp_path):
        assert holder(tmp_path)["pid"] == os.getpid()
        with pytest.raises(ck.RunError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
    assert holder(tmp_path) is None and not (tmp_path / LOCK_NAME).exists()


def test_run_seed_forwards_term_to_its_stage(tmp_path):
    """kill (TERM) of run_seed.sh stops the trainer it started instead of leaving it writing the run."""
    fake = tmp_path / "fakepython"
    pidfile = tmp_path / "stage.pid"
    fake.write_text(f"#!/usr/bin/env bash\n[[ \"$1\" == train.py ]] || exit 0\necho $$ > {pidfile}\nexec sleep 60\n")
    fake.chmod(0o755)
    proc = subprocess.Popen(["bash", "run_seed.sh", "1", "--preset", "tiny", "--out", str(tmp_path / "r")],
                            env={**os.environ, "PYTHON": str(fake)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.time() < deadline:
        time.sleep(0.05)
    stage_pid = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in proc.stderr.read()
    with pytest.raises(ProcessLookupError):
        os.kill(stage_pid, 0)


# ---------------------------------------------------------------------------------------------------------------
# 3. A single-file corpus is split into disjoint train and validation sets
# ---------------------------------------------------------------------------------------------------------------

def test_single_file_split_is_disjoint_and_recorded(tmp_path, tiny_run):
    stories = [f"Story number {i} is about a cat who finds a red ball in the garden." for i in range(100)]
    path = tmp_path / "stories.txt"
    path.write_text("<|endoftext|>".join(stories))
    train_part = load_stories(str(path), "train", 1000)
    val_part = load_stories(str(path), "validation", 1000)
    assert not set(train_part) & set(val_part)
    assert len(val_part) == 100 // SINGLE_FILE_VAL_EVERY and len(train_part) + len(val_part) == 100
    assert val_part[0] == stories[SINGLE_FILE_VAL_EVERY - 1] and train_part[:3] == stories[:3]
    assert "every 20th story" in split_description(str(path))
    assert "separate generator streams" in ck.read_json(tiny_run / "run.json")["data_split"]


# ---------------------------------------------------------------------------------------------------------------
# 4. Runs combined in a report or a control table must belong together
# ---------------------------------------------------------------------------------------------------------------

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
    assert "differ in more than the seed (train.lr: 0.001 vs 0.0003)" in _one_line_error(capsys, "make_report.py")
    # a control directory made with another preset
    ctrl = tmp_path / "ctrl"
    (ctrl / "A").mkdir(parents=True)
    info = ck.read_json(tiny_run / "run.json")
    info["config"]["model"].update(resolve("cpu").to_dict()["model"])
    ck.atomic_write_json(info, ctrl / "A" / "run.json")
    assert make_report.main(["--runs", str(tiny_run), "--controls", str(ctrl), "--out", str(tmp_path / "g")]) == 2
    assert "--controls" in _one_line_error(capsys, "make_report.py")
    assert not (tmp_path / "gen").exists() and not (tmp_path / "g").exists()


def test_control_rows_are_labelled_from_run_json(tiny_run, tmp_path):
    root = tmp_path / "ctrl"
    shutil.copytree(tiny_run, root / "A")
    from drift.analysis.controls import optimizer_label
    assert optimizer_label(load_controls(root)["A"]) == "AdamW"
    shutil.copytree(tiny_run, root / "B")  # an AdamW run placed where the SGD control belongs
    with pytest.raises(ck.RunError, match="B holds a adamw run .* B is the sgd control"):
        load_controls(root)


# ---------------------------------------------------------------------------------------------------------------
# 5, 6, 8. Holed, running and diverged trajectories; hints that work
# ---------------------------------------------------------------------------------------------------------------

def _analysis(run_dir) -> dict:
    return ck.read_json(run_dir / "analysis" / "update_alignment.json")


def test_holed_trajectory_is_refused_unless_allowed(tiny_run_copy, capsys):
    ck.ckpt_path(tiny_run_copy, 15).unlink()
    assert schedule_holes(ck.read_json(tiny_run_copy / "run.json"), ck.list_steps(tiny_run_copy)) == [15]
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk"]) == 2
    msg = _one_line_error(capsys, "backbone_update_analysis.py")
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
    msg = _one_line_error(capsys, "backbone_update_analysis.py")
    assert "ckpt_000010.pt is corrupt" in msg and "--allow-missing" in msg
    assert f"python train.py --restart {tiny_run_copy}" in msg and "--steps" not in msg
    path.unlink()  # what the hint says: delete it and rerun the analysis with --allow-missing
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk", "--allow-missing"]) == 0
    assert 10 not in _analysis(tiny_run_copy)["run"]["steps_used"]


def test_running_run_is_refused_and_divergence_is_carried(tiny_run_copy, capsys, tmp_path):
    _set_info(tiny_run_copy, status="running")
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk"]) == 2
    msg = _one_line_error(capsys, "backbone_update_analysis.py")
    assert "still running" in msg and "no process holds its lock" in msg and "--allow-running" in msg
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk", "--allow-running"]) == 0
    # a diverged run: analysed, and "diverged at step N" reaches the JSON and the report
    _set_info(tiny_run_copy, status="diverged", diverged_step=27)
    ck.ckpt_path(tiny_run_copy, 30).unlink()
    assert backbone_update_analysis.main([str(tiny_run_copy), "--scope", "trunk"]) == 0
    run = _analysis(tiny_run_copy)["run"]
    assert run["status_text"] == "diverged at step 27" and run["missing_steps"] == []
    from drift.report.claims import load_evidence
    from drift.report.tables import setup_table
    assert "run status & finished & diverged at step 27" in setup_table(load_evidence([tiny_run_copy]))


# ---------------------------------------------------------------------------------------------------------------
# 7, 9. A run stopped before its first resume point; a full or read-only disk
# ---------------------------------------------------------------------------------------------------------------

def test_run_killed_before_first_resume_point_has_one_way_out(tmp_path, monkeypatch, capsys):
    import drift.train.trainer as tr

    def interrupted(*args):
        raise KeyboardInterrupt

    run = tmp_path / "early"
    cfg = resolve("tiny", seed=1, overrides=SHORT)
    monkeypatch.setattr(tr, "_train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, progress=False)
    monkeypatch.undo()
    assert ck.read_json(run / "run.json")["status"] == "interrupted" and not (run / "resume.pt").exists()
    way_out = f"start it over with `python train.py --restart {run}`"
    for argv in (["--resume", str(run)], ["--preset", "tiny", "--seed", "1", "--out", str(run), *SHORT]):
        assert train_script.main(argv + ["--no-progress"]) == 2
        assert way_out in _one_line_error(capsys, "train.py")
    assert train_script.main(["--restart", str(run), "--no-progress"]) == 0
    assert ck.read_json(run / "run.json")["status"] == "finished" and ck.list_steps(run) == [0, 1, 5, 6]


def test_sweeps_continue_an_interrupted_run_instead_of_skipping_it(tiny_run_copy):
    from drift.train.control_runs import ensure_run
    _set_info(tiny_run_copy, status="interrupted", error="KeyboardInterrupt: ")
    cfg = resolve("tiny", seed=1)
    res = ensure_run(cfg, tiny_run_copy, progress=False)
    assert res["action"] == "resumed" and ck.read_json(tiny_run_copy / "run.json")["status"] == "finished"
    assert ensure_run(cfg, tiny_run_copy, progress=False)["action"] == "skipped"


def test_disk_full_names_the_file_and_leaves_no_temp(tmp_path, monkeypatch, capsys):
    real_save = torch.save
    still_open = []

    def full_disk(obj, f, *a, **k):
        if "ckpt_000005" in str(f):
            fh = open(f, "wb")
            fh.write(b"\0" * 4096)  # a partial file, as a full disk leaves it,
            fh.flush()
            still_open.append(fh)  # and kept open, as torch's writer does while the traceback lives
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    run = tmp_path / "full"
    with pytest.raises(ck.RunError) as e:
        train(resolve("tiny", seed=1, overrides=SHORT), run, progress=False)
    assert str(e.value) == f"cannot write {run / 'ckpt_000005.pt'}: No space left on device"
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # the temp file is gone,
    assert os.fstat(still_open[0].fileno()).st_size == 0  # and its blocks are freed although it is still open
    still_open[0].close()
    info = ck.read_json(run / "run.json")
    assert info["status"] == "failed" and "No space left" in info["error"]
    monkeypatch.undo()
    # a stale temp file of a dead writer is removed at the next start; the run then resumes from step 1
    stale = run / f".ckpt_000005.pt.tmp{_dead_pid()}"
    stale.write_bytes(b"\0" * 4096)
    assert train(resolve("tiny", seed=1, overrides=SHORT), run, resume=True, progress=False)["status"] == "finished"
    assert not stale.exists() and "removed the stale temporary file" in capsys.readouterr().err
    assert [m["step"] for m in ck.read_metrics(run)] == [1, 5, 6]


def test_torch_disk_full_error_is_named(tmp_path, monkeypatch):
    """torch.save reports a full disk as an opaque RuntimeError; the free space names the cause."""
    def enforce_fail(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1232768 vs 1232660")

    class Full:
        f_bavail, f_frsize = 3, 4096

    monkeypatch.setattr(torch, "save", enforce_fail)
    monkeypatch.setattr(os, "statvfs", lambda p: Full())
    with pytest.raises(ck.RunError, match="resume.pt: No space left on device$"):
        ck.atomic_torch_save({}, tmp_path / "resume.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_read_only_metrics_append_is_one_line_and_run_json_not_running(tmp_path, monkeypatch, capsys, code):
    real_fsync = os.fsync

    def read_only(fd):
        raise OSError(code, os.strerror(code))

    run = tmp_path / "ro"
    monkeypatch.setattr(os, "fsync", read_only)
    assert train_script.main(["--preset", "tiny", "--seed", "1", "--out", str(run), "--no-progress", *SHORT]) == 2
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert _one_line_error(capsys, "train.py") == (f"train.py: error: cannot write {run / 'metrics.jsonl'}: "
                                                   f"{os.strerror(code)}")
    assert ck.read_json(run / "run.json")["status"] == "failed"


# ---------------------------------------------------------------------------------------------------------------
# 10, 11. Arguments are checked before anything is written
# ---------------------------------------------------------------------------------------------------------------

BAD = {"n_head=0": "n_head=0", "eval_every=0": "eval_every=0", "ckpt_every=0": "ckpt_every=0", "lr=-1": "lr=-1",
       "lr=nan": "lr=nan", "tokenizer=foo": "tokenizer='foo'", "d_model=0": "d_model=0", "n_layer=0": "n_layer=0",
       "p_probe=2": "p_probe=2", "amp=fp8": "amp='fp8'", "d_model=33": "not divisible by n_head",
       "seq_len=10": "seq_len=10 is too short for the longest probe eval item"}


@pytest.mark.parametrize("override", list(BAD))
def test_bad_config_is_one_line_and_writes_nothing(override, tmp_path, capsys):
    out = tmp_path / "x"
    assert train_script.main(["--preset", "tiny", "--out", str(out), "--no-progress", override]) == 2
    assert BAD[override] in _one_line_error(capsys, "train.py")
    assert not out.exists()


def test_every_preset_validates_and_rules_cover_relations():
    for preset in ("paper", "cpu", "tiny"):
        validate(resolve(preset))
    with pytest.raises(ConfigError, match="gap_ood_min"):
        resolve("tiny", overrides=["gap_ood_min=5"])
    with pytest.raises(ConfigError, match="device"):
        resolve("tiny", overrides=["device=gpu"])


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert train_script.main(["--preset", "tiny", "--out", str(f), "--no-progress"]) == 2
    assert "is a file, not a run directory" in _one_line_error(capsys, "train.py")
    assert f.read_text() == "x"


def test_resume_refuses_mismatched_seed_preset_and_out(tiny_run_copy, tmp_path, capsys):
    base = ["--resume", str(tiny_run_copy), "--no-progress"]
    for extra, expect in ((["--seed", "4"], "--seed 4 disagrees with the run's seed 1"),
                          (["--preset", "cpu"], "--preset cpu disagrees"),
                          (["--out", str(tmp_path / "elsewhere")], "not --out")):
        assert train_script.main(base + extra) == 2
        assert expect in _one_line_error(capsys, "train.py")
    _set_info(tiny_run_copy, preset="tiny")
    assert train_script.main(base + ["--preset", "tiny", "--seed", "1"]) == 0  # agreeing options are fine
