"""Null bands of the beta2-sweep statistics that claims C14, C17, C18 and C19 read (PROTOCOL E3, A13, section 9).

Per beta2 run, each span a statistic is read over is replaced by the null trajectories of drift/nulls/trajectory.py (N1
matched random walk, N2 sign-flipped updates, N3 permuted updates), each drawn from the run's own trunk Gram over
that span (the cached Grams; no checkpoint is read twice):

  statistic      claim  span (checkpoints, anchored at step 1)      what it is
  pc1_common     C17    steps 1 .. the last step every run reached   row-normalized PC1 (%), rows from the first
                                                                     regular checkpoint
  window_pc1     C14    the [600, 2000]-paper-step window, scaled    row-normalized PC1 (%) of the drifts from the
                        by the run's Scale                           window's first checkpoint
  gamma_a        C18    the whole run                                power-law exponent of |a(t)| on (0, T/2], v_b =
                                                                     the run's row-normalized PC1
  early_abs_cos  C19    the whole run                                mean |cos(theta_s - theta_{s-lag}, v_b)| over
                                                                     ends s <= T/2 (lag = scaled 200)

Observed and null values go through the functions the beta2 table itself uses (drift.analysis.beta2:
beta2_trajectory_geometry, common_pc1; drift.analysis.control_geometry: safe_window), so every observed value equals the reported one. A window null
redraws only the window's own updates, as the control-window nulls do. Draw d of null k for run r uses
numpy default_rng([seed, k, d, crc32(r)]): the runs are drawn independently of one another and any draw can be
redone alone.

Rule (fixed before any null was computed on a real sweep; also in the README):
  Compared runs. The runs the claim readers (drift.report.readers) compare: every p_probe group with >= 3 runs
    (drift.analysis.beta2.compared_groups), ordered by decreasing beta2; smaller groups (the p_probe 0.20 pair run for the
    comparison with the paper) get their per-run bands but no verdict. Within a group, only the runs whose observed
    statistic is finite count, as the readers skip missing values.
  Trend claims C14, C17, C19 ("X falls as beta2 drops"). The question: does the fall come from the runs' own
    update-norm profiles alone (learning-rate schedule, step sizes, a blow-up)? Net fall = stat(highest beta2) -
    stat(lowest beta2). The null's net fall in draw k is stat_k(highest) - stat_k(lowest), the two runs drawn
    independently. "Beyond null" when the observed net fall lies above the N1 central 95% band of the null's net
    fall (a larger fall than matched random walks with the same step norms give) in every compared group; "within
    null" otherwise.
  C18 ("gamma_a > 1 for every beta2"). "Beyond null" when every compared run's gamma_a lies above its own N1 band.
  N2 and N3 are reported beside N1. drift/report/null_verdicts.py (BETA2_NULLS) reads the verdicts from the JSON.

    res = beta2_nulls("runs/beta2_s42", n_draws=200, seed=0)    # trajectory_nulls.py --beta2 writes it to nulls.json
    res["trends"]["0.1"]["pc1_common"]       # {"claim", "high", "low", "beta2", "observed", "N1": band, "N2", "N3"}
    res["runs"]["b0.9"]["statistics"]["gamma_a"]     # {"observed", "N1": {"median", "lo", "hi", "n"}, "N2", "N3"}
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from drift.run import checkpoint as ck
from drift.train.control_runs import Scale
from drift.analysis.beta2 import (beta2_spans, beta2_trajectory_geometry, beta2_window, common_pc1, common_span,
                                  compared_groups, load_beta2_runs)
from drift.analysis.control_geometry import safe_window, trunk_trajectory
from drift.geometry.jsonable import jsonable
from drift.geometry.trajectory import Trajectory
from drift.nulls.trajectory import KEY_NULL, LEVEL, NULLS, band, collect, draw_rng, null_gram, nulls_block
from drift.run.params import trunk_size
from drift.run.info import RunInfo

STATISTICS = {"pc1_common": "C17", "window_pc1": "C14", "gamma_a": "C18", "early_abs_cos": "C19"}
TRENDS = ("pc1_common", "window_pc1", "early_abs_cos")    # read as "falls as beta2 drops"
RULE = {
    "compared": "p_probe groups with >= 3 runs, by decreasing beta2; runs with a finite observed value",
    "trend": f"C14, C17, C19: beyond null when the observed net fall stat(highest beta2) - stat(lowest beta2) lies "
             f"above the {KEY_NULL} central {LEVEL:.0%} band of the null's net fall (independent draws per run), in "
             "every compared group; within null otherwise",
    "each": f"C18: beyond null when every compared run's gamma_a lies above its own {KEY_NULL} band",
}


@dataclass(frozen=True)
class Spans:
    """The checkpoints each statistic of one run reads (module docstring)."""
    steps: list[int]            # the whole run, checkpoints >= 1
    rows: list[int]             # its PCA rows
    common_steps: list[int]     # checkpoints in [1, the last step every run reached]
    common_rows: list[int]
    window: list[int]           # C14's window checkpoints present
    total_steps: int
    lag: int

    @classmethod
    def of(cls, run: RunInfo, common_last: int) -> "Spans":
        steps, rows, _ = beta2_spans(run)
        common_steps, common_rows = common_span(run, common_last)
        return cls(steps, rows, common_steps, common_rows, beta2_window(run), run.config.train.total_steps,
                   Scale.of_control(run.config).step(200))


def claim_statistics(sp: Spans, whole: Trajectory | None, common: Trajectory | None,
                     window: Trajectory | None) -> dict[str, float]:
    """The four statistics from trajectories over sp.steps, sp.common_steps and (at least) sp.window, the run's or
    a null's; NaN where a span is missing or too short, as the table leaves it empty."""
    out = dict.fromkeys(STATISTICS, math.nan)
    if whole is not None and len(sp.rows) >= 2:
        g, _ = beta2_trajectory_geometry(whole, sp.rows, sp.total_steps, sp.lag)
        out.update(gamma_a=g["gamma_a"][0]["gamma"], early_abs_cos=g["early_abs_cos"])
    if common is not None and len(sp.common_rows) >= 2:
        out["pc1_common"] = common_pc1(common, sp.common_rows)
    if window is not None:
        out["window_pc1"] = safe_window(window, sp.window).get("pc1")
    return {k: float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan for k, v in out.items()}


