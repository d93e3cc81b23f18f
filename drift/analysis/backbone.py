"""Run-level trajectory geometry (PROTOCOL A1-A7, A11): one run directory in, one JSON-ready results dict out.

    run = load_run("runs/cpu_s42")
    results = analyze_run(run)                     # every number of A1-A7 and A11
    draw_figures(results, run.run_dir)             # figures/*.pdf|png (drift/report/run_figures.py)
    dirs = load_directions("runs/cpu_s42", ["trunk_rownorm_pc1"])["vectors"]

Steps. The analysis steps are `ref_step` plus the run's regular checkpoints after it (step 1 and multiples of
ckpt_every: the paper's 1, 200, ..., 10000), unless `steps` is given. Rows = the analysis steps after ref_step.
The "stride 2" variant of A1 keeps the rows that are multiples of `stride` (default 2 x ckpt_every: the paper's
400). The phase split is the lambda switch (run.json), or the last analysis step before it when the switch is not
a checkpoint. Window bounds of A6/A7 are the paper's, scaled by total_steps / 10000 (the switch sits at 40% in
both), and both the paper's and the run's bounds are recorded.

The Grams of every scope come from the run's Gram cache (drift/analysis/gram_cache.py), so a second analysis of
the same steps reads no checkpoint.

Results layout (every array is a list; NaN marks a value that does not exist, e.g. a fit with < 3 points; JSON
files written by write_analysis show NaN as null). "scope" means trunk, block{l} or block{l}+ln.
  setup        ref_step, analysis_steps, row_steps, row_steps_stride2, stride, ckpt_every, switch_step,
               split_step, total_steps, n_layer, dims {trunk, block, block+ln}
  trunk        A2/A3: rownorm and raw (PCA summaries: sigma2, fractions_full, fractions_top10, k95, k99),
               raw_stride2; pc1_rownorm_top10 (paper-comparable), pc1_rownorm_full, pc2_rownorm_top10,
               pc2_rownorm_full, pc1_raw_full, pc1_raw_top10, pc1_raw_stride2; f_b_final, f_b_mean
  blocks       A1 + A3 per block: layers; pc1 {"block": [per layer], "block+ln": [...]}, pc1_stride2 (same
               shape), f_b_final, f_b_mean (same shape); by_scope {scope: {pca, pca_stride2 (summaries), pc1,
               pc1_stride2, f_b_final, f_b_mean}}; v_b of a block is its raw PC1 (stride ckpt_every), sign-fixed
  rolling      A4: trunk {variant, window, first_steps, last_steps, centers, pc1_fraction, rho, rho_steps,
               rho_mean, rho_max, rho_min, rho_argmin_step}; blocks {scope: same, global-reference raw variant};
               blocks_summary {"block"|"block+ln": {rho_mean_min, rho_mean_max, rho_min}}
  phases       A5: split_step, early_pc1_full/top10, late_pc1_full/top10, abs_cos, angle_deg, early_rows,
               late_rows, centers, A_E, A_L (or {"skipped": reason})
  power_laws   A6: windows [{paper_lo, paper_hi, lo, hi}], a (fits of |a(t)|), r_norm (fits of ||r(t)||);
               each fit {gamma, log_C, r2, n, lo, hi}
  correlations A7: windows (as above), p_ood_vs_r_norm [{r, n, lo, hi}]
  switching    A11: steps/p_ood (the series searched), peaks, peak_prominence, troughs, trough_depth (steps),
               pairs [[peak, trough]], extended_pairs, first_pair, first {trunk, by_scope {scope: switch geometry},
               summary {"block"|"block+ln": {c_min, c_max, c2_min, c2_max, e_2_6_min, e_2_6_max}}},
               all_pairs [same per pair], dimension {pairs, cos, max_abs_offdiag_cos, residual_norms,
               threshold, effective_dim} (trunk, extended pairs). A switch geometry is {peak_step,
               trough_step, displacement_norm, c, c2, transverse_share, e_2_6, e_2_6_unresidualized}
  series       step-aligned arrays: steps (= row_steps), a, r_norm, drift_norm, f_b, p_ood, val_loss;
               speed_steps, a_dot, r_dot (interval midpoints); rho_steps, rho; centers, window_pc1, A_E, A_L;
               blocks {scope: {a, r_norm, f_b}} (per-block raw v_b; Fig 1 is blocks["block0+ln"])
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from drift.paper import PAPER_CORRELATION_WINDOWS, PAPER_MAIN_STEPS, PAPER_POWER_LAW_WINDOWS
from drift.run import checkpoint as ck
from drift.run import digests, provenance
from drift.geometry import fits
from drift.geometry.decomposition import decompose
from drift.geometry.jsonable import jsonable
from drift.geometry.pca import PCAResult, drift_pca
from drift.geometry.switching import (displacement_dimension, extended_switch_pairs, find_peaks_troughs,
                                      switch_geometry, switch_pairs)
from drift.geometry.trajectory import Trajectory
from drift.geometry.windows import RollingResult, phase_backbones, rolling_backbone, rolling_backbone_global_ref
from drift.analysis import gram_cache, gram_stream
from drift.run.params import all_scopes
from drift.run.info import RunInfo, analysis_dir, load_run

DIRECTIONS = "directions.pt"


# --------------------------------------------------------------------------------------------------------------
# Setup: which steps, which split, the trajectories of every scope
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Setup:
    run: RunInfo
    ref_step: int
    steps: list[int]         # analysis steps (ref_step first)
    rows: list[int]          # steps after ref_step
    rows2: list[int]         # the stride-2 subset of rows
    stride: int
    split_step: int
    n_layer: int
    trajs: dict              # scope -> geometry.Trajectory over `steps`

    def scopes(self, with_ln: bool) -> list[str]:
        return [f"block{l}{'+ln' if with_ln else ''}" for l in range(self.n_layer)]


def _analysis_steps(run: RunInfo, ref_step: int, steps: Sequence[int] | None) -> list[int]:
    """ref_step, then the given steps (default: the regular checkpoints) after it; all must exist on disk."""
    base = run.regular_steps(start=1) if steps is None else [int(s) for s in steps]
    chosen = sorted({ref_step} | {s for s in base if s > ref_step})
    missing = [s for s in chosen if s not in run.steps]
    if missing:
        raise ck.RunError(f"no checkpoint for step(s) {missing[:5]} in {run.run_dir} "
                          f"(e.g. {ck.ckpt_path(run.run_dir, missing[0])} is missing)")
    if len(chosen) < 3:
        raise ck.RunError(f"{run.run_dir}: the analysis needs at least 2 checkpoints after step {ref_step}, "
                          f"found {len(chosen) - 1}")
    return chosen


def _split(run: RunInfo, steps: list[int], split_step: int | None) -> int:
    """The given split (must be an analysis step), else the last analysis step at or before the switch."""
    if split_step is not None:
        if split_step not in steps[1:-1]:
            raise ck.RunError(f"split step {split_step} is not an analysis checkpoint strictly between "
                              f"{steps[0]} and {steps[-1]}")
        return int(split_step)
    before = [s for s in steps[1:-1] if s <= run.switch_step]
    return before[-1] if before else steps[len(steps) // 2]


def prepare(run, ref_step: int = 1, steps: Sequence[int] | None = None, split_step: int | None = None,
            stride: int | None = None, progress: bool = True) -> Setup:
    """Resolve the steps and split from run.json, and load the Grams of every scope (cached)."""
    run = run if isinstance(run, RunInfo) else load_run(run)
    chosen = _analysis_steps(run, int(ref_step), steps)
    grams = gram_cache.trajectory_grams(run.run_dir, chosen, all_scopes(run.config.model.n_layer),
                                        progress=progress)
    return setup_from_grams(run, chosen, grams, split_step, stride)


def setup_from_grams(run: RunInfo, steps: Sequence[int], grams: dict[str, np.ndarray],
                     split_step: int | None = None, stride: int | None = None) -> Setup:
    """A Setup over `steps` (the reference step first) from given Grams of every scope: the run's own (prepare)
    or a null model's (drift.nulls.trajectory), so that both go through the same statistics."""
    chosen = [int(s) for s in steps]
    stride = int(stride) if stride else 2 * run.ckpt_every
    rows = chosen[1:]
    n_layer = run.config.model.n_layer
    trajs = {s: Trajectory(chosen, grams[s]) for s in all_scopes(n_layer)}
    return Setup(run, chosen[0], chosen, rows, [s for s in rows if s % stride == 0], stride,
                 _split(run, chosen, split_step), n_layer, trajs)


