"""One writer per run directory: an exclusive lock held for the whole life of a training process.

Two trainers writing one directory interleave metrics.jsonl and overwrite each other's checkpoints, and both exit 0
(a `kill -9` of run_seed.sh leaves its trainer running, so the next run_seed.sh starts a second one). The trainer
therefore holds `<run>/run.lock` (fcntl.flock, released by the kernel when the process dies, however it dies). The
file names its holder (pid, host, start time), so a refused writer can say who holds it. A lock file left by a
process that died is free to flock; when it names a pid that no longer runs on this host it is taken over, and
said so. Released cleanly, the file is removed.

    with RunLock("runs/cpu_s42"):      # RunError naming the holder if another process writes there
        ...
    holder("runs/cpu_s42")             # {"pid", "host", "start_time"} of a live holder, else None
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import sys
import time
from pathlib import Path

from drift.run.checkpoint import RunError

LOCK_NAME = "run.lock"
_TMP_RE = re.compile(r"^\..+\.tmp(\d+)$")  # drift.atomic: .<name>.tmp<pid>


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(run_dir) -> list[Path]:
    """Delete temporary files left in run_dir by writers that died (a failed write of a full disk, a kill -9), so
    they do not keep the disk full. Called with the lock held, so no other trainer writes there."""
    removed = []
    for p in Path(run_dir).iterdir():
        m = _TMP_RE.match(p.name)
        if m and p.is_file() and (int(m.group(1)) == os.getpid() or not pid_alive(int(m.group(1)))):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _describe(h: dict) -> str:
    return f"pid {h.get('pid', '?')} on {h.get('host', '?')} since {h.get('start_time', '?')}"


def _read_holder(path: Path) -> dict:
    try:
        holder = json.loads(path.read_bytes().decode("utf-8") or "{}")
    except (OSError, ValueError):  # unreadable, not UTF-8 (a UnicodeDecodeError is a ValueError), not JSON
        return {}
    return holder if isinstance(holder, dict) else {}


def holder(run_dir) -> dict | None:
    """The live holder of the run directory's lock, or None when no process holds it."""
    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # nobody holds it exclusively
    except OSError:
        return _read_holder(path) or {"pid": "?", "host": "?", "start_time": "?"}
    finally:
        os.close(fd)


def held_error(run_dir, h: dict) -> RunError:
    return RunError(f"{run_dir} is being written by another process ({_describe(h)}); wait for it to finish or "
                    f"stop it, or choose another --out")


def refuse_if_held(run_dir) -> None:
    """The early form of the lock's refusal, for checks made before the lock is taken."""
    h = holder(run_dir)
    if h is not None:
        raise held_error(run_dir, h)


class RunLock:
    """Exclusive, non-blocking lock on <run_dir>/run.lock; a context manager. The directory must exist."""

    def __init__(self, run_dir, quiet: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.quiet = quiet
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise RunError(f"cannot create the run lock {self.path}: {e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunError(f"cannot lock {self.path}: {e.strerror}") from None
                raise held_error(self.run_dir, _read_holder(self.path)) from None
            # The previous holder may have removed the file between our open and flock: lock the file at the path.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        self._take_over(_read_holder(self.path))
        me = {"pid": os.getpid(), "host": socket.gethostname(), "start_time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        except OSError as e:
            self.release()
            raise RunError(f"cannot write the run lock {self.path}: {e.strerror}") from None
        return self

    def _take_over(self, old: dict) -> None:
        """A lock file with content and no flock holder was left by a process that died."""
        if not old or self.quiet:
            return
        here = old.get("host") == socket.gethostname()
        dead = here and isinstance(old.get("pid"), int) and not pid_alive(old["pid"])
        why = "no longer running" if dead else "not holding it"
        print(f"{self.run_dir}: taking over a stale run lock ({_describe(old)}, {why})", file=sys.stderr)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still locked, so no other process can hold the removed file
        except OSError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