def null_spans(sp: Spans, whole: Trajectory | None, common: Trajectory | None) -> dict[str, Trajectory]:
    """The observed trajectories a null redraws, each over its own span: the whole run, the common span and the
    window (a sub-Gram of the whole run's). Spans too short for their statistic are left out."""
    out = {}
    if whole is not None and len(sp.rows) >= 2:
        out["whole"] = whole
    if common is not None and len(sp.common_rows) >= 2:
        out["common"] = common
    w = [s for s in sp.window if whole is not None and whole.has(s)]
    if len(w) >= 3:
        i = whole.indices(w)
        out["window"] = Trajectory(np.array(w), whole.P[np.ix_(i, i)])
    return out


def run_null_bands(sp: Spans, whole: Trajectory | None, common: Trajectory | None, D: int, n_draws: int,
                   seed: int, kinds: Sequence[str] = NULLS, stream: int = 0) -> dict:
    """{"statistics": {name: {"observed", kind: band}}, "draws": {kind: {name: [value per draw]}}} of one run."""
    observed = claim_statistics(sp, whole, common, whole)   # the table reads the window from the whole run's Gram
    spans = null_spans(sp, whole, common)
    draws = {}
    for kind in kinds:
        rows = []
        for d in range(n_draws):
            rng = draw_rng(seed, kind, d, stream)
            null = {name: Trajectory(t.steps, null_gram(t.P, kind, D, rng)) for name, t in spans.items()}
            rows.append(claim_statistics(sp, null.get("whole"), null.get("common"), null.get("window")))
        draws[kind] = rows
    return {"statistics": collect(observed, draws),
            "draws": {k: {s: [r[s] for r in rows] for s in STATISTICS} for k, rows in draws.items()}}