# --------------------------------------------------------------------------------------------------------------
# Sections of the results
# --------------------------------------------------------------------------------------------------------------

def _pca(su: Setup, scope: str, rows: list[int], row_normalize: bool = False) -> PCAResult | None:
    if len(rows) < 1:
        return None
    return drift_pca(su.trajs[scope], su.ref_step, rows, row_normalize=row_normalize)


def _frac(pca: PCAResult | None, k: int, which: str = "fractions_full") -> float:
    if pca is None or pca.sigma2.size <= k:
        return math.nan
    return float(getattr(pca, which)[k])


def _trunk(su: Setup) -> tuple[dict, dict]:
    """A2 and A3 at trunk level; returns (section, per-row series)."""
    rn, raw, raw2 = (_pca(su, "trunk", su.rows, True), _pca(su, "trunk", su.rows),
                     _pca(su, "trunk", su.rows2))
    dec = decompose(su.trajs["trunk"], rn.backbone, su.ref_step, su.rows)
    section = {
        "rownorm": rn.summary(), "raw": raw.summary(), "raw_stride2": raw2.summary() if raw2 else None,
        "pc1_rownorm_top10": _frac(rn, 0, "fractions_top10"), "pc1_rownorm_full": _frac(rn, 0),
        "pc2_rownorm_top10": _frac(rn, 1, "fractions_top10"), "pc2_rownorm_full": _frac(rn, 1),
        "pc1_raw_full": _frac(raw, 0), "pc1_raw_top10": _frac(raw, 0, "fractions_top10"),
        "pc1_raw_stride2": _frac(raw2, 0), "f_b_final": dec.f_b_final, "f_b_mean": dec.f_b_mean,
    }
    series = {"steps": dec.steps, "a": dec.a, "r_norm": dec.residual_norm, "drift_norm": dec.drift_norm,
              "f_b": dec.f_b, "speed_steps": dec.speed_steps, "a_dot": dec.a_dot, "r_dot": dec.r_dot}
    return section, series


