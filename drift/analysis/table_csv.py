"""The tables' CSV files: a row's scalar fields with the paper's values beside them, written atomically.

    write_csv("runs/ctrl_s42/analysis/sgd_control.csv", [flat_row(r) for r in rows], columns)
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from drift.atomic import atomic_path


def flat_row(row: dict, paper_prefix: str = "paper_") -> dict:
    """Scalar fields of a table row, with the paper's values (row["paper"]) added under `paper_prefix`."""
    out = {k: v for k, v in row.items() if v is None or isinstance(v, (str, int, float, bool))}
    out.update({paper_prefix + k: v for k, v in (row.get("paper") or {}).items()})
    return out


def write_csv(path, rows: list[dict], columns: Sequence[str]) -> Path:
    """Atomic CSV of the given columns (missing values empty, floats with 6 significant digits)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            w.writerow(["" if row.get(c) is None else (f"{row[c]:.6g}" if isinstance(row[c], float) else row[c])
                        for c in columns])
    return path
