"""Helpers the tests share for run directories: a short tiny run, the one-line error check, run.json edits, a pid
that is certainly dead.
"""
import subprocess

from drift.run import checkpoint as ck

SHORT = ["total_steps=6"]  # checkpoints 0, 1, 5, 6: a run in a few seconds


def one_line_error(capsys, prog: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith(f"{prog}: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def set_info(run_dir, **fields):
    info = ck.read_json(run_dir / "run.json")
    info.update(fields)
    ck.atomic_write_json(info, run_dir / "run.json")