def _blocks(su: Setup) -> tuple[dict, dict, dict]:
    """A1 and per-block A3 with the per-block raw v_b; returns (section, series, {scope: raw PCA})."""
    by_scope, series, pcas = {}, {}, {}
    for scope in su.scopes(False) + su.scopes(True):
        pca, pca2 = _pca(su, scope, su.rows), _pca(su, scope, su.rows2)
        dec = decompose(su.trajs[scope], pca.backbone, su.ref_step, su.rows)
        pcas[scope] = pca
        by_scope[scope] = {"pca": pca.summary(), "pca_stride2": pca2.summary() if pca2 else None,
                           "pc1": pca.rho1, "pc1_stride2": _frac(pca2, 0),
                           "f_b_final": dec.f_b_final, "f_b_mean": dec.f_b_mean}
        series[scope] = {"a": dec.a, "r_norm": dec.residual_norm, "f_b": dec.f_b}
    section = {"layers": list(range(su.n_layer)), "by_scope": by_scope}
    for key in ("pc1", "pc1_stride2", "f_b_final", "f_b_mean"):
        section[key] = {fam: [by_scope[s][key] for s in su.scopes(fam == "block+ln")]
                        for fam in ("block", "block+ln")}
    return section, series, pcas


def _rolling(su: Setup, window: int) -> tuple[dict, RollingResult]:
    """A4: trunk window-relative row-normalized variant, and the per-block global-reference raw variant."""
    trunk = rolling_backbone(su.trajs["trunk"], su.rows, window)
    blocks = {s: rolling_backbone_global_ref(su.trajs[s], su.ref_step, su.rows, window).to_dict()
              for s in su.scopes(False) + su.scopes(True)}
    summary = {}
    for fam in ("block", "block+ln"):
        means = [blocks[s]["rho_mean"] for s in su.scopes(fam == "block+ln")]
        mins = [blocks[s]["rho_min"] for s in su.scopes(fam == "block+ln")]
        summary[fam] = {"rho_mean_min": _nanfn(np.nanmin, means), "rho_mean_max": _nanfn(np.nanmax, means),
                        "rho_min": _nanfn(np.nanmin, mins)}
    return {"trunk": trunk.to_dict(), "blocks": blocks, "blocks_summary": summary}, trunk


