"""The identity of the inputs a derived artefact was computed from, recorded in it and checked when it is read.

A derived artefact (the Gram cache, analysis/directions.pt, every analysis JSON) records, per input checkpoint, its
step and a short content id, and the checkpoints the run had on disk when the artefact was made:

    rec = record("runs/cpu_s42", steps=[1, 20, 40])      # {"checkpoints": {"1": id, ...}, "run_steps": [...]}
    stale_reason(rec, "runs/cpu_s42")                     # None, or why it no longer describes the run (one line)

A checkpoint's id costs nothing to read again: every checkpoint already stores a digest of each tensor (FIELD of
drift/run/digests.py), and the id hashes those (a mapped load reads the small pickle, not the tensors). A checkpoint
written before digests existed gets "size-mtime:<bytes>:<mtime ns>", which a copy without preserved times changes;
`python -m drift.run.integrity RUN --add` gives it digests (and a new id, so artefacts made before are redone).

An artefact read from another artefact (Fisher and gradients from directions.pt, the nulls from
trajectory_pca.json) records that artefact's digest under "artefacts" (the content digest directions.pt stores; the
analysis_digest of a JSON); a directory of several runs (controls, a beta2 sweep) records each run under "runs" by its path
relative to the directory. `content_digest` is the digest a .pt / .npz artefact stores of its own content, so a
damaged file is caught when it is read.

What stale_reason calls stale: a checkpoint on disk now that the run did not have when the artefact was made (the
run went on; the artefact covers fewer steps than the run has), or an input checkpoint whose id changed or that is
gone. A run directory with no checkpoint at all (a results copy, drift/run/export.py) has nothing to compare with,
and is not called stale.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import xxhash

from drift.run import checkpoint as ck
from drift.run import digests

LEGACY_ID = "size-mtime"  # id prefix of a checkpoint without stored digests

# {(path, inode, size, mtime_ns): id}: one process asks for the same checkpoint's id several times (the Gram cache
# check, then the analysis JSON); a file rewritten in between has another inode or mtime and is read again.
_ids: dict[tuple, str] = {}


def checkpoint_id(path) -> str | None:
    """"<digest algorithm>:<16 hex>" from the tensor digests the checkpoint stores (LEGACY_ID:size:mtime when it
    has none); None when the file is missing or unreadable."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _ids:
        try:
            ckpt = ck.load_checkpoint_file(path, mmap=True, verify=False)
        except ck.RunError:
            return None
        found = digests.stored(ckpt)
        if found is None:
            _ids[key] = f"{LEGACY_ID}:{st.st_size}:{st.st_mtime_ns}"
        else:
            algo, table = found
            _ids[key] = f"{algo}:{xxhash.xxh3_64_hexdigest(json.dumps(sorted(table.items())).encode())}"
    return _ids[key]


def checkpoint_ids(run_dir, steps: Iterable[int]) -> dict[int, str | None]:
    return {int(s): checkpoint_id(ck.ckpt_path(run_dir, int(s))) for s in steps}


def content_digest(*parts) -> str:
    """XXH3-128 hex of numpy arrays (their raw bytes, shape and dtype), bytes and JSON-able values, in order."""
    h = xxhash.xxh3_128()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(f"{p.dtype.str}{p.shape}".encode())
            h.update(np.ascontiguousarray(p).tobytes())
        elif isinstance(p, (bytes, bytearray)):
            h.update(p)
        else:
            h.update(json.dumps(p, sort_keys=True).encode())
    return h.hexdigest()


def analysis_digest(path) -> str | None:
    """Digest of an analysis JSON's "params" and "results", what another analysis takes from it (not the file's
    bytes: its time of writing and its directory do not change the numbers); None when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    doc = ck.read_json(path, "analysis")
    return content_digest(doc.get("params"), doc.get("results"))


def record(run_dir, steps: Sequence[int] | None = None, run_steps: Sequence[int] | None = None,
           artefacts: dict[str, str | None] | None = None, runs: Iterable = ()) -> dict:
    """{"checkpoints": {step: id} of `steps` (default: every checkpoint), "run_steps": the run's checkpoints when the
    inputs were read (default: now), "artefacts": {path relative to run_dir: digest}, "runs": {relative path:
    record of that run}}; a key without content is left out. Pass run_steps from the RunInfo loaded before the
    computation, so that checkpoints written while it ran are not counted as covered."""
    run_dir = Path(run_dir)
    on_disk = ck.list_steps(run_dir) if run_dir.is_dir() else []
    run_steps = on_disk if run_steps is None else [int(s) for s in run_steps]
    ids = checkpoint_ids(run_dir, run_steps if steps is None else sorted({int(s) for s in steps}))
    out = {"checkpoints": {str(s): i for s, i in ids.items()}, "run_steps": run_steps}
    if any(i is not None and i.startswith(LEGACY_ID) for i in ids.values()):
        out["note"] = (f"checkpoints without stored digests are identified by size and mtime; store digests with "
                       f"python -m drift.run.integrity {run_dir} --add")
    if artefacts:
        out["artefacts"] = dict(artefacts)
    subs = {str(Path(d).relative_to(run_dir)) if Path(d).is_relative_to(run_dir) else str(d): record(d)
            for d in runs}
    if subs:
        out["runs"] = subs
    return out


def record_runs(root) -> dict:
    """The record of a directory of runs (a control set, a beta2 sweep): every checkpoint of each sub-directory
    holding a run.json."""
    root = Path(root)
    return {"runs": {d.name: record(d) for d in sorted(p.parent for p in root.glob("*/run.json"))}}


def _stale_one(rec: dict, run_dir: Path) -> str | None:
    if not run_dir.is_dir():
        return None
    now = ck.list_steps(run_dir)
    if not now:
        return None  # a results copy without checkpoints: nothing to compare with
    then = rec.get("run_steps") or []
    if set(now) - set(then):
        last = f" up to step {max(then)}" if then else ""
        return (f"it was made when {run_dir} had {len(then)} checkpoint(s){last}; the run now has {len(now)} up to "
                f"step {now[-1]}")
    recorded = {int(s): i for s, i in rec.get("checkpoints", {}).items()}
    current = checkpoint_ids(run_dir, recorded)
    gone = [s for s in recorded if current[s] is None]
    if gone:
        return f"its input checkpoint {ck.ckpt_path(run_dir, gone[0])} is gone or unreadable"
    changed = [s for s in recorded if current[s] != recorded[s]]
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        return f"its input checkpoint {ck.ckpt_path(run_dir, changed[0])}{more} changed since it was made"
    return None


def stale_reason(rec: dict, run_dir) -> str | None:
    """Why an artefact with provenance `rec` no longer describes the run(s) in run_dir (see the module docstring),
    or None while it does."""
    run_dir = Path(run_dir)
    reason = _stale_one(rec, run_dir) if "checkpoints" in rec else None
    for rel, sub in (rec.get("runs") or {}).items():
        reason = reason or _stale_one(sub, run_dir / rel)
    return reason
