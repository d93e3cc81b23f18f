"""The cells and notes the report's tables share: the seeds header, one value per seed, the N1-band cells and notes
of the main runs', the controls' and the beta2 sweep's nulls, and the preset a run's config came from.
"""

from __future__ import annotations

from typing import Callable, Sequence

from drift.config import PRESETS, SAME_EXPERIMENT, Config, resolve
from drift.report.inputs import Evidence, RunEvidence
from drift.report.latex import esc, num
from drift.report.rules import finite

PAPER_N_PARAMS = 51_045_888

def seeds_header(ev: Evidence) -> str:
    labels = [r.label for r in ev.runs]
    if len(labels) <= 2:
        return "ours (" + " / ".join(labels) + ")"
    return rf"ours (mean $\pm$ half-range, {len(labels)} seeds)"


def values(ev: Evidence, name: str, get: Callable[[dict, RunEvidence], object]) -> list:
    """get(results, run) for every seed (None where the analysis is absent or the key is missing)."""
    out = []
    for run in ev.runs:
        res = run.results(name)
        try:
            out.append(get(res, run) if res is not None else None)
        except (KeyError, IndexError, TypeError):
            out.append(None)
    return out


def need(ev: Evidence, name: str) -> str | None:
    """Why a per-run table cannot be built (None if every seed has the analysis)."""
    if not ev.runs:
        return "no main run given"
    missing = [r.missing(name) for r in ev.runs if r.results(name) is None]
    return "; ".join(missing) if missing else None


NULL_HEADER = r"N1 band"
_NULL_NOTE = (r" The last column is the central 95\% band of the same statistic for a matched random walk (N1: "
              r"independent isotropic steps with the run's own step norms; trajectory\_nulls.py), ")


def null_note(ev: Evidence) -> str:
    """The captions' sentence on the N1-band column, matching null_cell: per seed, or the hull over the seeds."""
    return _NULL_NOTE + ("per seed." if len(ev.runs) <= 2 else
                         "from the lowest lower to the highest upper bound over the seeds.")


def band_cell(entry: dict | None, digits: int = 3, scale: float = 1.0) -> str:
    """'lo--hi' of the key null's band of one nulls.json entry ({"observed", "N1": band, ...}); 'n/a' if absent."""
    from drift.nulls.trajectory import KEY_NULL
    b = (entry or {}).get(KEY_NULL) or {}
    return f"{num(b['lo'], digits, scale)}--{num(b['hi'], digits, scale)}" if finite(b.get("lo")) else "n/a"


def null_cell(ev: Evidence, stat: str | None, scale: float = 1.0, digits: int = 3) -> str:
    """The N1 band 'lo--hi' of one nulls.json statistic, per seed with one or two seeds; with more, one band from
    the lowest lower to the highest upper bound over the seeds (five bands side by side would shrink the table past
    reading); '--' for a row with no null statistic."""
    from drift.nulls.trajectory import KEY_NULL
    if stat is None:
        return "--"
    entries = [((run.results("nulls") or {}).get("statistics", {})).get(stat) for run in ev.runs]
    if len(entries) <= 2:
        cells = [band_cell(e, digits, scale) for e in entries]
        return " / ".join(cells) if cells else "n/a"
    bands = [(e or {}).get(KEY_NULL) or {} for e in entries]
    bands = [b for b in bands if finite(b.get("lo")) and finite(b.get("hi"))]
    if not bands:
        return "n/a"
    hull = {KEY_NULL: {"lo": min(b["lo"] for b in bands), "hi": max(b["hi"] for b in bands)}}
    seeds = f"{len(bands)} seeds" if len(bands) == len(entries) else f"{len(bands)} of {len(entries)} seeds"
    return f"{band_cell(hull, digits, scale)} ({seeds})"


CONTROL_NULL_NOTE = (r" The PC1 band is the central 95\% of the window PC1 when the window's own updates are "
                     r"replaced by a matched random walk (N1; trajectory\_nulls.py -{}-controls).")


def control_null_cell(ev: Evidence, run: str, window: str) -> str:
    """N1 band of a control window's PC1 (%), from <controls>/analysis/nulls.json."""
    res = ev.control("nulls")
    entry = ((res or {}).get("rows", {}).get(run) or {}).get(window) or {}
    return band_cell((entry.get("statistics") or {}).get("pc1"))


BETA2_NULL_NOTE = (r" The $\gamma_a$ N1 band is the central 95\% of the same $\gamma_a$ when the run's updates are "
                   r"replaced by a matched random walk with their norms (N1; trajectory\_nulls.py -{}-beta2); the "
                   r"notes give each trend's net fall from the highest to the lowest $\beta_2$ against the N1 band "
                   r"of the null's net fall.")


def beta2_null_cell(ev: Evidence, run: str, stat: str) -> str:
    """N1 band of one beta2 run's statistic, from <beta2>/analysis/nulls.json."""
    entry = ((ev.beta2_nulls or {}).get("runs", {}).get(run) or {}).get("statistics") or {}
    return band_cell(entry.get(stat))


BETA2_TREND_LABELS = {"pc1_common": "PC1 over the common span (C17)", "window_pc1": "window PC1 (C14)",
                      "early_abs_cos": "early $|C|$ (C19)"}


def beta2_trend_notes(ev: Evidence) -> str:
    """One sentence per compared p_probe group: each trend's observed net fall and the N1 band of the null's."""
    res = ev.beta2_nulls
    if res is None:
        return esc(ev.missing_beta2_nulls()) if ev.beta2_dir is not None else ""
    out = []
    for group, trends in res.get("trends", {}).items():
        cells = []
        for stat, label in BETA2_TREND_LABELS.items():
            e = trends.get(stat) or {"note": "absent"}
            if "note" not in e:
                cells.append(rf"{label}, $\beta_2$ {e['beta2'][0]:g} to {e['beta2'][1]:g}: {num(e['observed'])} "
                             f"(N1 {band_cell(e)})")
        if cells:
            out.append(rf"Net falls at $p_{{probe}}$ {esc(group)}: " + "; ".join(cells) + ".")
    return " ".join(out) or r"No $p_{probe}$ group has three or more runs: no trend null."


def with_nulls(ev: Evidence, rows: list[list[str]], stats: Sequence, scale: float = 1.0) -> list[list[str]]:
    """Each row with its N1-band cell appended (stats: one nulls.json key or None per row)."""
    return [row + [null_cell(ev, stat, scale)] for row, stat in zip(rows, stats)]


def dig(d, path):
    for key in path:
        d = d[key]
    return d


IGNORED_FOR_PRESET = SAME_EXPERIMENT | {"seed"}  # a preset names an experiment, whatever seed and machine


def infer_preset(cfg: Config) -> str:
    """The named preset a config came from ("cpu"), or the closest one with the differing fields listed."""
    ours = {**cfg.to_dict()["model"], **cfg.to_dict()["train"]}
    best = None
    for name in PRESETS:
        ref = resolve(name, cfg.train.seed).to_dict()
        ref = {**ref["model"], **ref["train"]}
        diff = sorted(k for k in ref if k not in IGNORED_FOR_PRESET and ref[k] != ours.get(k))
        if best is None or len(diff) < len(best[1]):
            best = (name, diff)
    name, diff = best
    return name if not diff else f"{name} + " + ", ".join(f"{k}={ours[k]}" for k in diff)
