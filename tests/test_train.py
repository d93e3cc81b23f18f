"""End-to-end training on the tiny preset: the run-directory contract, exact resume, and the failure modes."""
import json
import subprocess
import sys

import pytest
import torch

import train as train_script

from drift.run import checkpoint as ck
from drift.config import resolve
from drift.train.trainer import DivergedError, ckpt_schedule, train
from helpers.runs import SHORT, one_line_error, set_info


def test_run_directory_contract(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["status"] == "finished" and info["config"]["train"]["seed"] == 1
    assert {"git_commit", "versions", "device", "cpu_capability", "argv", "start_time", "ckpt_steps",
            "eval_steps"} <= info.keys()
    assert info["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "NEON", "SVE256", "ZVECTOR", "VSX")
    assert ck.list_steps(tiny_run) == [0, 1, 5, 10, 15, 20, 25, 30] == info["ckpt_steps"]
    metrics = ck.read_metrics(tiny_run)
    assert [m["step"] for m in metrics] == [1, 5, 10, 15, 20, 25, 30]
    for m in metrics:
        assert 0.0 <= m["p_in"] <= 1.0 and 0.0 <= m["p_ood"] <= 1.0 and m["val_loss"] > 0
    assert metrics[-1]["val_loss"] < metrics[0]["val_loss"]  # it learns something in 30 steps
    assert metrics[0]["lam"] == 2.0 and metrics[-1]["lam"] == 4.0  # the lambda switch at step 12
    words = json.loads((tiny_run / "codewords.json").read_text())["codewords"]
    assert len(words) == len(set(words)) == 512
    ckpt = ck.load_checkpoint(tiny_run, 5)
    assert ckpt["step"] == 5 and ckpt["config"] == info["config"]
    assert not any(p.name.startswith(".") for p in tiny_run.iterdir())  # no temp files left behind


def test_resume_equals_uninterrupted(tiny_run, tmp_path, monkeypatch):
    """Kill a run during step 17 (after the step-15 checkpoint), resume it: the final weights equal those of the
    uninterrupted tiny_run bit for bit, and no eval record is duplicated."""
    import drift.train.trainer as tr
    original = tr._train_step

    def killing_step(model, fwd, opt, ctx, step, state):
        if step == 17:
            raise KeyboardInterrupt
        return original(model, fwd, opt, ctx, step, state)

    run = tmp_path / "killed"
    monkeypatch.setattr(tr, "_train_step", killing_step)
    with pytest.raises(KeyboardInterrupt):
        train(resolve("tiny", seed=1), run, progress=False)
    monkeypatch.setattr(tr, "_train_step", original)
    assert ck.list_steps(run)[-1] == 15
    train(resolve("tiny", seed=1), run, resume=True, progress=False)
    final_a = ck.load_checkpoint(tiny_run, 30)["model"]
    final_b = ck.load_checkpoint(run, 30)["model"]
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    assert [m["step"] for m in ck.read_metrics(run)] == [1, 5, 10, 15, 20, 25, 30]


def test_refuses_to_overwrite_and_bad_resume(tiny_run, tmp_path):
    with pytest.raises(ck.RunError, match="already holds a run"):
        train(resolve("tiny", seed=1), tiny_run, progress=False)
    with pytest.raises(ck.RunError, match="no run.json"):
        train(resolve("tiny", seed=1), tmp_path / "nothing", resume=True, progress=False)


def test_nan_loss_stops_and_keeps_checkpoints(tmp_path, monkeypatch):
    import drift.train.trainer as tr
    original = tr.composite_loss
    calls = {"n": 0}

    def poisoned(logits, y, mask):
        calls["n"] += 1
        lm, probe = original(logits, y, mask)
        return (lm * float("nan"), probe) if calls["n"] > 2 * 12 else (lm, probe)  # NaN from step 13 on

    monkeypatch.setattr(tr, "composite_loss", poisoned)
    run = tmp_path / "nan"
    with pytest.raises(DivergedError, match="step 13"):
        train(resolve("tiny", seed=1), run, progress=False)
    assert ck.list_steps(run) == [0, 1, 5, 10]
    assert json.loads((run / "run.json").read_text())["status"] == "diverged"
    assert ck.read_metrics(run)[-1] == {"step": 13, "diverged": True}


def test_corrupt_and_missing_checkpoints_name_the_file(tiny_run_copy):
    path = ck.ckpt_path(tiny_run_copy, 10)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ck.RunError, match="ckpt_000010.pt is corrupt"):
        ck.load_checkpoint(tiny_run_copy, 10)
    path.unlink()
    with pytest.raises(ck.RunError, match="ckpt_000010.pt is missing"):
        ck.load_checkpoint(tiny_run_copy, 10)
    with pytest.raises(ck.RunError, match="does not exist"):
        ck.list_steps(tiny_run_copy / "nope")


def test_dense_checkpoint_windows():
    cfg = resolve("paper", overrides=["total_steps=4000", "dense_ckpt=600:2000:50,2000:4000:100"])
    steps = ckpt_schedule(cfg)
    assert steps[:5] == [0, 1, 200, 400, 600] and 650 in steps and 2100 in steps and 2150 not in steps
    assert len([s for s in steps if 600 <= s <= 2000]) == 29


def test_train_cli_errors_are_one_line(tmp_path):
    out = subprocess.run([sys.executable, "train.py", "--preset", "tiny", "--out", str(tmp_path / "x"),
                          "n_layers=3"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown config key 'n_layers'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_resuming_a_finished_run_changes_nothing(tiny_run_copy):
    before = (tiny_run_copy / "run.json").read_text()
    info = train(resolve("tiny", seed=1), tiny_run_copy, resume=True, progress=False)
    assert info["status"] == "finished" and (tiny_run_copy / "run.json").read_text() == before


# ---------------------------------------------------------------------------------------------------------------
# Refusals: a run killed before its first resume point, --out naming a file, a mismatched resume
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
        assert way_out in one_line_error(capsys, "train.py")
    assert train_script.main(["--restart", str(run), "--no-progress"]) == 0
    assert ck.read_json(run / "run.json")["status"] == "finished" and ck.list_steps(run) == [0, 1, 5, 6]

def test_out_naming_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert train_script.main(["--preset", "tiny", "--out", str(f), "--no-progress"]) == 2
    assert "is a file, not a run directory" in one_line_error(capsys, "train.py")
    assert f.read_text() == "x"

def test_resume_refuses_mismatched_seed_preset_and_out(tiny_run_copy, tmp_path, capsys):
    base = ["--resume", str(tiny_run_copy), "--no-progress"]
    for extra, expect in ((["--seed", "4"], "--seed 4 disagrees with the run's seed 1"),
                          (["--preset", "cpu"], "--preset cpu disagrees"),
                          (["--out", str(tmp_path / "elsewhere")], "not --out")):
        assert train_script.main(base + extra) == 2
        assert expect in one_line_error(capsys, "train.py")
    set_info(tiny_run_copy, preset="tiny")
    assert train_script.main(base + ["--preset", "tiny", "--seed", "1"]) == 0  # agreeing options are fine


# ---------------------------------------------------------------------------------------------------------------
# Checked before anything is written: the seed, the bounds, --init-from; the loop lists no schedule
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [(["--seed", "-1"], "--seed -1: must be a whole number in [0, 4294967295]"),
                                           (["seed=-1"], "seed=-1: must lie in [0, 4294967295]")])
def test_a_bad_seed_writes_nothing(argv, message, tmp_path, capsys):
    """Before: numpy refused the seed at the first step, after run.json and ckpt_000000.pt were written, leaving a
    directory that neither --restart (same seed) nor a new start (a run is there) could use."""
    out = tmp_path / "neg"
    try:
        code = train_script.main(["--preset", "tiny", "--out", str(out), "--no-progress", *argv])
    except SystemExit as e:  # refused by the command line's checks
        code = e.code
    assert code == 2 and message in one_line_error(capsys, "train.py") and not out.exists()


def test_total_steps_1e20_is_refused_at_once(tmp_path):
    """The tester's command: before, the trainer listed every checkpoint step and grew to 22 GB."""
    out = tmp_path / "huge"
    done = subprocess.run([sys.executable, "train.py", "--preset", "tiny", "--out", str(out),
                           "total_steps=100000000000000000000"], capture_output=True, text=True, timeout=60)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and "at most 10,000,000 steps" in err[0], done.stderr
    assert not out.exists()


@pytest.mark.parametrize("overrides", [[], ["dense_ckpt=3:11:2,7:30:5"], ["ckpt_every=7", "eval_every=4"],
                                       ["ckpt_every=100", "eval_every=100"], ["total_steps=1", "ckpt_every=1"]])
def test_the_loop_asks_the_schedule_arithmetically(overrides, monkeypatch):
    """is_ckpt_step / is_eval_step agree with the listed schedules (run.json's), which the loop no longer builds."""
    from drift.train import trainer as tr
    cfg = resolve("tiny", overrides=overrides)
    span = range(-2, cfg.train.total_steps + 3)
    assert [s for s in span if tr.is_ckpt_step(s, cfg)] == tr.ckpt_schedule(cfg)
    assert [s for s in span if tr.is_eval_step(s, cfg)] == tr.eval_schedule(cfg)


def test_the_schedule_is_listed_once_for_run_json(tmp_path, monkeypatch):
    from drift.train import trainer as tr
    calls = []
    for name in ("ckpt_schedule", "eval_schedule"):
        real = getattr(tr, name)
        monkeypatch.setattr(tr, name, lambda cfg, real=real, name=name: calls.append(name) or real(cfg))
    info = train(resolve("tiny", seed=1, overrides=SHORT), tmp_path / "r", progress=False)
    assert sorted(calls) == ["ckpt_schedule", "eval_schedule"]  # before: once more each, as sets, by the loop
    assert info["ckpt_steps"] == ck.list_steps(tmp_path / "r") == [0, 1, 5, 6]


def test_init_from_is_checked_before_writing(tiny_run, tmp_path, capsys):
    """Before: a missing file or another model's weights stopped the run after codewords.json was written, the
    second with torch's multi-line size-mismatch report."""
    out = tmp_path / "x"
    base = ["--preset", "tiny", "--out", str(out), "--no-progress", *SHORT]
    for init, extra, message in ((tmp_path / "none.pt", [], "is missing"),
                                 (tiny_run / "ckpt_000030.pt", ["n_layer=3"], "holds another model than this")):
        assert train_script.main(base + extra + ["--init-from", str(init)]) == 2
        assert message in one_line_error(capsys, "train.py") and not out.exists()
    assert train_script.main(base + ["--init-from", str(tiny_run / "ckpt_000030.pt")]) == 0
    start = ck.load_checkpoint(out, 0)["model"]
    assert all(torch.equal(v, ck.load_checkpoint(tiny_run, 30)["model"][k]) for k, v in start.items())


# ---------------------------------------------------------------------------------------------------------------
# Ctrl-C: one line, run.json "interrupted", and the run continues with --resume
# ---------------------------------------------------------------------------------------------------------------

def test_ctrl_c_is_one_line_and_the_run_resumes(tmp_path):
    """Before: a 26-line KeyboardInterrupt traceback and exit status -2 (run.json was already marked)."""
    import signal
    import time
    out = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "train.py", "--preset", "tiny", "--seed", "1", "--out", str(out),
                             "--no-progress", "total_steps=100000", "ckpt_every=5"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "resume.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1].strip().splitlines()
    assert proc.returncode == 130, err
    assert [line for line in err if "data split" not in line] == [
        f"train.py: interrupted (Ctrl-C); {out}/run.json says interrupted; continue with "
        f"`python train.py --resume {out}`"], err
    info = ck.read_json(out / "run.json")
    assert info["status"] == "interrupted" and info["error"] == "KeyboardInterrupt (Ctrl-C)"
