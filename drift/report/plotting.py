"""One figure style for the whole project.

Figures are drawn from analysis JSON only (never from checkpoints) and always saved as a .pdf (for the paper) and
a .png (for quick looks). Figures are built with `matplotlib.figure.Figure` directly rather than pyplot, so no
global figure state or GUI backend is involved and scripts can run headless.

    from drift.report import plotting as pl
    pl.apply_style()
    fig, (ax_a, ax_r) = pl.new_figure(2, 1, sharex=True)
    ax_a.plot(steps, a, color=pl.PALETTE["backbone"])
    pl.overlay_p_ood(ax_a, steps, p_ood)
    pl.mark_switch(ax_a, 4000)
    pl.save_figure(fig, run_dir / "figures" / "backbone_residual")   # -> .pdf and .png
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from drift.atomic import atomic_path

# Colour-blind-safe (Okabe-Ito); one colour per concept so every figure reads the same way.
PALETTE = {
    "backbone": "#0072B2",    # a(t), v_b, PC1
    "residual": "#D55E00",    # ||r(t)||, transverse quantities
    "p_ood": "#7F7F7F",       # the probe accuracy overlay (grey, dashed)
    "early": "#009E73",       # phase E (before the lambda switch)
    "late": "#CC79A7",        # phase L (after it)
    "switch": "#000000",      # the lambda-switch marker
    "alt": "#E69F00",         # a second variant of the same quantity (e.g. LN-inclusive scope)
    "neutral": "#56B4E9",
}
SINGLE_WIDTH = 3.4  # inches: one column of a two-column paper
DOUBLE_WIDTH = 7.0

_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "lines.markersize": 3.5,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # embed TrueType, so the PDF text stays editable and selectable
}


def apply_style() -> None:
    """Set the project's rcParams (idempotent)."""
    matplotlib.rcParams.update(_STYLE)


def new_figure(nrows: int = 1, ncols: int = 1, width: float = SINGLE_WIDTH, height: float | None = None,
               **subplot_kw) -> tuple[Figure, object]:
    """A styled Figure and its axes (as `Figure.subplots` returns them)."""
    apply_style()
    height = height if height is not None else 2.2 * nrows
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(nrows, ncols, **subplot_kw)


def figure_paths(path_stem) -> list[Path]:
    """The files a figure is saved as: `path_stem`.pdf and `path_stem`.png."""
    stem = Path(path_stem)
    return [stem.with_name(stem.name + ".pdf"), stem.with_name(stem.name + ".png")]


def save_figure(fig: Figure, path_stem) -> list[Path]:
    """Write figure_paths(path_stem) (parent directories created); returns both paths. Each file is drawn into a
    temporary name and both are renamed only once both are written (drift.atomic), so a full disk or a crash
    leaves the previous figure whole, never a truncated PDF or a PDF of one build beside a PNG of another."""
    paths = figure_paths(path_stem)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for path in paths:
            tmp = stack.enter_context(atomic_path(path))
            # the temporary's name has no .pdf/.png suffix, so the format is named; no creation date in the PDF:
            # regenerating an unchanged figure leaves the committed file unchanged
            fig.savefig(tmp, format=path.suffix[1:],
                        metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    return paths


def overlay_p_ood(ax, steps: Sequence[float], p_ood: Sequence[float], label: str = "p_ood"):
    """p_ood on a twin y-axis (dashed grey, range [0, 1]); returns the twin axis. NaN points (no eval) are
    skipped rather than breaking the line."""
    steps = np.asarray(steps, dtype=np.float64)
    p = np.asarray(p_ood, dtype=np.float64)
    ok = np.isfinite(p)
    twin = ax.twinx()
    twin.plot(steps[ok], p[ok], ls="--", color=PALETTE["p_ood"], lw=1.0, label=label)
    twin.set_ylim(0.0, 1.0)
    twin.set_ylabel(label, color=PALETTE["p_ood"])
    twin.tick_params(axis="y", colors=PALETTE["p_ood"])
    twin.grid(False)
    twin.spines["right"].set_visible(True)
    return twin


def mark_switch(ax, step: float | None, label: str | None = "λ switch") -> None:
    """Dashed vertical line at the lambda switch (nothing if step is None)."""
    if step is None:
        return
    ax.axvline(float(step), ls="--", lw=0.9, color=PALETTE["switch"], alpha=0.7, label=label)


def as_array(values) -> np.ndarray:
    """JSON lists with null for missing values -> float array with NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
