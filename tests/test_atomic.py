"""drift/atomic.py: the one atomic writer (a same-directory temporary, then rename).

Run: pytest tests/test_atomic.py
"""
import os

import pytest

from drift.atomic import atomic_path


def test_renames_on_success_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with atomic_path(target, fsync=True) as tmp:
        assert tmp.parent == tmp_path and tmp.name == f".a.json.tmp{os.getpid()}"
        tmp.write_text("new")
        assert target.read_text() == "old"  # the real name changes only at the rename
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_failure_removes_the_temporary_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(ZeroDivisionError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            1 / 0
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_the_callers_error_is_raised_after_cleanup(tmp_path):
    seen = []

    def named(e):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))  # called while the temporary still exists
        return ValueError(f"cannot write a.json: {type(e).__name__}") if isinstance(e, OSError) else None

    with pytest.raises(ValueError, match="cannot write a.json: OSError"):
        with atomic_path(tmp_path / "a.json", error=named) as tmp:
            tmp.write_text("half")
            raise OSError("disk full")
    assert seen == [[f".a.json.tmp{os.getpid()}"]] and not list(tmp_path.iterdir())
    with pytest.raises(KeyError):  # None from the hook: the original exception
        with atomic_path(tmp_path / "a.json", error=named):
            raise KeyError("x")