def _nanfn(fn, values) -> float:
    v = np.asarray(values, dtype=np.float64)
    return float(fn(v)) if np.isfinite(v).any() else math.nan


def _phases(su: Setup, rolling: RollingResult) -> dict:
    """A5 with the split at su.split_step (the switch)."""
    early = [s for s in su.rows if s <= su.split_step]
    late = [s for s in su.rows if s > su.split_step]
    if len(early) < 2 or len(late) < 2:
        return {"skipped": f"needs >= 2 checkpoints on each side of the split {su.split_step}",
                "split_step": su.split_step}
    out = phase_backbones(su.trajs["trunk"], su.ref_step, su.split_step, su.steps, rolling)
    out.pop("v_early")
    out.pop("v_late")
    return out


def scaled_windows(paper_windows, total_steps: int) -> list[dict]:
    """The paper's (lo, hi] windows of a 10k-step run, scaled to `total_steps` (exact; ints when integral)."""
    def scale(x: int):
        f = Fraction(x * total_steps, PAPER_MAIN_STEPS)
        return int(f) if f.denominator == 1 else float(f)
    return [{"paper_lo": lo, "paper_hi": hi, "lo": scale(lo), "hi": scale(hi)} for lo, hi in paper_windows]


def _fits(su: Setup, series: dict) -> tuple[dict, dict]:
    """A6 power laws of |a| and ||r||, A7 corr(p_ood, ||r||), over the run-scaled paper windows."""
    total = su.run.total_steps
    pw, cw = scaled_windows(PAPER_POWER_LAW_WINDOWS, total), scaled_windows(PAPER_CORRELATION_WINDOWS, total)
    t = np.asarray(series["steps"], dtype=np.float64)
    bounds = [(w["lo"], w["hi"]) for w in pw]
    power = {"windows": pw, "a": fits.power_law_table(t, np.abs(series["a"]), bounds),
             "r_norm": fits.power_law_table(t, series["r_norm"], bounds)}
    corr = {"windows": cw, "p_ood_vs_r_norm": fits.pearson_table(
        t, series["p_ood"], series["r_norm"], [(w["lo"], w["hi"]) for w in cw], exclude_steps=(su.ref_step,))}
    return power, corr


def _pair_geometry(su: Setup, peak: int, trough: int, pcas: dict, trunk_raw: PCAResult) -> dict:
    by_scope = {s: switch_geometry(su.trajs[s], peak, trough, pcas[s]) for s in pcas}
    summary = {}
    for fam in ("block", "block+ln"):
        vals = {k: [by_scope[s][k] for s in su.scopes(fam == "block+ln")] for k in ("c", "c2", "e_2_6")}
        summary[fam] = {f"{k}_{m}": _nanfn(fn, v) for k, v in vals.items()
                        for m, fn in (("min", np.nanmin), ("max", np.nanmax))}
    return {"pair": [peak, trough], "trunk": switch_geometry(su.trajs["trunk"], peak, trough, trunk_raw),
            "by_scope": by_scope, "summary": summary}


def _extrema(su: Setup) -> dict:
    """A11 peaks, troughs and pairs (as steps) of the p_ood series at the analysis steps (step 1 included)."""
    p = su.run.metric("p_ood", su.steps)
    ok = np.isfinite(p)
    steps = np.asarray(su.steps)[ok]
    ext = find_peaks_troughs(p[ok])

    def as_steps(pairs):
        return [(int(steps[a]), int(steps[b])) for a, b in pairs]

    return {"steps": steps, "p_ood": p[ok], "peaks": [int(steps[i]) for i in ext["peaks"]],
            "peak_prominence": ext["peak_prominence"], "troughs": [int(steps[i]) for i in ext["troughs"]],
            "trough_depth": ext["trough_depth"],
            "pairs": as_steps(switch_pairs(ext["peaks"], ext["troughs"])),
            "extended_pairs": as_steps(extended_switch_pairs(ext["peaks"], ext["troughs"]))}


