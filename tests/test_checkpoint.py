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
