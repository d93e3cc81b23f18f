"""Tests for the stage stamps (drift/run/stages.py, run_seed.sh, the Makefile) and for what `train.py --restart`
clears: a stage is done only while its stamp agrees with its outputs and with its input stages, and a restart leaves
nothing that was made from the old run.

Most tests plant a stage's declared outputs (each glob's `*` read as `x`) instead of running it; the run_seed.sh
and make tests run the real scripts with a stand-in interpreter that writes a stage's outputs in place of the
analysis (the stamps themselves are checked and written by the real one). The slow test runs the real tiny
pipeline and checks that every file the stages leave is one they declare.

Run: pytest tests/test_stamps.py          (pytest -m slow tests/test_stamps.py for the real pipeline)
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import train as train_script
from drift.config import resolve
from drift.run import stages as st
from drift.run.lock import RunLock
from drift.train.trainer import train
from helpers.runs import SHORT, one_line_error

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"trajectory": "trajectory_pca_uncentered.py", "nulls": "trajectory_nulls.py",
           "updates": "backbone_update_analysis.py"}


def stamp(run: Path, name: str) -> Path:
    return run / ".stages" / f"{name}.done"


def plant(run: Path, name: str, tag: str = "1") -> list[Path]:
    """Write every output stage `name` declares, each holding `name tag`."""
    paths = [run / pattern.replace("*", "x") for pattern in st.stage_of(stamp(run, name)).outputs]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{name} {tag}\n")
    return paths


def done(run: Path, *names: str, tag: str = "1") -> None:
    for name in names:
        plant(run, name, tag)
        st.write(stamp(run, name))


# ---------------------------------------------------------------------------------------------------------------
# The stamp agrees with its outputs and inputs, or the stage is not done
# ---------------------------------------------------------------------------------------------------------------

def test_a_deleted_or_changed_output_undoes_the_stage(tmp_path):
    done(tmp_path, "train", "trajectory")
    record = json.loads(stamp(tmp_path, "trajectory").read_text())
    assert sorted(record["outputs"]) == ["analysis/trajectory_pca.json", "figures/trajectory_x.pdf",
                                         "figures/trajectory_x.png"]
    assert st.check(stamp(tmp_path, "trajectory")) == (True, None)
    out = tmp_path / "analysis/trajectory_pca.json"
    out.unlink()
    assert st.check(stamp(tmp_path, "trajectory")) == (False, "analysis/trajectory_pca.json is missing")
    out.write_text("trajectory 2\n")  # the same size, other bytes: the digest, not the size, tells
    assert st.check(stamp(tmp_path, "trajectory")) == (False, "analysis/trajectory_pca.json changed since the stage ran")
    assert st.check(stamp(tmp_path, "fisher")) == (False, None)  # never run: no note


def test_a_redone_input_stage_undoes_the_stages_that_read_it(tmp_path):
    done(tmp_path, "train", "trajectory", "nulls", "updates")
    st.write(stamp(tmp_path, "trajectory"))  # stamped again over the same outputs: nothing changed
    assert st.check(stamp(tmp_path, "nulls")) == (True, None)
    done(tmp_path, "trajectory", tag="2")
    assert st.check(stamp(tmp_path, "nulls")) == (False, "its input stage 'trajectory' was redone since")
    assert st.check(stamp(tmp_path, "updates")) == (True, None)  # updates does not read trajectory's outputs
    stamp(tmp_path, "train").unlink()
    assert st.check(stamp(tmp_path, "updates")) == (False, "its input stage 'train' is not done")


def test_a_stage_done_later_undoes_a_stage_that_ran_without_it(tmp_path):
    """figures drawn while reheat was skipped are redrawn once reheat is done."""
    done(tmp_path, "train", "trajectory", "nulls", "updates", "gradients", "fisher", "figures")
    assert st.check(stamp(tmp_path, "figures")) == (True, None)
    done(tmp_path, "reheat")
    assert st.check(stamp(tmp_path, "figures")) == (False, "its input stage 'reheat' was done since")


def test_a_stamp_needs_every_declared_output(tmp_path):
    plant(tmp_path, "trajectory")
    for fig in (tmp_path / "figures").glob("trajectory_x.p*"):
        fig.unlink()
    with pytest.raises(st.StampError, match=r"left no file matching figures/trajectory_\*\.pdf"):
        st.write(stamp(tmp_path, "trajectory"))
    assert not stamp(tmp_path, "trajectory").exists()


def test_a_rerun_that_does_not_bring_an_output_back_is_refused(tmp_path):
    """A finished run's trainer does not rewrite a deleted checkpoint: the train stage stays not done and the way
    out is named."""
    done(tmp_path, "train")
    before = stamp(tmp_path, "train").read_text()
    (tmp_path / "ckpt_x.pt").unlink()
    assert st.check(stamp(tmp_path, "train")) == (False, "ckpt_x.pt is missing")
    (tmp_path / "ckpt_000000.pt").write_text("another checkpoint")  # what a rerun may leave: not the lost one
    with pytest.raises(st.StampError, match=re.escape(f"start it over with `python train.py --restart {tmp_path}`")):
        st.write(stamp(tmp_path, "train"))
    assert stamp(tmp_path, "train").read_text() == before


def test_large_files_are_fingerprinted_by_size_and_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "FULL_DIGEST_MAX", 1000)
    monkeypatch.setattr(st, "END_BYTES", 100)
    big = tmp_path / "big"
    data = bytearray(range(256)) * 20
    big.write_bytes(data)
    fp = st.fingerprint(big)
    assert set(fp) == {"size", "xxh3_128_ends"} and fp["size"] == 5120
    for at in (0, len(data) - 1):  # the head, and the tail (a zip's central directory, with every member's CRC)
        changed = bytearray(data)
        changed[at] ^= 1
        big.write_bytes(changed)
        assert st.fingerprint(big) != fp
    big.write_bytes(data + b"\0")
    assert st.fingerprint(big)["size"] == 5121


def test_a_legacy_stamp_is_adopted_when_its_outputs_are_there(tmp_path):
    done(tmp_path, "train")
    plant(tmp_path, "trajectory")
    stamp(tmp_path, "trajectory").write_text("2025-01-01T00:00:00Z\n")  # what run_seed.sh wrote before
    ok, note = st.check(stamp(tmp_path, "trajectory"))
    assert ok and "before output lists" in note
    assert "analysis/trajectory_pca.json" in json.loads(stamp(tmp_path, "trajectory").read_text())["outputs"]
    stamp(tmp_path, "nulls").write_text("2025-01-01T00:00:00Z\n")  # nulls.json was never written
    assert st.check(stamp(tmp_path, "nulls")) == (False, "no file matches analysis/nulls.json (a stamp from before "
                                                         "output lists)")


def test_stamp_names_map_to_the_runs_they_stand_for(tmp_path):
    from drift.train import control_runs
    assert control_runs.beta2_run_name is st.beta2_run_name and control_runs.reheat_run_name is st.reheat_run_name
    run = tmp_path / "r"
    assert st.stage_of(stamp(run, "reheat_lr1e-3")).outputs[0] == "reheat/lr0.001/run.json"
    assert st.stage_of(stamp(run, "b0.95_p0.20")).outputs[0] == "b0.95_p0.20/run.json"
    assert st.stage_of(stamp(run, "b0.0")).outputs[0] == "b0.0/run.json"
    assert st.stage_of(stamp(run, "C_prime")).outputs[0] == "C_prime/run.json"
    for bad in (stamp(run, "trajectry"), run / "trajectory.done"):
        with pytest.raises(st.StampError):
            st.stage_of(bad)


def test_one_declaration_for_run_seed_make_and_the_stamps():
    """run_seed.sh's stages, in order, are the declared ones; make's main-run targets cover them; every stamp make
    writes names a declared stage."""
    script = (ROOT / "run_seed.sh").read_text()
    listed = re.search(r'^STAGES=" (.*) "$', script, re.M).group(1).split()
    called = re.findall(r"^stage (\w+) ", script, re.M)
    assert listed == called == list(st.MAIN_RUN)
    makefile = (ROOT / "Makefile").read_text()
    groups = {name: re.search(rf"^STAGES_{name} := (.*)$", makefile, re.M).group(1).split()
              for name in ("check", "fisher")}
    assert groups["check"] + groups["fisher"] + ["reheat", "figures"] == list(st.MAIN_RUN)
    if shutil.which("make"):
        for preset in ("cpu", "paper"):
            targets = subprocess.run(["make", "-s", "print-train-targets", "print-reheat-targets",
                                      f"PRESET={preset}"], cwd=ROOT, capture_output=True, text=True,
                                     check=True).stdout.split()
            assert len(targets) > 10
            for t in targets:
                st.stage_of(Path(t))


def test_cli_check_says_why_and_errors_in_one_line(tmp_path, capsys):
    done(tmp_path, "train", "trajectory")
    assert st.main(["check", str(stamp(tmp_path, "train")), str(stamp(tmp_path, "trajectory"))]) == 0
    (tmp_path / "figures/trajectory_x.png").unlink()
    assert st.main(["check", str(stamp(tmp_path, "train")), str(stamp(tmp_path, "trajectory"))]) == 1
    assert capsys.readouterr().out == (f"{stamp(tmp_path, 'trajectory')}: figures/trajectory_x.png is missing; "
                                       f"the stage runs again\n")
    assert st.main(["check", str(tmp_path / "x.done")]) == 2
    assert "is not a stage stamp" in one_line_error(capsys, "drift.run.stages")


def test_stage_times_from_stamps_and_trained_runs(tmp_path, capsys):
    """`times`: a stage's recorded seconds; a trained run's loop time from its run.json timers where the stamp has
    none (make's control runs); '-' for an untimed stage; totals over what is known."""
    run = tmp_path / "cpu_s1"
    done(run, "train")
    (run / "run.json").write_text(json.dumps({"timers": {"data": 10.0, "compute": 1100.0, "eval": 90.0}}))
    st.write(stamp(run, "train"))
    plant(run, "trajectory")
    st.write(stamp(run, "trajectory"), seconds=30.04)
    plant(run, "nulls")
    st.write(stamp(run, "nulls"))
    rows = {r["stage"]: r for r in st.stage_times(run)}
    assert rows["train"]["seconds"] == 1200.0 and rows["train"]["source"] == "run.json timers"
    st.write(stamp(run, "train"), seconds=1250.0)  # timed, with start-up: the recorded time counts
    assert {r["stage"]: r["seconds"] for r in st.stage_times(run)}["train"] == 1250.0
    st.write(stamp(run, "train"), seconds=300.0)  # only the last attempt of a resumed training: the timers count
    rows = {r["stage"]: r for r in st.stage_times(run)}
    assert rows["train"]["seconds"] == 1200.0 and rows["train"]["source"] == "run.json timers"
    assert rows["trajectory"]["seconds"] == 30.0 and rows["trajectory"]["source"] == "stamp"
    assert rows["nulls"]["seconds"] is None
    assert st.main(["times", str(run)]) == 0
    out = capsys.readouterr().out
    assert "   20.5 min  (1 stage(s) not timed)" in out and "(run.json timers)" in out
    with pytest.raises(SystemExit):
        st.main(["write", str(stamp(run, "nulls")), "--seconds", "-1"])
    assert "--seconds -1.0: must be a finite number >= 0" in capsys.readouterr().err
    # a run copied from another (beta2_sweep.py --reuse): the copy's own time counts, not the source's loop
    (run / "run.json").write_text(json.dumps({"timers": {"compute": 1100.0}, "reused_from": {"run_dir": "A"}}))
    rows = {r["stage"]: r for r in st.stage_times(run)}
    assert rows["train"]["seconds"] == 300.0 and rows["train"]["source"] == "stamp"


def test_slot_stamps_a_stage_that_succeeds_with_its_wall_time(tmp_path):
    """`stages slot --stamp`: a command that succeeds in its slot gets its stage stamp with the command's seconds (so
    make's control, beta2 and reheating stages are timed too); a failing one gets none; one that leaves no output
    is refused in one line."""
    run = tmp_path / "ctrl_s1"
    done_stamp = stamp(run, "analysis")
    outputs = [str(run / pattern.replace("*", "x")) for pattern in st.stage_of(done_stamp).outputs]
    plant_code = ("import pathlib, time; time.sleep(0.3)\n"
                  f"for p in {outputs!r}: pathlib.Path(p).parent.mkdir(parents=True, exist_ok=True); "
                  "pathlib.Path(p).write_text('x')")

    def slot(target: Path, code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "drift.run.stages", "slot", "--stamp", str(target), "--lock-dir",
                               str(tmp_path / ".slots"), "--threads", "1", "--", sys.executable, "-c", code],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    failed = slot(done_stamp, plant_code + "\nraise SystemExit(3)")
    assert failed.returncode == 3 and not done_stamp.exists()
    ok = slot(done_stamp, plant_code)
    assert ok.returncode == 0, ok.stderr
    record = json.loads(done_stamp.read_text())
    assert 0.3 <= record["seconds"] < 30 and set(record["outputs"]) == {o[len(str(run)) + 1:] for o in outputs}
    assert [r["seconds"] for r in st.stage_times(run)] == [record["seconds"]]
    empty = stamp(tmp_path / "ctrl_s2", "analysis")
    refused = slot(empty, "pass")
    assert refused.returncode == 2 and not empty.exists()
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("drift.run.stages: error: stage 'analysis'")
    assert "it is not marked done" in refused.stderr


# ---------------------------------------------------------------------------------------------------------------
# run_seed.sh and make redo a stage whose output was deleted (the stages themselves stood in for)
# ---------------------------------------------------------------------------------------------------------------

def stand_in_python(tmp_path: Path) -> tuple[Path, Path]:
    """(interpreter, call log): `-m drift.run.stages` runs for real; an analysis script writes its stage's declared
    outputs (new bytes each time) and logs its name."""
    calls = tmp_path / "calls.log"
    cases = "".join(f'  {script}) files="{" ".join(p.replace("*", "x") for p in st.MAIN_RUN[name].outputs)}" ;;\n'
                    for name, script in SCRIPTS.items())
    fake = tmp_path / "python"
    fake.write_text(f'#!/usr/bin/env bash\n[[ "$1 $2" == "-m drift.run.stages" ]] && exec {sys.executable} "$@"\n'
                    f'echo "$1" >> {calls}\ncase "$1" in\n{cases}  *) exit 1 ;;\nesac\n'
                    f'for f in $files; do mkdir -p "$(dirname "$2/$f")"; echo "$1 $$ $RANDOM" > "$2/$f"; done\n')
    fake.chmod(0o755)
    return fake, calls


def test_run_seed_redoes_a_stage_whose_output_was_deleted(tmp_path):
    run = tmp_path / "run"
    done(run, "train", "trajectory", "nulls", "updates")
    fake, calls = stand_in_python(tmp_path)

    def run_seed() -> tuple[str, list[str]]:
        calls.write_text("")
        out = subprocess.run(["bash", "run_seed.sh", "1", "--preset", "tiny", "--out", str(run), "--only",
                              ",".join(SCRIPTS)], cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake)},
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout, calls.read_text().split()

    stdout, ran = run_seed()
    assert ran == [] and stdout.count("already done") == 3
    (run / "analysis/trajectory_pca.json").unlink()
    stdout, ran = run_seed()
    assert f"== [trajectory] {stamp(run, 'trajectory')}: analysis/trajectory_pca.json is missing; the stage runs " \
           f"again" in stdout
    assert f"== [nulls] {stamp(run, 'nulls')}: its input stage 'trajectory' was redone since" in stdout
    assert ran == ["trajectory_pca_uncentered.py", "trajectory_nulls.py"] and "== [updates] already done" in stdout
    assert "all stages done" in stdout and (run / "analysis/trajectory_pca.json").exists()
    # the stages run_seed.sh ran carry their wall time; the planted one it skipped does not
    assert json.loads(stamp(run, "trajectory").read_text())["seconds"] >= 0
    assert "seconds" not in json.loads(stamp(run, "updates").read_text())
    stdout, ran = run_seed()
    assert ran == [] and stdout.count("already done") == 3


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_make_redoes_a_target_whose_output_was_deleted(tmp_path):
    """`make <run>/.stages/fisher.done` covers trajectory..fisher: deleting trajectory_pca.json makes it due
    (make -n: what would run, without running it)."""
    run = tmp_path / "root" / "tiny_s1"
    done(run, *st.MAIN_RUN)

    def make_n() -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-n", f"PYTHON={sys.executable}", f"ROOT={tmp_path / 'root'}", "PRESET=tiny",
                               "SEEDS=1", str(stamp(run, "fisher"))], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)

    assert "is up to date" in make_n().stdout
    (run / "analysis/trajectory_pca.json").unlink()
    out = make_n()
    assert f"{stamp(run, 'trajectory')}: analysis/trajectory_pca.json is missing; the stage runs again" in out.stderr
    assert "run_seed.sh 1 --preset tiny" in out.stdout and "--only trajectory,nulls,updates,gradients,horizon,fisher" in out.stdout