def _switching(su: Setup, pcas: dict) -> dict:
    """A11: per-scope switch geometry of the first pair and of every pair; trunk switching dimension."""
    out = _extrema(su)
    pairs = out["pairs"]
    out.update(first_pair=list(pairs[0]) if pairs else None, first=None, all_pairs=[], dimension=None)
    if pairs:
        trunk_raw = _pca(su, "trunk", su.rows)
        out["all_pairs"] = [_pair_geometry(su, a, b, pcas, trunk_raw) for a, b in pairs]
        out["first"] = out["all_pairs"][0]
        out["dimension"] = displacement_dimension(su.trajs["trunk"], out["extended_pairs"])
    return out


def _setup_section(su: Setup) -> dict:
    m, run = su.run.config.model, su.run
    block = 4 * m.d_model ** 2 + 2 * m.d_model * m.d_ff
    return {"ref_step": su.ref_step, "analysis_steps": su.steps, "row_steps": su.rows,
            "row_steps_stride2": su.rows2, "stride": su.stride, "ckpt_every": run.ckpt_every,
            "switch_step": run.switch_step, "split_step": su.split_step, "total_steps": run.total_steps,
            "n_layer": su.n_layer, "dims": {"trunk": su.n_layer * block, "block": block,
                                            "block+ln": block + 4 * m.d_model}}


def analyze_run(run, ref_step: int = 1, window: int = 10, split_step: int | None = None,
                stride: int | None = None, steps: Sequence[int] | None = None, progress: bool = True) -> dict:
    """Every number of A1-A7 and A11 for one run (layout in the module docstring)."""
    return analyze_setup(prepare(run, ref_step, steps, split_step, stride, progress), window)


def scope_dims(su: Setup) -> dict[str, int]:
    """{scope: number of parameters} (the dimension D a null model draws its steps in)."""
    dims = _setup_section(su)["dims"]
    return {s: dims["trunk"] if s == "trunk" else dims["block+ln" if s.endswith("+ln") else "block"]
            for s in su.trajs}


def analyze_setup(su: Setup, window: int = 10, jsonify: bool = True) -> dict:
    """analyze_run on a prepared Setup (the run's Grams, or a null model's); `jsonify=False` leaves numpy arrays
    in place (the null draws read a few numbers and skip the conversion)."""
    trunk, series = _trunk(su)
    blocks, block_series, pcas = _blocks(su)
    rolling, trunk_rolling = _rolling(su, window)
    phases = _phases(su, trunk_rolling)
    series.update(p_ood=su.run.metric("p_ood", su.rows), val_loss=su.run.metric("val_loss", su.rows),
                  rho_steps=trunk_rolling.rho_steps, rho=trunk_rolling.rho, centers=trunk_rolling.centers,
                  window_pc1=trunk_rolling.pc1_fraction, A_E=phases.get("A_E", []), A_L=phases.get("A_L", []),
                  blocks=block_series)
    power, corr = _fits(su, series)
    out = {"setup": _setup_section(su), "trunk": trunk, "blocks": blocks, "rolling": rolling, "phases": phases,
           "power_laws": power, "correlations": corr, "switching": _switching(su, pcas), "series": series}
    return jsonable(out) if jsonify else out


# --------------------------------------------------------------------------------------------------------------
# Directions: explicit parameter-space vectors for the mechanism analyses (A8-A10)
# --------------------------------------------------------------------------------------------------------------

def direction_coefficients(su: Setup) -> tuple[dict[str, tuple[str, np.ndarray]], list[int] | None]:
    """{name: (scope, coefficients over su.steps)} and the switch pair used for "trunk_switch"."""
    rn, raw = _pca(su, "trunk", su.rows, True), _pca(su, "trunk", su.rows)
    coefs = {"trunk_rownorm_pc1": ("trunk", rn.directions[0]), "trunk_raw_pc1": ("trunk", raw.directions[0])}
    if raw.directions.shape[0] > 1:
        coefs["trunk_raw_pc2"] = ("trunk", raw.directions[1])
    for scope in su.scopes(False) + su.scopes(True):
        coefs[f"{scope}_raw_pc1"] = (scope, _pca(su, scope, su.rows).directions[0])
    pairs = _extrema(su)["pairs"]
    pair = list(pairs[0]) if pairs else None
    if pair:
        traj = su.trajs["trunk"]
        coefs["trunk_switch"] = ("trunk", traj.normalize(traj.diff(*pair)))
    return coefs, pair


