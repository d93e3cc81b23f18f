"""Tests for drift.run.lock: one writer per run directory, across processes and within one; a stale lock is taken
over.

Run: pytest tests/test_lock.py
"""

import os
import subprocess
import sys
import textwrap

import pytest

from drift.config import resolve
from drift.run import checkpoint as ck
from drift.run.lock import LOCK_NAME, RunLock, holder
from drift.train.trainer import train
from helpers.runs import SHORT


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
