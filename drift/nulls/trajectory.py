"""Null trajectories: which trajectory effects beat a random walk (issue 9; PROTOCOL section 9).

An isotropic random walk already has a dominant first uncentered component (raw PC1 81% for 50 equal steps), so a
trajectory statistic means something only next to what a structureless trajectory with the same step sizes gives.
Three nulls, each a new Gram matrix over the same checkpoint steps, built from the run's cached Gram alone (no
pass over checkpoint files). With u_i = theta_{s_i} - theta_{s_{i-1}} the run's consecutive updates and
U = [<u_i, u_j>] their Gram (a linear combination of the checkpoint Gram):

  N1 matched random walk  independent isotropic steps in the scope's dimension D with the run's own norms
                          ||u_i|| (so the LR schedule and weight-decay shrinkage are kept). The directions of n
                          isotropic Gaussian vectors in R^D have the cosines W_ij / sqrt(W_ii W_jj) of a Wishart
                          matrix W ~ W_n(D, I); W is drawn exactly by the Bartlett decomposition in O(n^2) (the
                          cross terms at their true size for that D, not dropped).
  N2 sign flip            the run's own updates with independent random signs: U_ij e_i e_j (keeps every
                          length and every angle up to sign; destroys the temporal coherence).
  N3 permutation          the run's own updates in a random order: U[pi, pi].

The null trajectory is theta'_{s_0} = 0, theta'_{s_i} = sum_{j <= i} u'_j, so its Gram is L U' L^T with L the
cumulative-sum matrix. Every scope (trunk, block{l}, block{l}+ln) is drawn independently from its own Gram; no
statistic reads two scopes together, so only each scope's own distribution matters.

Statistics are not recomputed here: a null Setup goes through drift.analysis.backbone.analyze_setup and
drift.analysis.updates.scope_update_alignment exactly as the run does (`run_statistics`), and `bands` summarises the
draws by their median and central 95% interval.

Verdict rule (`null_verdict`, fixed before any null was computed on a real run): a claim's key statistic is
"beyond null" when it lies outside the N1 central 95% band on the side the paper predicts (above hi for "high",
below lo for "low"), else "within null". N2 and N3 are reported beside it.

    su = drift.analysis.backbone.prepare("runs/cpu_s42")                 # the run's cached Grams
    res = null_statistics(su, n_draws=200, seed=0)                # trajectory_nulls.py writes it to nulls.json
    res["statistics"]["trunk_pc1_raw"]  # {"observed": .., "N1": {"median", "lo", "hi", "n"}, "N2": .., "N3": ..}
    control_window_nulls("runs/ctrl_s42")                         # Tables 4-5 windows (trajectory_nulls.py --controls)
"""
from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np

from drift.geometry.jsonable import jsonable
from drift.geometry.trajectory import Trajectory
from drift.geometry.windows import handoff_margin, window_geometry

NULLS = ("N1", "N2", "N3")
NULL_NAMES = {"N1": "matched random walk", "N2": "sign-flipped updates", "N3": "permuted updates"}
KEY_NULL = "N1"        # the null a verdict is read against
LEVEL = 0.95           # central band
BEYOND, WITHIN, NO_NULL = "beyond null", "within null", "no null"
SPECTRUM_K = 10        # explained-variance components kept per spectrum
_KIND_CODE = {"N1": 1, "N2": 2, "N3": 3}
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------------------------------------------
# Null Grams (pure math)
# --------------------------------------------------------------------------------------------------------------

def update_coefs(T: int) -> np.ndarray:
    """(T-1, T) coefficients of the consecutive updates theta_i - theta_{i-1}."""
    C = np.zeros((T - 1, T))
    idx = np.arange(T - 1)
    C[idx, idx + 1] = 1.0
    C[idx, idx] = -1.0
    return C


def update_gram(P: np.ndarray) -> np.ndarray:
    """U = [<u_i, u_j>] of the consecutive updates, from any anchored checkpoint Gram P (coefficients sum to 0)."""
    C = update_coefs(P.shape[0])
    U = C @ P @ C.T
    return 0.5 * (U + U.T)


def gram_from_updates(U: np.ndarray) -> np.ndarray:
    """Checkpoint Gram (T = n + 1, anchored at the first checkpoint) of the walk whose updates have Gram U."""
    n = U.shape[0]
    L = np.vstack([np.zeros((1, n)), np.tril(np.ones((n, n)))])
    P = L @ U @ L.T
    return 0.5 * (P + P.T)


