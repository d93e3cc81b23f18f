"""The streaming Gram of a foreign checkpoint series: one tensor at a time, opened in every checkpoint and read in
row chunks, float64 products, so memory stays near one checkpoint.

    from drift.inspect.gram import gram_matrices
    grams = gram_matrices(readers, scopes)        # {scope: anchored float64 T x T Gram}
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
from tqdm import tqdm

from drift.inspect.formats import InspectError, Reader, _quiet

def _tensor_gram(readers: list[Reader], name: str, chunk: int) -> np.ndarray:
    """Anchored Gram of one tensor across the checkpoints: sum over row chunks of B B^T, B = rows - row 0 in
    float64 (exact for float32 inputs). A non-finite value stops the pass, naming the file."""
    T = len(readers)
    G = np.zeros((T, T))
    with contextlib.ExitStack() as stack:
        views = [stack.enter_context(r.rows(name)) for r in readers]
        rows, row_size = views[0].rows, views[0].row_size
        per_chunk = max(1, chunk // max(1, T * row_size))
        for lo in range(0, rows, per_chunk):
            hi = min(rows, lo + per_chunk)
            block = np.empty((T, (hi - lo) * row_size))
            for i, v in enumerate(views):
                block[i] = v.read(lo, hi)
            finite = np.isfinite(block).all(axis=1)
            if not finite.all():
                bad = readers[int(np.argmin(finite))].label
                raise InspectError(f"{bad}: tensor {name} holds non-finite values (NaN or inf); leave this "
                                   f"checkpoint out with --steps")
            block -= block[0].copy()
            G += block @ block.T
    return G


def gram_matrices(readers: list[Reader], scopes: dict[str, list[str]], chunk: int = 1 << 22,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """{scope: P[i, j] = <theta_i - theta_0, theta_j - theta_0>} (float64) over the readers' checkpoints, in one
    pass tensor by tensor (module docstring). The progress bar counts checkpoints' worth of scope data read."""
    names = sorted(set().union(*scopes.values()))
    sizes = {n: math.prod(readers[0].meta[n][0]) for n in names}
    total = max(1, sum(sizes.values()))
    T = len(readers)
    per_name, done = {}, 0
    fmt = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.0f} checkpoints [{elapsed}<{remaining}]"
    with tqdm(total=T, desc="reading", bar_format=fmt, disable=_quiet(progress), dynamic_ncols=True) as bar:
        for name in names:
            per_name[name] = _tensor_gram(readers, name, chunk)
            done += sizes[name]
            bar.update(T * done / total - bar.n)
    return {s: sum((per_name[n] for n in ns), np.zeros((T, T))) for s, ns in scopes.items()}
