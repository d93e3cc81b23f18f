"""Tests for run_seed.sh: a TERM stops the stage it started.

Run: pytest tests/test_run_seed.py
"""

import os
import signal
import subprocess
import sys
import time

import pytest


def test_run_seed_forwards_term_to_its_stage(tmp_path):
    """kill (TERM) of run_seed.sh stops the trainer it started instead of leaving it writing the run."""
    fake = tmp_path / "fakepython"
    pidfile = tmp_path / "stage.pid"
    # stamps are checked and written by the real interpreter; every other stage but training does nothing
    fake.write_text(f"#!/usr/bin/env bash\n[[ \"$1 $2\" == '-m drift.run.stages' ]] && exec {sys.executable} \"$@\"\n"
                    f"[[ \"$1\" == train.py ]] || exit 0\necho $$ > {pidfile}\nexec sleep 60\n")
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
