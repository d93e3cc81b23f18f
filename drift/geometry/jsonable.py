"""Plain JSON types from numpy arrays and scalars, tuples and dataclasses, for every analysis result.

    json.dumps(jsonable({"steps": np.arange(3), "rho": np.float64(0.5)}))
"""
from __future__ import annotations

import dataclasses

import numpy as np


def jsonable(obj):
    """Recursively convert numpy arrays/scalars, tuples and dataclasses to plain JSON types (NaN stays float)."""
    # Scalars first: they are by far the most frequent, and is_dataclass is slow.
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.dtype != object else jsonable(obj.tolist())
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    return obj
