"""The paper's figures, drawn from analysis JSON only (never from checkpoints), in the project style.

    Fig 1  fig1_backbone_residual  a(t) and ||r(t)|| of block 0 (raw per-block v_b), p_ood on twin axes, switch
    Fig 2  fig2_alignment          |cos(u_t, v_b)| of every update, per-batch gradient |cos| (mean +- std), floors
    Fig 3  fig3_fisher             Rayleigh quotients q(v) on a log axis, and the anisotropy alpha(t)
    Fig 4  fig4_reheat             training p_ood (grey) then reheating curves at T + s, peaks starred; below,
                                   the relative change of a(t) and ||r(t)|| during reheating
           fig_beta2               beta2 sweep: PC1, best p_ood, early |C| against beta2; p_ood curves
           fig_sgd_control         optimizer controls: val loss, p_ood, window PC1 with k95
           fig_nulls_spectrum      the run's explained-variance spectrum against the N1/N2/N3 null bands

With several seeds, each seed gets its own column (one y-range per row, so the seeds compare at a glance).
Each figure is drawn by one function from its data to a matplotlib Figure (the caller saves): Figs 1-3 by
figure_backbone_residual, figure_alignment and figure_fisher, whose columns are seeds here and the run itself in
a run's own figures (drift/report/run_figures.py, backbone_gradient_analysis.py, backbone_fisher_analysis.py); the
fig_* functions read their data from the loaded `drift.report.inputs.Evidence`. `FIGURES` says which inputs each
figure needs, so the script can skip or refuse cleanly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from drift.report import plotting as pl
from drift.report.inputs import Evidence, RunEvidence
from drift.report.readers import beta2_groups

LR_COLORS = [pl.PALETTE["early"], pl.PALETTE["late"], pl.PALETTE["alt"], pl.PALETTE["neutral"]]
P_PROBE_STYLES = ["-", "--", ":", "-."]


def p_ood_upper(series: Sequence[Sequence[float]]) -> float:
    """A common upper limit for p_ood axes: 1 when the probe is learned, tighter (>= 0.2) when it stays low, so
    that a small oscillation stays visible; the same for every seed so the columns compare."""
    peak = max((float(np.nanmax(pl.as_array(s))) for s in series if len(s)), default=1.0)
    return float(min(1.0, max(0.2, 1.15 * peak))) if np.isfinite(peak) else 1.0


def seed_titles(runs: Sequence[RunEvidence]) -> list[str]:
    return [f"seed {run.config.train.seed}" for run in runs]


def _columns(n_rows: int, titles: Sequence[str], height_per_row: float = 2.0, sharex: str | bool = "col"):
    """A figure with one column per seed (or run), titled; returns (fig, axes[row][col])."""
    n = len(titles)
    width = pl.DOUBLE_WIDTH if n > 1 else pl.DOUBLE_WIDTH * 0.62
    fig, axes = pl.new_figure(n_rows, n, width=width, height=height_per_row * n_rows, sharex=sharex, sharey="row",
                              squeeze=False)
    for col, title in enumerate(titles):
        axes[0][col].set_title(title)
    return fig, axes


# ---------------------------------------------------------------------------------------------------------------
# Fig 1
# ---------------------------------------------------------------------------------------------------------------

def block_decomposition(results: dict, block: int = 0) -> tuple[str, dict]:
    """(scope, {"steps", "a", "residual_norm"}) of block `block` from trajectory_pca.json's series: the
    LN-inclusive scope first (the paper's Fig 1), else the trunk-matrix scope. v_b is the block's raw PC1."""
    series = results["series"]
    for scope in (f"block{block}+ln", f"block{block}"):
        if scope in series["blocks"]:
            d = series["blocks"][scope]
            return scope, {"steps": series["steps"], "a": d["a"], "residual_norm": d["r_norm"]}
    raise KeyError(f"trajectory_pca.json has no series for block {block}")


def decomposition_column(results: dict, scope: str, title: str) -> dict:
    """One column of figure_backbone_residual from trajectory_pca.json's results: a(t) and ||r(t)|| of `scope`
    ("trunk" or a block scope), with p_ood at the analysis steps and the run's switch."""
    series = results["series"]
    d = series if scope == "trunk" else series["blocks"][scope]
    return {"title": title, "scope": scope, "steps": series["steps"], "a": d["a"], "residual_norm": d["r_norm"],
            "p_ood_steps": series["steps"], "p_ood": series["p_ood"], "switch_step": results["setup"]["switch_step"]}


def figure_backbone_residual(columns: Sequence[dict]):
    """Fig 1: per column (a seed, or one scope of a run), a(t) (top) and ||r(t)|| (bottom) with p_ood dashed grey
    on twin axes and the switch. A column is {"title", "scope", "steps", "a", "residual_norm", "p_ood_steps",
    "p_ood", "switch_step"} (decomposition_column)."""
    fig, axes = _columns(2, [c["title"] for c in columns])
    top = p_ood_upper([c["p_ood"] for c in columns])
    last = len(columns) - 1
    for col, c in enumerate(columns):
        ax_a, ax_r = axes[0][col], axes[1][col]
        ax_a.plot(c["steps"], pl.as_array(c["a"]), color=pl.PALETTE["backbone"], marker="o", ms=1.5)
        ax_r.plot(c["steps"], pl.as_array(c["residual_norm"]), color=pl.PALETTE["residual"], marker="o", ms=1.5)
        for ax in (ax_a, ax_r):
            twin = pl.overlay_p_ood(ax, c["p_ood_steps"], c["p_ood"], label=r"$p_{ood}$")
            twin.set_ylim(0.0, top)
            if col < last:  # every column shares the p_ood range: its axis is labelled once, on the right edge
                twin.set_ylabel("")
                twin.tick_params(axis="y", labelright=False)
            pl.mark_switch(ax, c["switch_step"], label=None)
        if col == 0:  # the rows share their y axis (sharey="row")
            ax_a.set_ylabel(f"a(t)  [{c['scope']}]")
            ax_r.set_ylabel(r"$\|r(t)\|$")
        ax_r.set_xlabel("step")
    return fig


def fig_backbone_residual(ev: Evidence):
    """Fig 1: per seed, block 0 (raw per-block v_b) with p_ood of every eval."""
    columns = []
    for run, title in zip(ev.runs, seed_titles(ev.runs)):
        scope, d = block_decomposition(run.results("trajectory_pca"))
        steps, p = run.series("p_ood")
        columns.append({"title": title, "scope": scope, **d, "p_ood_steps": steps, "p_ood": p,
                        "switch_step": run.switch_step})
    return figure_backbone_residual(columns)


# ---------------------------------------------------------------------------------------------------------------
# Fig 2
# ---------------------------------------------------------------------------------------------------------------

def _alignment_panel(ax, res: dict, log: bool) -> None:
    u = res["update"]
    f = res["floors"]
    steps = [r["step"] for r in res["steps"]]
    g = np.array([r["composite"]["abs_cos"]["mean"] for r in res["steps"]])
    gs = np.array([r["composite"]["abs_cos"]["std"] for r in res["steps"]])
    ax.plot(u["end_steps"], u["abs_cos"], color=pl.PALETTE["backbone"], label=r"update $|\cos(u_t, v_b)|$")
    # On a log axis an error bar reaching below zero is meaningless: clip its lower arm at the mean's 10%.
    lower = np.minimum(gs, 0.9 * g) if log else gs
    ax.errorbar(steps, g, yerr=[lower, gs], fmt="s", color="0.4", ms=3, capsize=2, lw=0.8,
                label=r"gradient $|\cos(g, v_b)|$")
    ax.axhline(f["abs_cos_mean_asymptotic"], ls=":", color="k", lw=0.9, label=r"$\sqrt{2/(\pi D)}$")
    ax.axhline(f["cos_rms"], ls=":", color=pl.PALETTE["residual"], lw=0.9, label=r"$1/\sqrt{D}$")
    pl.mark_switch(ax, res.get("switch_step"), label=None)
    if log:
        ax.set_yscale("log")


def figure_alignment(results: Sequence[dict], titles: Sequence[str]):
    """Fig 2: per gradient_alignment.json (a seed, or one run), linear axis (top, as in the paper) and log axis
    (bottom, where the floor is visible)."""
    fig, axes = _columns(2, titles)
    for col, res in enumerate(results):
        _alignment_panel(axes[0][col], res, log=False)
        _alignment_panel(axes[1][col], res, log=True)
        axes[1][col].set_xlabel("step")
        axes[0][col].set_ylabel(f"|cos|  [{res['scope']}, D={res['floors']['D']:,}]" if col == 0 else "|cos|")
        axes[1][col].set_ylabel("|cos| (log)")
    axes[0][-1].legend(loc="upper right", fontsize=6)
    return fig


def fig_alignment(ev: Evidence):
    return figure_alignment([run.results("gradient_alignment") for run in ev.runs], seed_titles(ev.runs))


# ---------------------------------------------------------------------------------------------------------------
# Fig 3
# ---------------------------------------------------------------------------------------------------------------

FISHER_SERIES = [("v_b", r"$q(v_b)$", "backbone"), ("v_sw", r"$q(v_{sw})$", "residual"),
                 ("v_pc2", r"$q(v_{PC2})$", "alt")]


def _fisher_panels(ax_q, ax_a, res: dict) -> None:
    rows = res["steps"]
    steps = [r["step"] for r in rows]
    for key, label, color in FISHER_SERIES:
        vals = pl.as_array([r["q"].get(key) for r in rows])
        if np.isfinite(vals).any():
            ax_q.plot(steps, vals, marker="o", color=pl.PALETTE[color], label=label)
    ax_q.plot(steps, [r["q_random_mean"] for r in rows], marker="s", ls="--", color="0.5",
              label=r"mean $q(w_k)$, $w_k\perp v_b$")
    ax_q.set_yscale("log")
    q_b = pl.as_array([r["q"]["v_b"] for r in rows])
    j = int(np.nanargmax(q_b))
    if j > 0 and q_b[0] > 0:
        ax_q.annotate("", xy=(steps[j], q_b[j]), xytext=(steps[0], q_b[0]),
                      arrowprops=dict(arrowstyle="->", color=pl.PALETTE["backbone"], lw=0.8))
        ax_q.annotate(rf"$\times${q_b[j] / q_b[0]:.3g}", ((steps[0] + steps[j]) / 2, np.sqrt(q_b[0] * q_b[j])),
                      fontsize=7, color=pl.PALETTE["backbone"], ha="right")
    alpha = pl.as_array([r["alpha"] for r in rows])
    ax_a.plot(steps, alpha, marker="o", color=pl.PALETTE["backbone"])
    ax_a.axhline(1.0, color="k", lw=0.7, ls=":")
    i = int(np.nanargmax(alpha))
    ax_a.annotate(f"{alpha[i]:.3g}", (steps[i], alpha[i]), textcoords="offset points", xytext=(3, 3), fontsize=7)
    for ax in (ax_q, ax_a):
        pl.mark_switch(ax, res.get("switch_step"), label=None)


def figure_fisher(results: Sequence[dict], titles: Sequence[str]):
    """Fig 3: per fisher.json (a seed, or one run), q(v) of the backbone, switch, PC2 and random directions (log),
    and alpha(t)."""
    fig, axes = _columns(2, titles)
    for col, res in enumerate(results):
        _fisher_panels(axes[0][col], axes[1][col], res)
        axes[1][col].set_xlabel("step")
    axes[0][0].set_ylabel(r"$q(v)=\|Gv\|^2/M$")
    axes[1][0].set_ylabel(r"$\alpha = q(v_b)/\overline{q(w)}$")
    axes[0][-1].legend(loc="best", fontsize=6)
    return fig


def fig_fisher(ev: Evidence):
    return figure_fisher([run.results("fisher") for run in ev.runs], seed_titles(ev.runs))


# ---------------------------------------------------------------------------------------------------------------
# Fig 4
# ---------------------------------------------------------------------------------------------------------------

def _relative(x: Sequence[float]) -> np.ndarray:
    x = pl.as_array(x)
    return (x - x[0]) / abs(x[0]) if x.size and x[0] != 0 else np.full(x.shape, np.nan)


def figure_reheat(results: Sequence[dict], titles: Sequence[str], switch_steps: Sequence[int | None]):
    """Fig 4: per reheat.json (a seed, or one run), training p_ood (grey) then each reheating LR at T + s with its
    peak starred; below, the relative change of a(t) (solid) and ||r(t)|| (dashed) over the reheating steps."""
    fig, axes = _columns(2, titles, sharex=False)
    top = p_ood_upper([res["main_curve"]["p_ood"] for res in results]
                      + [row["curves"]["p_ood"] for res in results for row in res["rows"]])
    for col, (res, switch_step) in enumerate(zip(results, switch_steps)):
        T = res.get("start_step", res["main_last_step"])  # the reheating's first step follows its start
        ax_p, ax_g = axes[0][col], axes[1][col]
        main = res["main_curve"]
        ax_p.plot(main["step"], main["p_ood"], color=pl.PALETTE["p_ood"], label="training")
        for row, color in zip(res["rows"], LR_COLORS):
            c = row["curves"]
            ax_p.plot([T + s for s in c["step"]], c["p_ood"], color=color, label=f"reheat lr {row['lr']:g}")
            if row.get("peak") is not None:
                ax_p.plot(T + row["peak_step"], row["peak"], marker="*", ms=9, color=color, mec="k", mew=0.4)
            k = row["coords"]
            ax_g.plot(k["step"], _relative(k["a"]), color=color)
            ax_g.plot(k["step"], _relative(k["residual_norm"]), color=color, ls="--")
        ax_p.axvline(T, ls=":", color="k", lw=1.0)  # reheating starts; dotted to tell it from the switch
        pl.mark_switch(ax_p, switch_step, label=None)
        ax_p.set(ylim=(-0.01, top))
        ax_g.axhline(0.0, color="k", lw=0.5)
        ax_g.set_xlabel("reheating step s")
    axes[0][0].set_ylabel(r"$p_{ood}$")
    axes[1][0].set_ylabel("relative change")
    axes[0][-1].legend(loc="upper left", fontsize=6)
    axes[1][-1].plot([], [], color="k", label="a(t)")
    axes[1][-1].plot([], [], color="k", ls="--", label=r"$\|r(t)\|$")
    axes[1][-1].legend(loc="best", fontsize=6)
    return fig


def fig_reheat(ev: Evidence):
    runs = [r for r in ev.runs if r.results("reheat") is not None]
    return figure_reheat([r.results("reheat") for r in runs], seed_titles(runs), [r.switch_step for r in runs])


# ---------------------------------------------------------------------------------------------------------------
# beta2 sweep and optimizer controls
# ---------------------------------------------------------------------------------------------------------------

def figure_beta2(sweep: dict):
    """PC1 (row-normalized and raw), best p_ood and early |C| against beta2 per p_probe; p_ood curves; from
    beta2_sweep.json's results."""
    fig, (ax_g, ax_p, ax_c) = pl.new_figure(1, 3, width=pl.DOUBLE_WIDTH, height=2.4)
    groups = beta2_groups(sweep)
    # one shared beta2 axis, decreasing left to right, so groups with different beta2 values line up (string
    # categories would be ordered by first appearance); one colour per beta2 value across groups
    values = sorted({r["beta2"] for rows in groups.values() for r in rows}, reverse=True)
    pos = {b: i for i, b in enumerate(values)}
    colors = dict(zip(values, LR_COLORS + [pl.PALETTE["residual"], "0.3", "0.6"]))
    for (p, rows), ls in zip(groups.items(), P_PROBE_STYLES):
        x = [pos[r["beta2"]] for r in rows]
        tag = f" (p_probe {p:g})"
        ax_g.plot(x, pl.as_array([r.get("pc1") for r in rows]), ls=ls, marker="o", color=pl.PALETTE["backbone"],
                  label="row-norm PC1" + tag)
        ax_g.plot(x, pl.as_array([r.get("raw_pc1") for r in rows]), ls=ls, marker="^", color=pl.PALETTE["alt"],
                  label="raw PC1" + tag)
        ax_p.plot(x, pl.as_array([r.get("best_p_ood") for r in rows]), ls=ls, marker="s",
                  color=pl.PALETTE["residual"], label="best $p_{ood}$" + tag)
        ax_p.plot(x, pl.as_array([r.get("early_abs_cos") for r in rows]), ls=ls, marker="D",
                  color=pl.PALETTE["early"], label="early |C|" + tag)
        for r in rows:
            c = r["curves"]
            ax_c.plot(c["step"], c["p_ood"], ls=ls, color=colors.get(r["beta2"], "k"),
                      label=f"beta2 {r['beta2']:g}" + tag)
    for ax in (ax_g, ax_p):
        ax.set_xticks(range(len(values)), [f"{b:g}" for b in values])
    ax_g.set(xlabel=r"$\beta_2$", ylabel="PC1 (%)")
    ax_p.set(xlabel=r"$\beta_2$", ylabel="value", ylim=(-0.02, 1.02))
    top = p_ood_upper([r["curves"]["p_ood"] for g in groups.values() for r in g])
    ax_c.set(xlabel="step", ylabel=r"$p_{ood}$", ylim=(-0.01, top))
    for ax in (ax_g, ax_p, ax_c):
        ax.legend(fontsize=5.5)
    return fig


def fig_beta2(ev: Evidence):
    return figure_beta2(ev.beta2)


CONTROL_COLORS = {"A": pl.PALETTE["backbone"], "B": pl.PALETTE["residual"], "C": pl.PALETTE["early"],
                  "C_prime": pl.PALETTE["late"]}


def figure_sgd_control(res: dict):
    """Val loss and p_ood against step per optimizer; the standard-window PC1 per run, annotated with k95 (hatched:
    marked rows); from sgd_control.json's results."""
    fig, (ax_v, ax_p, ax_b) = pl.new_figure(1, 3, width=pl.DOUBLE_WIDTH, height=2.3)
    labels = {r["run"]: r["optimizer"] for r in res["rows"]}
    for name, c in res["curves"].items():
        color = CONTROL_COLORS.get(name, "0.3")
        ax_v.plot(c["step"], c["val_loss"], color=color, label=labels.get(name, name))
        ax_p.plot(c["step"], c["p_ood"], color=color)
    ax_v.set(xlabel="step", ylabel="val loss")
    top = p_ood_upper([c["p_ood"] for c in res["curves"].values()])
    ax_p.set(xlabel="step", ylabel=r"$p_{ood}$", ylim=(-0.01, top))
    ax_v.legend(fontsize=6, loc="best")
    for i, row in enumerate(res["rows"]):
        pc1 = row.get("pc1")
        ax_b.bar(i, pc1 or 0.0, color=CONTROL_COLORS.get(row["run"], "0.3"), hatch="//" if row["marker"] else None)
        ax_b.text(i, (pc1 or 0.0) + 2, "n/a" if pc1 is None else f"k95={row['k95']}", ha="center", fontsize=6)
    ax_b.set_xticks(range(len(res["rows"])), [r["run"].replace("_prime", "'") for r in res["rows"]])
    ax_b.set(ylabel="window PC1 (%)", ylim=(0, 112))
    return fig


def fig_sgd_control(ev: Evidence):
    return figure_sgd_control(ev.control("sgd_control"))


# ---------------------------------------------------------------------------------------------------------------
# Null models
# ---------------------------------------------------------------------------------------------------------------

NULL_COLORS = {"N1": pl.PALETTE["backbone"], "N2": pl.PALETTE["alt"], "N3": pl.PALETTE["early"]}
NULL_PANELS = (("trunk_rownorm", "trunk, row-normalized"), ("block0_raw", "block 0, raw"))


def figure_null_spectrum(results: Sequence[dict], titles: Sequence[str] | None = None):
    """Explained-variance spectrum of the run (black) against each null's median (dashed) and central band
    (shaded), trunk row-normalized (top) and block 0 raw (bottom); one column per nulls.json results dict."""
    n = len(results)
    fig, axes = pl.new_figure(2, n, width=pl.DOUBLE_WIDTH if n > 1 else pl.DOUBLE_WIDTH * 0.62, height=4.2,
                              sharex=True, sharey="row", squeeze=False)
    for col, res in enumerate(results):
        for row, (key, label) in enumerate(NULL_PANELS):
            ax, spec = axes[row][col], res["spectra"][key]
            k = np.arange(1, len(spec["observed"]) + 1)
            for null in res["nulls"]:
                b = spec[null]
                ax.fill_between(k, pl.as_array(b["lo"]), pl.as_array(b["hi"]), color=NULL_COLORS[null], alpha=0.2,
                                lw=0)
                ax.plot(k, pl.as_array(b["median"]), "--", color=NULL_COLORS[null], lw=0.9,
                        label=f"{null} {res['nulls'][null]['name']}")
            ax.plot(k, pl.as_array(spec["observed"]), "o-", color="black", ms=3, label="run")
            ax.set(yscale="log", ylabel=f"explained ({label})" if col == 0 else None)
            if row == 0 and titles:
                ax.set_title(titles[col])
        axes[1][col].set_xlabel("component k")
    if n <= 2:
        axes[0][0].legend(fontsize=6, loc="upper right")
    else:  # narrow panels: one legend under the figure instead of over the first panel's curves
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.04))
    return fig