def wishart_bartlett(n: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """W ~ Wishart_n(D, I) = G G^T for G an n x D standard Gaussian matrix, drawn as A A^T with the Bartlett
    factor A: lower triangular, A_ii = sqrt(chi2(D - i)) (i = 0..n-1), A_ij ~ N(0, 1) below the diagonal."""
    if D < n:
        raise ValueError(f"dimension D={D} is smaller than the number of steps n={n}")
    A = np.tril(rng.standard_normal((n, n)), -1)
    A[np.diag_indices(n)] = np.sqrt(rng.chisquare(D - np.arange(n)))
    return A @ A.T


def isotropic_cosines(n: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """Cosine matrix of n independent isotropic directions in R^D (exact, any D >= n)."""
    W = wishart_bartlett(n, D, rng)
    d = np.sqrt(np.diag(W))
    C = W / d[:, None] / d[None, :]
    C[np.diag_indices(n)] = 1.0
    return C


def null_update_gram(U: np.ndarray, kind: str, D: int, rng: np.random.Generator) -> np.ndarray:
    """The null's update Gram from the run's update Gram U (module docstring)."""
    n = U.shape[0]
    if kind == "N1":
        norms = np.sqrt(np.clip(np.diag(U), 0.0, None))
        return norms[:, None] * isotropic_cosines(n, D, rng) * norms[None, :]
    if kind == "N2":
        e = rng.choice(np.array([-1.0, 1.0]), size=n)
        return U * e[:, None] * e[None, :]
    if kind == "N3":
        p = rng.permutation(n)
        return U[np.ix_(p, p)]
    raise ValueError(f"unknown null {kind!r}; use one of {NULLS}")


def null_gram(P: np.ndarray, kind: str, D: int, rng: np.random.Generator) -> np.ndarray:
    """A null trajectory's checkpoint Gram over the same steps as P."""
    return gram_from_updates(null_update_gram(update_gram(P), kind, D, rng))


def draw_rng(seed: int, kind: str, draw: int, stream: int | None = None) -> np.random.Generator:
    """The generator of one draw: SeedSequence([seed, null code, draw]), so any draw can be redone alone; `stream`
    (appended when given) keeps the draws of several runs independent of one another."""
    key = [int(seed), _KIND_CODE[kind], int(draw)] + ([int(stream)] if stream is not None else [])
    return np.random.default_rng(key)


def nulls_block(kinds: Sequence[str], n_draws: int, seed: int, stream: str | None = None) -> dict:
    """The "nulls" entry of a nulls.json: each null's name, draws, seed and the generator of every draw (draw_rng;
    `stream` names what the optional fourth key is)."""
    tail = f", {stream}" if stream else ""
    return {k: {"name": NULL_NAMES[k], "n_draws": n_draws, "seed": seed,
                "rng": f"numpy default_rng([{seed}, {_KIND_CODE[k]}, draw{tail}]) for draw in 0..{n_draws - 1}"}
            for k in kinds}


def null_grams(grams: dict[str, np.ndarray], dims: dict[str, int], kind: str,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One draw of every scope (in the given order, each from its own Gram and dimension)."""
    return {s: null_gram(P, kind, int(dims[s]), rng) for s, P in grams.items()}


# --------------------------------------------------------------------------------------------------------------
# Bands and verdicts
# --------------------------------------------------------------------------------------------------------------

def band(values, level: float = LEVEL) -> dict:
    """Median and central `level` interval over the finite draws (n = how many were finite)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[np.isfinite(v)]
        if v.size == 0:
            return {"median": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
        q = np.percentile(v, [50, 50 * (1 - level), 50 * (1 + level)])
        return {"median": float(q[0]), "lo": float(q[1]), "hi": float(q[2]), "n": int(v.size)}
    cols = [band(v[:, k], level) for k in range(v.shape[1])]  # a spectrum: one band per component
    return {key: [c[key] for c in cols] for key in ("median", "lo", "hi", "n")}


def null_verdict(observed, null_band: dict | None, side: str) -> str:
    """BEYOND when `observed` lies outside the band on the predicted side ("high": above hi, "low": below lo)."""
    if null_band is None or not _finite(observed) or not _finite(null_band.get("lo")) \
            or not _finite(null_band.get("hi")):
        return NO_NULL
    if side == "high":
        return BEYOND if observed > null_band["hi"] else WITHIN
    if side == "low":
        return BEYOND if observed < null_band["lo"] else WITHIN
    raise ValueError(f"side must be 'high' or 'low', got {side!r}")


def in_band(value, null_band: dict | None) -> bool | None:
    """Whether a value (e.g. the paper's own) lies inside the band; None when either is undefined."""
    if null_band is None or not _finite(value) or not _finite(null_band.get("lo")):
        return None
    return bool(null_band["lo"] <= value <= null_band["hi"])


def _finite(x) -> bool:
    return isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool) and math.isfinite(x)


# --------------------------------------------------------------------------------------------------------------
# Statistics a claim reads, from the same analysis code the run goes through
# --------------------------------------------------------------------------------------------------------------

def _get(d, *path):
    for p in path:
        if d is None:
            return math.nan
        d = d[p] if not isinstance(d, dict) else d.get(p)
    return math.nan if d is None else d


def _nanreduce(fn, values) -> float:
    v = np.asarray([math.nan if x is None else x for x in values], dtype=np.float64)
    return float(fn(v[np.isfinite(v)])) if np.isfinite(v).any() else math.nan


def _spectrum(summary: dict | None) -> list[float]:
    fr = list((summary or {}).get("fractions_full") or [])[:SPECTRUM_K]
    return fr + [math.nan] * (SPECTRUM_K - len(fr))


def trajectory_statistics(results: dict) -> dict[str, float]:
    """The scalar statistics claims C2-C9 and C21 read, from a backbone.analyze_setup results dict."""
    t, b, roll, ph, su = (results["trunk"], results["blocks"], results["rolling"], results["phases"],
                          results["setup"])
    layers = b["layers"]
    out = {"trunk_pc1_rownorm": t["pc1_rownorm_full"], "trunk_pc1_rownorm_top10": t["pc1_rownorm_top10"],
           "trunk_pc2_rownorm": t["pc2_rownorm_full"], "trunk_pc1_raw": t["pc1_raw_full"],
           "trunk_k95_rownorm": t["rownorm"]["k95"], "trunk_f_b_final": t["f_b_final"],
           "trunk_f_b_mean": t["f_b_mean"]}
    for fam in ("block", "block+ln"):
        for l, x in zip(layers, b["pc1"][fam]):
            out[f"{fam.replace('block', f'block{l}')}_pc1_raw"] = x
    out["blocks_pc1_raw_min"] = _nanreduce(np.min, b["pc1"]["block"])
    out["blocks_pc1_raw_mean"] = _nanreduce(np.mean, b["pc1"]["block"])
    out["blocks_f_b_final_mean"] = _nanreduce(np.mean, b["f_b_final"]["block+ln"])
    adj = [roll["blocks"][f"block{l}"]["rho_mean"] for l in layers]
    out.update(blocks_adjacent_cos_min=_nanreduce(np.min, adj), blocks_adjacent_cos_max=_nanreduce(np.max, adj))
    rt = roll["trunk"]
    out.update(rho_mean=rt["rho_mean"], rho_min=rt["rho_min"], rho_max=rt["rho_max"],
               rho_argmin_step=rt["rho_argmin_step"])
    if "skipped" not in ph:
        out.update(phase_early_pc1=ph["early_pc1_full"], phase_late_pc1=ph["late_pc1_full"],
                   phase_pc1_gap=ph["late_pc1_full"] - ph["early_pc1_full"], phase_abs_cos=ph["abs_cos"],
                   handoff_margin=handoff_margin(ph.get("centers", []), ph.get("A_E", []), ph.get("A_L", []),
                                                     su["switch_step"], su["total_steps"]))
    for i, w in enumerate(results["power_laws"]["windows"]):
        out[f"gamma_a_{w['paper_lo']}_{w['paper_hi']}"] = results["power_laws"]["a"][i]["gamma"]
    first = results["switching"].get("first")
    if first:
        out["switch_c2_blocks_max"] = _nanreduce(np.max, [first["by_scope"][f"block{l}"]["c2"] for l in layers])
        out["switch_c2_trunk"] = first["trunk"]["c2"]
    return {k: float(v) if _finite(v) else math.nan for k, v in out.items()}


def trajectory_spectra(results: dict) -> dict[str, list[float]]:
    """Explained-variance spectra (first SPECTRUM_K fractions, full denominator) for the null figure."""
    return {"trunk_rownorm": _spectrum(results["trunk"]["rownorm"]), "trunk_raw": _spectrum(results["trunk"]["raw"]),
            "block0_raw": _spectrum(results["blocks"]["by_scope"].get("block0", {}).get("pca"))}


UPDATE_SCOPES = ("block0", "block0+ln", "trunk")


def update_statistics(su, early_step: float | None = None) -> dict[str, float]:
    """A8 on the Setup's Grams (consecutive updates between analysis steps, raw per-scope PC1 as v_b), through
    drift.analysis.updates' own function: mean |C| and the first persistent sign flip."""
    from drift.analysis.updates import scope_update_alignment
    early = float(early_step if early_step is not None else su.run.total_steps / 2)
    out = {}
    for scope in UPDATE_SCOPES:
        if scope not in su.trajs:
            continue
        s = scope_update_alignment(su.trajs[scope], su.steps, {"raw": False}, None, early)["raw"][
            "consecutive_summary"]
        flip = s["flip_end_step"]
        out.update({f"update_{scope}_mean_abs_cos": s["mean_abs_cos"],
                    f"update_{scope}_flip_step": math.nan if flip is None else flip,
                    f"update_{scope}_abs_cos_after_flip": s["mean_abs_cos_after_flip"]})
    return {k: float(v) if _finite(v) else math.nan for k, v in out.items()}


def run_statistics(su, window: int = 10) -> tuple[dict[str, float], dict[str, list[float]]]:
    """(scalar statistics, spectra) of a Setup: the run's or a null's."""
    from drift.analysis.backbone import analyze_setup
    results = analyze_setup(su, window, jsonify=False)
    stats = trajectory_statistics(results)
    stats.update(update_statistics(su))
    return stats, trajectory_spectra(results)


# --------------------------------------------------------------------------------------------------------------
# Draws
# --------------------------------------------------------------------------------------------------------------

def null_setup(su, kind: str, draw: int, seed: int, dims: dict[str, int]):
    """Draw `draw` of one null: a Setup with the same steps, switch and metrics as `su`, Grams from the null."""
    from drift.analysis.backbone import setup_from_grams
    grams = {s: su.trajs[s].P for s in su.trajs}
    return setup_from_grams(su.run, su.steps, null_grams(grams, dims, kind, draw_rng(seed, kind, draw)),
                            su.split_step, su.stride)


def _draw_block(args) -> list[tuple[dict, dict]]:
    su, kind, draws, seed, dims, window = args
    return [run_statistics(null_setup(su, kind, d, seed, dims), window) for d in draws]


def draw_statistics(su, kind: str, n_draws: int, seed: int, dims: dict[str, int], window: int = 10,
                    workers: int = 1) -> list[tuple[dict, dict]]:
    """[(statistics, spectra)] of draws 0..n_draws-1. Each draw has its own generator (draw_rng), so the
    result does not depend on `workers` (processes sharing the draws)."""
    if workers <= 1:
        return _draw_block((su, kind, range(n_draws), seed, dims, window))
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor
    chunks = [list(range(n_draws))[i::workers] for i in range(workers)]
    # Fresh (spawned) workers with one BLAS thread each: the matrices are 50 x 50, where threaded BLAS only adds
    # contention between the workers.
    saved = {k: os.environ.get(k) for k in BLAS_THREAD_VARS}
    os.environ.update({k: "1" for k in BLAS_THREAD_VARS})
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_draw_block, [(su, kind, c, seed, dims, window) for c in chunks]))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    by_draw = {d: r for c, part in zip(chunks, parts) for d, r in zip(c, part)}
    return [by_draw[d] for d in range(n_draws)]


def collect(observed: dict, draws: dict[str, list[dict]]) -> dict:
    """{statistic: {"observed", kind: band}} over the statistics observed (a list value = a spectrum)."""
    out = {}
    for key, obs in observed.items():
        entry = {"observed": obs}
        for kind, rows in draws.items():
            entry[kind] = band([r.get(key, math.nan if not isinstance(obs, list) else [math.nan] * len(obs))
                                for r in rows])
        out[key] = entry
    return out


def null_statistics(su, n_draws: int = 200, seed: int = 0, window: int = 10, kinds: Sequence[str] = NULLS,
                    workers: int = 1, log: Callable[[str], None] | None = None) -> dict:
    """Observed statistics of `su` and their bands under each null (JSON-ready; layout in trajectory_nulls.py)."""
    from drift.analysis.backbone import scope_dims
    dims = scope_dims(su)
    stats, spectra = run_statistics(su, window)
    draws, spec_draws = {}, {}
    for kind in kinds:
        t0 = time.time()
        rows = draw_statistics(su, kind, n_draws, seed, dims, window, workers)
        draws[kind], spec_draws[kind] = [r[0] for r in rows], [r[1] for r in rows]
        if log:
            log(f"{kind} ({NULL_NAMES[kind]}): {n_draws} draws in {time.time() - t0:.1f} s")
    return jsonable({
        "nulls": nulls_block(kinds, n_draws, seed),
        "level": LEVEL, "key_null": KEY_NULL, "dims": dims, "steps": su.steps, "window": window,
        "rule": f"beyond null: the key statistic lies outside the {KEY_NULL} central {LEVEL:.0%} band on the side "
                "the paper predicts; within null otherwise",
        "statistics": collect(stats, draws), "spectra": collect(spectra, spec_draws),
        "draws": {k: {key: [r.get(key, math.nan) for r in rows] for key in stats} for k, rows in draws.items()},
    })


# --------------------------------------------------------------------------------------------------------------
# Control windows (Tables 4-5): the same nulls over the checkpoints of one window
# --------------------------------------------------------------------------------------------------------------

def window_statistics(traj: Trajectory, window_steps: Sequence[int]) -> dict[str, float]:
    """A12 window PC1 (%, row-normalized, full denominator) and k95, through geometry.window_geometry."""
    g = window_geometry(traj, window_steps)
    return {"pc1": 100.0 * g["rho1_full"], "k95": float(g["k95"])}


def window_null_bands(traj: Trajectory, window_steps: Sequence[int], D: int, n_draws: int = 200,
                      seed: int = 0, kinds: Sequence[str] = NULLS) -> dict:
    """Observed window statistics and their bands when the window's own updates are replaced by each null (the
    drift over the window is not tested: N3 keeps it exactly and N1 / N2 keep its scale)."""
    w = [int(s) for s in window_steps]
    idx = traj.indices(w)
    P = traj.P[np.ix_(idx, idx)]
    observed = window_statistics(traj, w)
    draws = {k: [window_statistics(Trajectory(w, null_gram(P, k, D, draw_rng(seed, k, d))), w)
                 for d in range(n_draws)] for k in kinds}
    return jsonable({"window_steps": w, "statistics": collect(observed, draws)})


def control_window_nulls(root, n_draws: int = 200, seed: int = 0, kinds: Sequence[str] = NULLS,
                         log: Callable[[str], None] | None = None) -> dict:
    """Null bands of the Table 4 standard window of every control run under `root` and, when
    analysis/sgd_matched_valloss.json exists, of the windows centred on each run's matched-loss checkpoint."""
    from pathlib import Path

    from drift.run import checkpoint as ck
    from drift.analysis.control_geometry import standard_window, trunk_trajectory
    from drift.analysis.controls import load_controls
    from drift.run.params import trunk_size
    root = Path(root)
    matched_path = root / "analysis" / "sgd_matched_valloss.json"
    matched = ck.read_json(matched_path, "analysis")["results"] if matched_path.exists() else None
    rows = {}
    for name, run in load_controls(root).items():
        D = trunk_size(run.config.model)
        windows = {"standard": [s for s in standard_window(run.config) if s in run.steps]}
        for row in (matched or {}).get("rows", []):
            if row["run"] == name:
                windows.update({w["window"]: w["geometry"].get("window_steps") or [] for w in row["windows"]
                                if w.get("kind") == "centred"})
        try:
            traj = trunk_trajectory(run.run_dir, [s for s in run.steps if s >= 1])
        except ValueError as e:   # non-finite weights after a blow-up
            rows[name] = {"note": f"not computed: {e}"}
            continue
        rows[name] = {}
        for label, steps in windows.items():
            if len(steps) < 3:
                rows[name][label] = {"window_steps": steps, "note": f"{len(steps)} checkpoint(s); need >= 3"}
                continue
            try:
                rows[name][label] = window_null_bands(traj, steps, D, n_draws, seed, kinds)
            except ValueError as e:
                rows[name][label] = {"window_steps": steps, "note": f"not computed: {e}"}
        if log:
            log(f"{name}: {len(windows)} window(s)")
    return {"nulls": nulls_block(kinds, n_draws, seed), "level": LEVEL, "key_null": KEY_NULL, "rows": rows}