DIRECTIONS_PRODUCER = "trajectory_pca_uncentered.py"


def _directions_digest(payload: dict) -> str:
    """Digest of everything directions.pt holds but the vectors' bytes, which their per-vector "digests" cover."""
    return provenance.content_digest({k: v for k, v in payload.items() if k not in ("vectors", "digest")})


def save_directions(run_dir, ref_step: int = 1, steps: Sequence[int] | None = None,
                    split_step: int | None = None, progress: bool = True) -> Path:
    """Write analysis/directions.pt (see load_directions) with one streaming pass over the checkpoints."""
    su = prepare(run_dir, ref_step, steps, split_step, progress=progress)
    coefs, pair = direction_coefficients(su)
    vectors = gram_stream.materialize(su.run.run_dir, su.steps, coefs, progress=progress)
    payload = {"ref_step": su.ref_step, "steps": su.steps, "row_steps": su.rows, "switch_pair": pair,
               "scopes": {k: v[0] for k, v in coefs.items()}, "vectors": vectors,
               "digests": digests.state_digests(vectors),
               "provenance": provenance.record(su.run.run_dir, su.steps, su.run.steps)}
    payload["digest"] = _directions_digest(payload)
    path = analysis_dir(su.run.run_dir) / DIRECTIONS
    ck.atomic_torch_save(payload, path)
    return path


def _checked_directions(path: Path, run_dir) -> dict:
    """directions.pt, refused (RunError, one line naming the file and the command that remakes it) when it is
    damaged, was written before its inputs were recorded, or no longer describes the run's checkpoints."""
    remake = f"remake it with `python {DIRECTIONS_PRODUCER} {run_dir} --save-directions`"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or garbled files
        raise ck.RunError(f"{path} is damaged ({type(e).__name__}: {str(e)[:80]}); {remake}") from None
    if not isinstance(payload, dict) or "digest" not in payload or "provenance" not in payload:
        raise ck.RunError(f"{path} was written before the inputs of directions were recorded; {remake}")
    bad = digests.first_mismatch(payload["vectors"], payload["digests"])
    if payload["digest"] != _directions_digest(payload) or bad is not None:
        where = f"vector {bad}" if bad is not None else "its metadata"
        raise ck.RunError(f"{path} is damaged ({where} does not match the digest stored when it was written); "
                          f"{remake}")
    reason = provenance.stale_reason(payload["provenance"], run_dir)
    if reason is not None:
        raise ck.RunError(f"{path} is out of date: {reason}; {remake}")
    return payload


def load_directions(run_dir, names: Sequence[str] | None = None, compute_if_missing: bool = True) -> dict:
    """analysis/directions.pt = {"ref_step", "steps", "row_steps", "switch_pair", "scopes": {name: scope},
    "vectors": {name: float32 unit vector in canonical order}, "digests": {name: XXH3-128 of the vector},
    "provenance": drift.run.provenance.record of its checkpoints, "digest": of the rest}; `names` restricts
    "vectors".

    Names: trunk_rownorm_pc1 (A2 v_b), trunk_raw_pc1, trunk_raw_pc2 (A10), block{l}_raw_pc1 and
    block{l}+ln_raw_pc1 (A8/A9 per-block v_b), trunk_switch (v_sw of the first peak->trough pair, if any).
    Every PC1 is sign-fixed so that a(t_last) > 0. A missing file is computed (default steps) when
    compute_if_missing, else a RunError; a damaged or out-of-date one is a RunError naming the command that
    remakes it (_checked_directions): directions are an input of other analyses, so they are not silently redone."""
    path = Path(run_dir) / "analysis" / DIRECTIONS
    if not path.exists():
        if not compute_if_missing:
            raise ck.RunError(f"{path} is missing; run `python {DIRECTIONS_PRODUCER} {run_dir} --save-directions`")
        save_directions(run_dir)
    payload = _checked_directions(path, run_dir)
    if names is not None:
        unknown = [n for n in names if n not in payload["vectors"]]
        if unknown:
            raise ck.RunError(f"directions {unknown} not in {path}; available: {sorted(payload['vectors'])}")
        payload["vectors"] = {n: payload["vectors"][n] for n in names}
    return payload
