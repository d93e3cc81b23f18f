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


def rewrite_checkpoint(run_dir, step: int, delta: float = 1e-3) -> None:
    """Save `step` again with every tensor shifted by `delta` and fresh digests: what retraining into the directory
    leaves (another content, a consistent file)."""
    ckpt = ck.load_checkpoint(run_dir, step)
    shifted = set()
    for t in ckpt["model"].values():  # in place, once per storage: tied weights stay tied (and the file its size)
        if t.untyped_storage().data_ptr() not in shifted:
            shifted.add(t.untyped_storage().data_ptr())
            t.add_(delta)
    ck.save_checkpoint(run_dir, step, ckpt["model"], ckpt["config"], ckpt.get(ck.RUN_ID))
