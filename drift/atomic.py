"""Atomic file writes: write through a temporary name in the same directory, then rename, so a crash or a full disk
never leaves half a file under the real name. Standard library only (drift.bootstrap uses it before the requirements
are installed).

    with atomic_path(Path("runs/cpu_s42/run.json")) as tmp:   # tmp = runs/cpu_s42/.run.json.tmp<pid>
        tmp.write_text(text)

The temporary is `.<name>.tmp<pid>` (drift.run.lock removes such files left by dead processes); on any failure it
is removed and the exception propagates, or `error(e)`'s exception does when the caller names its own.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterator


@contextlib.contextmanager
def atomic_path(path: Path, fsync: bool = False,
                error: Callable[[BaseException], BaseException | None] | None = None) -> Iterator[Path]:
    """Yield the temporary name for `path`; rename it onto `path` when the body succeeds (after an fsync when asked).
    On failure: `error(e)` is called first (while the temporary still holds its space, so a full disk can be
    named), then the temporary is removed, then its result (or, when it is None or not given, `e`) is raised."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        replacement = error(e) if error is not None else None
        with contextlib.suppress(OSError):
            # truncate first: a writer can keep the file open (a traceback holds it), and an unlinked but open file
            # keeps its blocks, so the disk would stay full
            os.truncate(tmp, 0)
        with contextlib.suppress(OSError):
            tmp.unlink()
        if replacement is None:
            raise
        raise replacement from None
