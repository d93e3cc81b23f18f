"""Keep glibc's allocator from handing large buffers back to the kernel after every step.

By default glibc serves any allocation above a dynamic threshold (at most 32 MiB) with its own mmap and returns it
with munmap when it is freed, and trims the heap top whenever more than 128 KiB is free there. A training step
allocates and frees the same large buffers every time (the cpu preset's logits alone are 32 x 128 x 2,636 floats,
43 MB), so every step faults those pages back in: about 90,000 minor page faults and 170-210 ms of kernel time
per step measured on the cpu preset, a fifth of the step. Raising the mmap and trim thresholds keeps freed memory
in the heap for the next step; the arithmetic is untouched (tests/test_alloc.py checks checkpoints bit-identical).

`tune()` runs once when the package is imported (drift/__init__.py), so train.py, every analysis and the tests get
it without an environment variable to remember. It is a no-op off glibc (macOS, musl), under an allocator that
replaces malloc through LD_PRELOAD (tcmalloc, jemalloc: they do their own caching), and with DRIFT_MALLOC=default.
run.json records what it did (`allocator`).

    python -c "import drift.alloc as a; print(a.STATE)"
"""
from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
# Buffers up to 1 GiB stay in the heap (a paper-size CPU logits tensor, 3.3 GB, is still mmapped and returned);
# the heap top is never trimmed below 2 GiB of free space; each heap growth asks for 64 MiB more than it needs.
SETTINGS = {"mmap_threshold": 1 << 30, "trim_threshold": (1 << 31) - 1, "top_pad": 64 << 20}
_PARAMS = {"mmap_threshold": _M_MMAP_THRESHOLD, "trim_threshold": _M_TRIM_THRESHOLD, "top_pad": _M_TOP_PAD}
_REPLACEMENTS = ("tcmalloc", "jemalloc", "mimalloc")

STATE: dict = {"allocator": "untouched"}


def _skip_reason() -> str | None:
    if os.environ.get("DRIFT_MALLOC", "").lower() == "default":
        return "DRIFT_MALLOC=default"
    preload = os.environ.get("LD_PRELOAD", "")
    for name in _REPLACEMENTS:
        if name in preload:
            return f"{name} preloaded"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return f"not glibc ({platform.system()})"
    return None


def tune() -> dict:
    """Apply SETTINGS through mallopt once per process; return (and keep in STATE) what was done."""
    global STATE
    if STATE.get("allocator") != "untouched":
        return STATE
    reason = _skip_reason()
    if reason is not None:
        STATE = {"allocator": "system", "tuned": False, "why": reason}
        return STATE
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError) as e:
        STATE = {"allocator": "system", "tuned": False, "why": f"mallopt unavailable ({e})"}
        return STATE
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; an older glibc refuses an mmap threshold above 32 MiB, so fall back to that
    applied = {}
    for name, value in SETTINGS.items():
        ok = mallopt(_PARAMS[name], value) == 1
        if not ok and name == "mmap_threshold":
            value = 32 << 20
            ok = mallopt(_PARAMS[name], value) == 1
        if ok:
            applied[name] = value
    STATE = {"allocator": "glibc", "tuned": bool(applied), "glibc": platform.libc_ver()[1], **applied}
    return STATE