# ---------------------------------------------------------------------------------------------------------------
# --restart clears what was made from the old run
# ---------------------------------------------------------------------------------------------------------------

DERIVED = ["analysis/trajectory_pca.json", "analysis/gram_cache.npz", "figures/fisher.pdf", ".stages/fisher.done",
           ".stages/analyses.log", "reheat/lr0.001/run.json", "environment.txt"]


@pytest.fixture
def short_run_with_outputs(tmp_path):
    run = tmp_path / "run"
    train(resolve("tiny", seed=1, overrides=SHORT), run, progress=False)
    for rel in DERIVED:
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text("made from the old run")
    return run


def test_restart_clears_derived_outputs(short_run_with_outputs, capsys):
    run = short_run_with_outputs
    (run / "notes.txt").write_text("the user's")
    assert train_script.main(["--restart", str(run), "--no-progress"]) == 0
    assert [rel for rel in DERIVED if (run / rel).exists()] == []
    assert not any((run / d).exists() for d in ("analysis", "figures", ".stages", "reheat"))
    assert (run / "notes.txt").read_text() == "the user's"  # only what the run and its pipeline wrote goes
    said = [line for line in capsys.readouterr().err.splitlines() if "restarting from step 0" in line]
    assert said == [f"{run}: restarting from step 0; removed .stages/, analysis/, codewords.json, environment.txt, "
                    f"figures/, metrics.jsonl, reheat/, resume.pt, run.json, 4 checkpoints"]
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_restart_refuses_while_a_reheating_run_trains(short_run_with_outputs, capsys):
    run = short_run_with_outputs
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    with RunLock(run / "reheat/lr0.001", quiet=True):
        assert train_script.main(["--restart", str(run), "--no-progress"]) == 2
    assert "reheat/lr0.001 is being written by another process" in one_line_error(capsys, "train.py")
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_restart_help_says_what_it_deletes(capsys):
    with pytest.raises(SystemExit):
        train_script.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "analysis/, figures/, reheat/, .stages/" in text and "Gram cache" in text


# ---------------------------------------------------------------------------------------------------------------
# The real pipeline leaves exactly what its stages declare
# ---------------------------------------------------------------------------------------------------------------

CACHES = {"analysis/gram_cache.npz", "analysis/directions.pt"}  # shared caches: no stage's output (see stages.py)


@pytest.mark.slow  # the whole tiny pipeline, about a minute on 2 cores
def test_every_file_the_pipeline_leaves_is_declared(tmp_path):
    run = tmp_path / "tiny_s1"
    subprocess.run(["bash", "run_seed.sh", "1", "--preset", "tiny", "--out", str(run)], cwd=ROOT, check=True,
                   capture_output=True, env={**os.environ, "PYTHON": sys.executable}, timeout=900)
    listed = set()
    for name in st.MAIN_RUN:
        assert st.check(stamp(run, name)) == (True, None)
        listed |= set(json.loads(stamp(run, name).read_text())["outputs"])
    left = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    unclaimed = {f for f in left - listed - CACHES if not f.startswith(".stages/") and not f.endswith("resume.pt")}
    assert unclaimed == set()
