"""Tests for drift.run.checkpoint's writes on a full or read-only disk: the file named, no temporary left, run.json
not left running.

Run: pytest tests/test_checkpoint.py
"""

import errno
import os

import pytest
import torch

import train as train_script
from drift.config import resolve
from drift.run import checkpoint as ck
from drift.train.trainer import train
from helpers.runs import SHORT, dead_pid, one_line_error


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
    stale = run / f".ckpt_000005.pt.tmp{dead_pid()}"
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
    assert one_line_error(capsys, "train.py") == (f"train.py: error: cannot write {run / 'metrics.jsonl'}: "
                                                   f"{os.strerror(code)}")
    assert ck.read_json(run / "run.json")["status"] == "failed"


# ---------------------------------------------------------------------------------------------------------------
# Damaged run.json and analysis JSON: one line naming the file, in every reader
# ---------------------------------------------------------------------------------------------------------------

def test_read_json_names_the_file_for_every_kind_of_damage(tmp_path):
    f = tmp_path / "x.json"
    for content, message in ((b'{"a": "\xff"}', "is not UTF-8 text"), (b'{"a": 1', "is not valid JSON"),
                             (b"[1, 2]", "holds a JSON array, not an object"), (b"null", "holds a JSON null"),
                             (b"[" * 100_000, "is not valid JSON")):  # deeper than the parser's recursion limit
        f.write_bytes(content)
        with pytest.raises(ck.RunError, match=message) as e:
            ck.read_json(f, "analysis")
        assert str(f) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ck.RunError, match="cannot read"):
        ck.read_json(tmp_path)  # a directory
    f.write_text('{"results": {"trunk": {}}}')
    data = ck.read_json(f)
    with pytest.raises(ck.RunError, match=f"{f} has no 'pc1' where one is expected") as e:
        data["results"]["trunk"]["pc1"]
    assert isinstance(e.value, KeyError) and data.get("nope") is None  # code that expects a KeyError still works


BROKEN_CONFIGS = [{"config": None}, {"config": {"model": {}, "train": []}}, {"config": {"model": {"n_layers": 2},
                  "train": {}}}, {"config": {"model": {"n_layer": "two"}, "train": {}}},
                  {"config": {"model": {}, "train": {"seed": -1}}}]


@pytest.mark.parametrize("info", BROKEN_CONFIGS, ids=["null", "train-not-object", "unknown-field", "wrong-type",
                                                      "out-of-range"])
def test_a_broken_config_in_run_json_is_one_line_everywhere(info, tiny_run_copy, tmp_path, capsys):
    """Before: a TypeError or AttributeError traceback from every reader of run.json."""
    import json
    import backbone_update_analysis
    import make_report
    import trajectory_pca_uncentered
    run = tiny_run_copy
    (run / "run.json").write_text(json.dumps({**ck.read_json(run / "run.json"), **info}))
    for module, prog, argv in (
            (trajectory_pca_uncentered, "trajectory_pca_uncentered.py", [str(run), "--no-figures", "--no-progress"]),
            (backbone_update_analysis, "backbone_update_analysis.py", [str(run)]),
            (make_report, "make_report.py", ["--runs", str(run), "--out", str(tmp_path / "gen"), "--quiet"]),
            (train_script, "train.py", ["--resume", str(run), "--no-progress"])):
        assert module.main(argv) == 2
        line = one_line_error(capsys, prog)
        assert f"{run / 'run.json'}" in line, line
    assert not (run / "analysis").exists() and not (tmp_path / "gen").exists()


def test_an_analysis_json_that_is_not_utf8_is_one_line(tiny_run_copy, tmp_path, capsys):
    """Before: a UnicodeDecodeError traceback from trajectory_nulls.py and make_report.py."""
    import make_report
    import trajectory_nulls
    import trajectory_pca_uncentered
    run = tiny_run_copy
    assert trajectory_pca_uncentered.main([str(run), "--no-figures", "--no-progress"]) == 0
    analysis = run / "analysis" / "trajectory_pca.json"
    analysis.write_bytes(analysis.read_bytes()[:200] + b"\xc3\x28" + analysis.read_bytes()[202:])
    for module, argv in ((trajectory_nulls, [str(run), "--draws", "20", "--no-figures"]),
                         (make_report, ["--runs", str(run), "--out", str(tmp_path / "gen"), "--quiet"])):
        assert module.main(argv) == 2
        assert f"analysis {analysis} is not UTF-8 text" in one_line_error(capsys, f"{module.__name__}.py")
    assert not (run / "analysis" / "nulls.json").exists() and not (tmp_path / "gen").exists()
