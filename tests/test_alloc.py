"""The allocator setting (drift/alloc.py): applied at import, recorded in run.json, the page faults it removes, and
no change to any computed number."""
import json
import os
import platform
import subprocess
import sys

import pytest
import torch

import drift.alloc as alloc
from drift.run import checkpoint as ck

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting applies to glibc only")

# malloc, touch and free 64 MB ten times, and print the minor page faults that cost. (Through libc directly: torch's
# 64-byte-aligned allocations of one repeated size can miss a freed chunk of exactly that size, which hides the
# effect in a two-line loop; a training step's mix of sizes does reuse the heap.)
_FAULTS = """
import ctypes, resource{imp}
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, (ctypes.c_size_t,), (ctypes.c_void_p,)
n = 64 << 20
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    libc.free(p)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _python(code: str, **env) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env}, check=True)
    return out.stdout.strip()


@glibc_only
def test_applied_at_import_and_recorded(tiny_run):
    state = json.loads(_python("import drift, drift.alloc as a, json; print(json.dumps(a.STATE))"))
    assert state["allocator"] == "glibc" and state["tuned"] is True
    assert state["mmap_threshold"] >= 32 << 20 and state["trim_threshold"] == alloc.SETTINGS["trim_threshold"]
    assert json.loads((tiny_run / "run.json").read_text())["allocator"] == alloc.STATE


def test_opt_out_and_preload_leave_malloc_alone():
    off = json.loads(_python("import drift, drift.alloc as a, json; print(json.dumps(a.STATE))", DRIFT_MALLOC="default"))
    assert off == {"allocator": "system", "tuned": False, "why": "DRIFT_MALLOC=default"}
    # a preloaded replacement is detected by name; nothing is preloaded for real here
    pre = json.loads(_python("import os; os.environ['LD_PRELOAD'] = '/x/libtcmalloc_minimal.so.4'\n"
                             "import drift, drift.alloc as a, json; print(json.dumps(a.STATE))"))
    assert pre["tuned"] is False and pre["why"] == "tcmalloc preloaded"


@glibc_only
def test_large_buffers_stop_faulting():
    """Without the setting every 64 MB buffer is a fresh mmap (16,384 faults each); with it, freed memory is reused."""
    untuned = int(_python(_FAULTS.format(imp=""), DRIFT_MALLOC="default"))
    tuned = int(_python(_FAULTS.format(imp="\nimport drift")))
    assert untuned > 10 * 16_384 * 0.9
    assert tuned < 2 * 16_384  # the first allocation faults its pages in once, the nine after it reuse them


def test_checkpoints_bit_identical_without_the_setting(tiny_run, tmp_path):
    """The tiny run trained in a process with glibc's defaults equals tiny_run (trained with the setting) bit for
    bit: every checkpoint tensor and every logged number but the timers."""
    other = tmp_path / "tiny_default_malloc"
    subprocess.run([sys.executable, "train.py", "--preset", "tiny", "--seed", "1", "--out", str(other),
                    "--no-progress"], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "DRIFT_MALLOC": "default"})
    assert json.loads((other / "run.json").read_text())["allocator"]["tuned"] is False
    steps = ck.list_steps(tiny_run)
    assert ck.list_steps(other) == steps
    for step in steps:
        a, b = ck.load_checkpoint(tiny_run, step)["model"], ck.load_checkpoint(other, step)["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda recs: [{k: v for k, v in r.items() if k != "timers"} for r in recs]
    assert strip(ck.read_metrics(tiny_run)) == strip(ck.read_metrics(other))
