"""LaTeX primitives for the generated report: escaping, number cells, seed spreads, a booktabs table float, the
"not run" placeholder, and the atomic file writer every generated file goes through.

    from drift.report.latex import esc, num, table
    table("tab:x", "A caption.", "lr", ["a", "b"], [[esc("x_1"), num(0.12345)]])
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from drift.atomic import atomic_path
from drift.report.rules import finite


# "_" and "/" may break the line after them: statistic names and paths are long unbreakable words otherwise, and
# they pushed table cells past the right margin.
_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_\allowbreak{}",
            "/": r"/\allowbreak{}",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


_SYMBOLS = (("+-", r"$\pm$"), ("->", r"$\to$"), (">=", r"$\geq$"), ("<=", r"$\leq$"), (">>", r"$\gg$"))


def esc(text) -> str:
    """Plain text -> LaTeX: special characters escaped, and +-, ->, >=, <=, >> set as math symbols."""
    out = "".join(_ESCAPES.get(ch, ch) for ch in str(text))
    for plain, tex in _SYMBOLS:
        out = out.replace(plain, tex)
    return out


def num(x, digits: int = 3, scale: float = 1.0) -> str:
    """A number for a table cell: n/a for None/NaN; `digits` significant digits; LaTeX scientific notation for
    magnitudes >= 1e5 or < 1e-3; integers as integers."""
    if not finite(x):
        return "n/a"
    x = float(x) * scale
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        mant, exp = f"{x:.{max(digits - 1, 0)}e}".split("e")
        mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
        return rf"${mant}\times10^{{{int(exp)}}}$"
    if x.is_integer():
        return f"{int(x)}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:  # percentages and drifts: one decimal reads better than 3 significant digits
        return f"{x:.1f}"
    return f"{x:.{digits}g}"


def spread(values: Sequence, digits: int = 3, scale: float = 1.0) -> str:
    """One cell for several seeds: 'a / b' for two, mean $\\pm$ half-range for three or more."""
    vals = list(values)
    if len(vals) <= 2 or not all(finite(v) for v in vals):
        return " / ".join(num(v, digits, scale) for v in vals) if vals else "n/a"
    arr = np.asarray(vals, dtype=np.float64) * scale
    return rf"{num(arr.mean(), digits)} $\pm$ {num(np.ptp(arr) / 2, 2)}"


def paper_pair(*values, digits: int = 3) -> str:
    return " / ".join(num(v, digits) if not isinstance(v, str) else esc(v) for v in values)


def table(label: str, caption: str, columns: str, header: Sequence[str], rows: Sequence[Sequence[str]],
          notes: str = "", size: str = r"\small") -> str:
    """A complete booktabs table float; cells are already LaTeX."""
    body = "\n".join(" & ".join(r) + r" \\" for r in rows)
    note = f"\n\\par\\smallskip{{\\footnotesize {notes}}}" if notes else ""
    # \FitWidth (paper_backbone.tex) shrinks the tabular to the line width only when it is wider
    return (f"\\begin{{table}}[htbp]\n\\centering\n{size}\n\\caption{{{caption}}}\\label{{{label}}}\n"
            f"\\FitWidth{{\\begin{{tabular}}{{{columns}}}\n\\toprule\n{' & '.join(header)} \\\\\n\\midrule\n{body}\n"
            f"\\bottomrule\n\\end{{tabular}}}}{note}\n\\end{{table}}\n")


def not_run(label: str, caption: str, reason: str) -> str:
    """The placeholder table for an experiment or analysis that has not been run."""
    return table(label, caption, "l", ["status"], [[r"\emph{not run}: " + esc(reason)]])


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


