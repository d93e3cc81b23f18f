"""Figures of one run's analyses, drawn from the results dict only (never from checkpoints): the trajectory
analysis (A1-A7, trajectory_pca_uncentered.py) and the update alignment (A8, backbone_update_analysis.py), and the
body the three backbone_*_analysis.py scripts share (compute -> JSON -> figure -> summary). A figure the paper also
shows (backbone and residual, gradient alignment, Fisher) is drawn by drift/report/figures.py's function for it,
with the run as its one column. Each figure function returns a matplotlib Figure; the caller saves it.

    draw_figures(results, run_dir)                               # figures/trajectory_*.pdf|png
    save_figure(figure_update_alignment(results), stem)          # the A8 figure
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from drift.report import plotting as pl
from drift.report.figures import decomposition_column, figure_backbone_residual
from drift.run.info import figures_dir


# --------------------------------------------------------------------------------------------------------------
# The trajectory analysis (A1-A7)
# --------------------------------------------------------------------------------------------------------------

def _results(d: dict) -> dict:
    return d["results"] if "results" in d else d


def figure_explained_variance(results: dict):
    """Per-block raw PC1 (both scopes, both strides) and the trunk spectrum (row-normalized vs raw)."""
    r = _results(results)
    b, layers = r["blocks"], np.asarray(r["blocks"]["layers"])
    fig, (ax_b, ax_t) = pl.new_figure(1, 2, width=pl.DOUBLE_WIDTH, height=2.4)
    width = 0.2
    for j, (fam, key, color) in enumerate([("block", "pc1", pl.PALETTE["backbone"]),
                                           ("block+ln", "pc1", pl.PALETTE["alt"]),
                                           ("block", "pc1_stride2", pl.PALETTE["neutral"]),
                                           ("block+ln", "pc1_stride2", pl.PALETTE["late"])]):
        label = f"{fam}{' stride 2' if key.endswith('2') else ''}"
        ax_b.bar(layers + (j - 1.5) * width, 100 * pl.as_array(b[key][fam]), width, color=color, label=label)
    ax_b.set(xlabel="block", ylabel="raw PC1 (%)", xticks=layers, ylim=(0, 125), yticks=range(0, 101, 20))
    ax_b.legend(loc="upper center", ncol=2, fontsize=6)
    for key, label, color in [("rownorm", "row-normalized", pl.PALETTE["backbone"]),
                              ("raw", "raw", pl.PALETTE["residual"])]:
        frac = pl.as_array(r["trunk"][key]["fractions_full"])[:10]
        ax_t.plot(np.arange(1, frac.size + 1), 100 * frac, "o-", color=color, label=label)
    ax_t.set(xlabel="component k", ylabel="explained (%)", yscale="log", title="trunk")
    ax_t.legend()
    return fig


def figure_rho(results: dict):
    """Adjacent-window |cos| rho(t) of the trunk rolling backbone."""
    r = _results(results)
    s = r["series"]
    fig, ax = pl.new_figure(1, 1)
    ax.plot(pl.as_array(s["rho_steps"]), pl.as_array(s["rho"]), "o-", color=pl.PALETTE["backbone"])
    ax.axhline(0.7, ls=":", lw=0.8, color=pl.PALETTE["p_ood"])
    pl.mark_switch(ax, r["setup"]["switch_step"])
    ax.set(xlabel="step", ylabel="ρ(t)", title=f"rolling backbone, W = {r['rolling']['trunk']['window']}")
    return fig


def figure_phase_alignment(results: dict):
    """A_E and A_L: alignment of each window's backbone with the early and late phase backbones."""
    r = _results(results)
    s = r["series"]
    fig, ax = pl.new_figure(1, 1)
    centers = pl.as_array(s["centers"])
    if len(s["A_E"]):
        ax.plot(centers, pl.as_array(s["A_E"]), "o-", color=pl.PALETTE["early"], label="A_E")
        ax.plot(centers, pl.as_array(s["A_L"]), "s-", color=pl.PALETTE["late"], label="A_L")
    pl.mark_switch(ax, r["setup"]["switch_step"])
    ax.set(xlabel="window center (step)", ylabel="|cos|", ylim=(0, 1), title="phase handoff")
    ax.legend()
    return fig