def trend_nulls(groups: dict[str, list[str]], runs: dict[str, dict], kinds: Sequence[str] = NULLS) -> dict:
    """{group: {statistic: entry}} for the TRENDS: entry = {"claim", "high", "low", "beta2", "observed" net fall,
    kind: band of the null's net fall}, or {"claim", "note"} when fewer than two runs of the group have a value.
    `groups` names the runs of each compared group by decreasing beta2; `runs[name]` is run_null_bands' output
    plus "beta2"."""
    out = {}
    for label, names in groups.items():
        out[label] = {}
        for stat in TRENDS:
            have = [n for n in names if math.isfinite(_observed(runs[n], stat))]
            if len(have) < 2:
                out[label][stat] = {"claim": STATISTICS[stat], "note": f"{len(have)} run(s) with a value; need 2"}
                continue
            hi, lo = runs[have[0]], runs[have[-1]]
            entry = {"claim": STATISTICS[stat], "high": have[0], "low": have[-1], "beta2": [hi["beta2"], lo["beta2"]],
                     "observed": _observed(hi, stat) - _observed(lo, stat)}
            for kind in kinds:
                entry[kind] = band(np.asarray(hi["draws"][kind][stat]) - np.asarray(lo["draws"][kind][stat]))
            out[label][stat] = entry
    return out


def _observed(run: dict, stat: str) -> float:
    v = ((run.get("statistics") or {}).get(stat) or {}).get("observed")
    return math.nan if v is None else float(v)


def _load(run_dir, steps: Sequence[int]) -> tuple[Trajectory | None, str | None]:
    try:
        return trunk_trajectory(run_dir, steps), None
    except (ValueError, ck.RunError) as e:   # non-finite weights after a blow-up: the table leaves it empty too
        return None, f"not computed: {e}"


def _span(steps: Sequence[int]) -> list[int] | None:
    return [int(steps[0]), int(steps[-1]), len(steps)] if len(steps) else None


def beta2_nulls(root, n_draws: int = 200, seed: int = 0, kinds: Sequence[str] = NULLS, allow_missing: bool = False,
                allow_running: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Per-run bands and per-group trend bands of a beta2 sweep directory (layout in trajectory_nulls.py)."""
    runs = load_beta2_runs(root, allow_missing, allow_running)
    last = min(r.last_step for r in runs)
    out: dict[str, dict] = {}
    for run in runs:
        name, t = run.run_dir.name, run.config.train
        sp = Spans.of(run, last)
        whole, note = _load(run.run_dir, sp.steps)
        common, note_common = _load(run.run_dir, sp.common_steps) if len(sp.common_rows) >= 2 else (None, None)
        D = trunk_size(run.config.model)
        entry = {"beta2": t.beta2, "p_probe": t.p_probe, "dim": D, "lag": sp.lag,
                 "spans": {"whole": _span(sp.steps), "rows": _span(sp.rows), "common": _span(sp.common_steps),
                           "window": _span(sp.window)}}
        try:
            entry.update(run_null_bands(sp, whole, common, D, n_draws, seed, kinds, zlib.crc32(name.encode())))
        except ValueError as e:   # a degenerate Gram: the run keeps its note and no statistics, as in the table
            note = f"not computed: {e}"
        entry.update({k: v for k, v in (("note", note), ("note_common", note_common)) if v})
        out[name] = entry
        if log:
            log(f"{name}: " + ", ".join(f"{s} {_observed(entry, s):.4g}" for s in STATISTICS))
    return sweep_result(out, n_draws, seed, kinds, common_last_step=last)


def sweep_result(runs: dict[str, dict], n_draws: int, seed: int, kinds: Sequence[str] = NULLS,
                 common_last_step: int | None = None) -> dict:
    """nulls.json's results from every run's bands (`runs[name]` = run_null_bands' output plus "beta2" and
    "p_probe"): the compared groups, the runs set aside, and the trend bands (JSON-ready)."""
    rows = [{"name": n, "beta2": e["beta2"], "p_probe": e["p_probe"]} for n, e in runs.items()]
    groups = {f"{p:g}": [r["name"] for r in g] for p, g in compared_groups(rows).items()}
    compared = {n for g in groups.values() for n in g}
    return jsonable({
        "nulls": nulls_block(kinds, n_draws, seed, stream="crc32(run name)"),
        "level": LEVEL, "key_null": KEY_NULL, "rule": RULE, "statistics": STATISTICS,
        "common_last_step": common_last_step, "groups": groups, "set_aside": [n for n in runs if n not in compared],
        "runs": runs, "trends": trend_nulls(groups, runs, kinds)})
