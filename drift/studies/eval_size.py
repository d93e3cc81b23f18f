"""Eval-set size: how many p_ood oscillations would a smaller (or larger) probe eval set have called significant?

The probe study asks for eval sets of >= 1,000 examples (binomial std of p_ood <= 0.016 at 0.5). This module
measures what that buys on a real run: every checkpoint of a finished run is scored on fresh OOD eval sets of
several sizes (independent of the run's own eval set and of each other), and each size's curve is judged by the
same rule the study uses (claims.oscillation_drops: prominence 0.03 and 3 binomial std at that size). The largest
set is the reference curve: the RMS gap of a smaller set to it is its measured noise, next to the binomial std.

    from drift.studies.eval_size import score_sizes, summarize_sizes
    res = summarize_sizes(score_sizes("runs/cpu_s42", sizes=(256, 1024, 4096)))
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from drift.report.rules import oscillation_drops
from drift.data.context import build_context, eval_filler_ids
from drift.analysis.minibatch import load_model_at
from drift.model import GPT
from drift.data.probe import build_eval_set, probe_accuracy
from drift.run.info import load_run

# Seeds of the fresh sets: the run's own eval sets use seed + 100 (in) and seed + 200 (OOD).
SEED_OFFSET = 1000


def score_sizes(run_dir, sizes: Sequence[int] = (256, 1024, 4096), progress: bool = True) -> dict:
    """p_ood of every evaluated checkpoint (step >= 1) of `run_dir` on one fresh OOD eval set per size."""
    run = load_run(run_dir)  # refuses, in one line, a directory that is not a run or has no trained checkpoint
    run_dir, cfg = run.run_dir, run.config
    t = cfg.train
    ctx = build_context(cfg, run_dir)
    pool = eval_filler_ids(ctx.tokenizer, ctx.task)
    gap = (t.gap_ood_min, t.gap_ood_max)
    sets = {n: build_eval_set(ctx.task, n, gap, t.seed + SEED_OFFSET + i, cfg.model.seq_len, pool)
            for i, n in enumerate(sorted(set(sizes)))}
    steps = [s for s in run.steps if s >= 1]
    model = GPT(ctx.model_cfg).to(ctx.device).eval()
    curves = {n: [] for n in sets}
    it = steps
    if progress:
        from tqdm import tqdm
        it = tqdm(steps, desc=f"{run_dir.name}: eval sizes", unit="ckpt")
    for step in it:
        load_model_at(model, run_dir, step)
        for n, evalset in sets.items():
            curves[n].append(probe_accuracy(model, evalset, ctx.device, autocast=ctx.autocast)[0])
    return {"run": str(run_dir), "steps": steps, "gap_ood": list(gap), "seed_offset": SEED_OFFSET,
            "run_n_probe_eval": t.n_probe_eval, "p_ood": {str(n): c for n, c in curves.items()}}


def summarize_sizes(scored: dict) -> dict:
    """Per size: the significant drops by the study's rule, and the measured noise against the largest set."""
    sizes = sorted(int(n) for n in scored["p_ood"])
    ref = np.asarray(scored["p_ood"][str(sizes[-1])])
    rows = []
    for n in sizes:
        p = np.asarray(scored["p_ood"][str(n)])
        rows.append({
            "n": n,
            "binomial_std_at_0.5": 0.5 / math.sqrt(n),
            "significant_drops": [round(d, 4) for d in oscillation_drops(p, n)],
            # the reference's own noise is still in this gap; it is the smaller set's noise when n << the largest
            "rms_vs_largest": float(np.sqrt(np.mean((p - ref) ** 2))) if n != sizes[-1] else 0.0,
            "best_p_ood": float(p.max()),
        })
    return {**scored, "sizes": rows}


def table_markdown(summary: dict) -> str:
    lines = ["| eval-set size | binomial std at 0.5 | RMS gap to the largest set | significant drops | best p_ood |",
             "|---|---|---|---|---|"]
    for r in summary["sizes"]:
        drops = ", ".join(f"{d:.3f}" for d in r["significant_drops"]) or "none"
        lines.append(f"| {r['n']} | {r['binomial_std_at_0.5']:.3f} | {r['rms_vs_largest']:.3f} | {drops} | "
                     f"{r['best_p_ood']:.3f} |")
    return "\n".join(lines) + "\n"


def fig_eval_sizes(summary: dict):
    """p_ood against step, one curve per eval-set size."""
    from drift.report import plotting as pl
    pl.apply_style()
    fig, ax = pl.new_figure(1, 1, height=2.6)
    for i, r in enumerate(summary["sizes"]):
        ax.plot(summary["steps"], summary["p_ood"][str(r["n"])], "-", lw=1.0, color=f"C{i}",
                label=f"n = {r['n']} ({len(r['significant_drops'])} significant drops)")
    ax.set_xlabel("step")
    ax.set_ylabel("p_ood")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6)
    return fig