def draw_figures(results: dict, run_dir) -> list[Path]:
    """All figures of this analysis under run_dir/figures/ (from the results dict only)."""
    out = figures_dir(run_dir)
    r = _results(results)
    figures = {"trajectory_explained_variance": figure_explained_variance(r),
               "trajectory_backbone_residual": figure_backbone_residual(
                   [decomposition_column(r, "trunk", "trunk: backbone and residual")])}
    if "block0+ln" in r["series"]["blocks"]:
        figures["trajectory_backbone_residual_block0"] = figure_backbone_residual(
            [decomposition_column(r, "block0+ln", "block0+ln: backbone and residual")])
    figures.update(trajectory_rho=figure_rho(r), trajectory_phase_alignment=figure_phase_alignment(r))
    return [p for name, fig in figures.items() for p in pl.save_figure(fig, out / name)]


# --------------------------------------------------------------------------------------------------------------
# Update, gradient and Fisher analyses (A8-A10)
# --------------------------------------------------------------------------------------------------------------

def figure_update_alignment(results: dict, scopes: Sequence[str] = ("trunk", "block0", "block0+ln")):
    """Signed C (top) and |C| (bottom) against the update's end step; first persistent flip marked."""
    fig, (ax_c, ax_abs) = pl.new_figure(2, 1, sharex=True, width=pl.DOUBLE_WIDTH / 1.4)
    colors = [pl.PALETTE["backbone"], pl.PALETTE["residual"], pl.PALETTE["alt"], pl.PALETTE["neutral"]]
    for color, scope in zip(colors, [s for s in scopes if s in results["scopes"]]):
        entry = results["scopes"][scope]
        kind = "row_normalized" if "row_normalized" in entry else "raw"
        a = entry[kind]["consecutive"]
        label = f"{scope} ({kind.replace('_', '-')} $v_b$)"
        ax_c.plot(a["end_steps"], a["cos"], color=color, label=label, marker="o", ms=2)
        ax_abs.plot(a["end_steps"], a["abs_cos"], color=color, marker="o", ms=2)
        if "overlapping" in entry[kind]:
            o = entry[kind]["overlapping"]
            ax_abs.plot(o["end_steps"], o["abs_cos"], color=color, lw=0.7, alpha=0.6,
                        label="overlapping updates" if color == colors[0] else None)
        if a["flip_end_step"] is not None:
            ax_c.axvline(a["flip_end_step"], color=color, ls=":", lw=0.9)
    ax_c.axhline(0.0, color="k", lw=0.6)
    for ax in (ax_c, ax_abs):
        pl.mark_switch(ax, results.get("switch_step"))
    ax_c.set_ylabel(r"$C = \cos(u_t, v_b)$")
    ax_abs.set_ylabel(r"$|C|$")
    ax_abs.set_xlabel("step (end of update interval)")
    ax_c.legend(loc="best")
    if ax_abs.get_legend_handles_labels()[0]:
        ax_abs.legend(loc="best", fontsize=7)
    return fig


def run_script(prog: str, run_dir, name: str, compute, figure, report) -> int:
    """The body the three mechanism scripts share: compute -> analysis/<name>.json -> figures/<name> (unless
    `figure` is None) -> summary. A RunError, ConfigError or ValueError becomes one `<prog>: error: ...` line on stderr and exit code 2."""
    import sys

    from drift.run.checkpoint import RunError
    from drift.config import ConfigError
    from drift.report.plotting import save_figure
    from drift.run.info import figures_dir, write_analysis
    try:
        results, params, inputs = compute()
        path = write_analysis(run_dir, name, results, params, inputs)
        figs = save_figure(figure(results), figures_dir(run_dir) / name) if figure is not None else []
    except (RunError, ConfigError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    report(results)
    print(f"wrote {path}" + (f" and {figs[0]}" if figs else ""))
    return 0