def fig_null_spectrum(ev: Evidence):
    runs = [r for r in ev.runs if r.results("nulls") is not None]
    # With more than two columns the draw count would not fit in the titles; the method section gives it.
    titles = [f"seed {r.config.train.seed}" + (f" ({r.results('nulls')['nulls']['N1']['n_draws']} draws per null)"
                                               if len(runs) <= 2 else "") for r in runs]
    return figure_null_spectrum([r.results("nulls") for r in runs], titles)


# ---------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FigureSpec:
    name: str
    draw: Callable[[Evidence], object]
    needs: str            # "run:<analysis>", "controls:<analysis>" or "beta2"
    optional: bool        # an optional experiment: skipped with a note when absent (unless asked for)


FIGURES = {
    "fig1": FigureSpec("fig1_backbone_residual", fig_backbone_residual, "run:trajectory_pca", False),
    "fig2": FigureSpec("fig2_alignment", fig_alignment, "run:gradient_alignment", False),
    "fig3": FigureSpec("fig3_fisher", fig_fisher, "run:fisher", False),
    "fig4": FigureSpec("fig4_reheat", fig_reheat, "run:reheat", True),
    "beta2": FigureSpec("fig_beta2", fig_beta2, "beta2", True),
    "sgd": FigureSpec("fig_sgd_control", fig_sgd_control, "controls:sgd_control", True),
    "nulls": FigureSpec("fig_nulls_spectrum", fig_null_spectrum, "run:nulls", True),
}


def missing_inputs(ev: Evidence, spec: FigureSpec) -> list[str]:
    """What the figure needs and the evidence lacks, each with the command that produces it."""
    kind, _, name = spec.needs.partition(":")
    if kind == "run":
        if not ev.runs:
            return ["no main run (train one: python train.py --preset cpu --seed 42 --out runs/cpu_s42)"]
        have = [r for r in ev.runs if r.results(name) is not None]
        # Reheating is per main run but optional: draw the seeds that have it.
        if spec.optional and have:
            return []
        return [r.missing(name) for r in ev.runs if r.results(name) is None]
    if kind == "controls":
        return [] if ev.control(name) is not None else [ev.missing_control(name)]
    return [] if ev.beta2 is not None else [ev.missing_beta2()]
