"""Trajectory geometry and its random-walk nulls for a checkpoint series written by any trainer (issue #28).

Examples:
    python -m drift.inspect out/my_hf_run --out inspect/my_hf_run           # HF Trainer output: checkpoint-<step>/
    python -m drift.inspect nanogpt/ckpts --out inspect/nano --draws 200    # ckpt_<step>.pt files ({"model": ...})
    python -m drift.inspect runs/cpu_s42 --ref-step 1 --out inspect/s42     # this project's run directory
    python -m drift.inspect ckpts/ --format torch --trunk llama --steps 0 500 1000 1500 2000 --out inspect/llama
    python -m drift.inspect ckpts/ --trunk 'model\\.layers\\.(\\d+)\\.mlp\\.\\w+\\.weight' --out inspect/mlp_only

Reads the series (layouts and safety: drift/inspect/formats.py), computes the T x T float64 Gram of every scope in
one streaming pass (trunk, block{l}, block{l}+ln; memory near one checkpoint), runs the trajectory analysis of
trajectory_pca_uncentered.py on it (drift.backbone: A1-A6; A7 and A11 need the probe's p_ood evaluations and are
computed only for this project's runs) and draws the three null trajectories of trajectory_nulls.py (drift.nulls:
N1 matched random walk, N2 sign-flipped updates, N3 permuted updates). Writes, only once every input has been
read and checked (through a temporary directory, so a failure leaves OUT_DIR as it was):

    OUT_DIR/summary.md              read this first: observed vs each null's band, beyond or within, what it means
    OUT_DIR/trajectory.json         {"analysis", "created", "params", "inputs", "skipped", "run", "results"}; results
                                    as trajectory_pca.json's (drift/backbone.py)
    OUT_DIR/nulls.json              as trajectory_nulls.py's nulls.json: per statistic the observed value and each
                                    null's median and central 95% band, every draw's value
    OUT_DIR/nulls_spectrum.png|pdf  the explained-variance spectrum against the null bands

Reference and step 0 (recorded in trajectory.json under inputs.reference): drifts are theta_t - theta_ref with ref
the first step analysed (--ref-step to choose another; steps before it are left out). --step0 auto uses an
initialisation checkpoint (step 0) when there is one, require refuses a series without one, exclude leaves it
out. The paper's reference is step 1, so `--ref-step 1` on this project's runs gives trajectory_pca_uncentered.py's
numbers.

Bad input (shapes or parameter names that differ between checkpoints, a duplicate or missing step, mixed formats,
a NaN or inf, an unreadable file or a pickle that would run code) stops with one line naming the file, exit 2.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from drift import cli
from drift.run import checkpoint as ck
from drift.geometry.jsonable import jsonable
from drift.inspect import formats as fm
from drift.inspect import gram as gm
from drift.inspect import scopes as sc
from drift.nulls import trajectory as nl
from drift.config import ConfigError
from drift.inspect.formats import InspectError
from drift.inspect.summary import steps_text, summary_markdown

PROG = "python -m drift.inspect"
DEFAULT_DRAWS = 50
STEP0 = ("auto", "require", "exclude")
PROBE_SKIP = ("they need the probe's p_ood evaluations, which only this project's run directories carry "
              "(metrics.jsonl)")


# --------------------------------------------------------------------------------------------------------------
# Steps: reference, step 0, holes
# --------------------------------------------------------------------------------------------------------------

def choose_steps(series: fm.Series, ref_step: int | None, steps: list[int] | None, step0: str,
                 holes: list[int]) -> tuple[list[fm.Ckpt], dict]:
    """The checkpoints analysed (the reference first) and the "reference" record of trajectory.json."""
    by_step = {c.step: c for c in series.ckpts}
    has0 = 0 in by_step
    if step0 == "require" and not has0:
        raise InspectError(f"{series.root}: no step-0 (initialisation) checkpoint, which --step0 require asks for "
                           f"(first step found: {series.ckpts[0].step})")
    pool = [s for s in by_step if not (step0 == "exclude" and s == 0)]
    ref = pool[0] if ref_step is None else int(ref_step)
    wanted = pool if steps is None else sorted({int(s) for s in steps})
    absent = [s for s in [ref] + wanted if s not in pool]
    if absent:
        why = " (left out by --step0 exclude)" if absent[0] == 0 and has0 else ""
        raise InspectError(f"{series.root}: no checkpoint for step {absent[0]}{why}; steps found: {steps_text(pool)}")
    chosen = sorted({ref} | {s for s in wanted if s > ref})
    if len(chosen) < 3:
        raise InspectError(f"{series.root}: the analysis needs at least 2 checkpoints after the reference step "
                           f"{ref}, found {len(chosen) - 1}")
    if has0 and ref == 0:
        note = "drifts are measured from the initialisation checkpoint (step 0)"
    elif has0:
        note = f"a step-0 checkpoint exists but the reference is step {ref}; earlier steps are left out"
    else:
        note = (f"no step-0 (initialisation) checkpoint: drifts are measured from step {ref}, the first checkpoint "
                f"analysed, not from the initialisation")
    record = {"ref_step": ref, "step0_policy": step0, "step0_present": has0,
              "step0_file": str(by_step[0].path) if has0 else None, "step0_used": 0 in chosen,
              "left_out_before_ref": [s for s in wanted if s < ref], "missing_allowed": holes, "note": note}
    return [by_step[s] for s in chosen], record


def check_holes(series: fm.Series, run_info: dict | None, allow_missing: bool) -> list[int]:
    """Steps the series' own cadence (a run's schedule in run.json) says are missing; an error unless allowed."""
    present = [c.step for c in series.ckpts]
    if run_info is not None:
        from drift.run.info import schedule_holes
        holes, d = schedule_holes(run_info, present), None
    else:
        d, holes = fm.missing_cadence_steps(present)
    if holes and not allow_missing:
        after = max((s for s in present if s < holes[0]), default=None)
        where = series.root if after is None else {c.step: c.path for c in series.ckpts}[after]
        cadence = f" (cadence {d})" if d else " (run.json's schedule)"
        raise InspectError(f"{where}: the {'next ' if after is not None else ''}checkpoint, step {holes[0]}{cadence}, "
                           f"is missing ({len(holes)} missing in all); pass --allow-missing to analyse the steps "
                           f"present")
    return holes


# --------------------------------------------------------------------------------------------------------------
# What drift.backbone reads from a run, for a series without run.json
# --------------------------------------------------------------------------------------------------------------

@dataclass
class SeriesRun:
    """The part of a drift.runinfo.RunInfo a foreign series can give: no evaluations (every metric is NaN, so the
    probe-based statistics come out empty and are marked skipped), no lambda switch (the phase split stands in
    for it), and total_steps = the last analysis step (the paper's windows are scaled to it)."""
    run_dir: Path
    steps: list[int]
    n_layer: int
    ckpt_every: int
    switch_step: int
    config: SimpleNamespace = field(init=False)

    def __post_init__(self):
        # d_model / d_ff only feed backbone's recorded dims, which are replaced by the measured ones
        self.config = SimpleNamespace(model=SimpleNamespace(n_layer=self.n_layer, d_model=0, d_ff=0),
                                      train=SimpleNamespace(dense_ckpt=False))

    @property
    def total_steps(self) -> int:
        return self.steps[-1]

    def metric(self, key: str, steps=None) -> np.ndarray:
        return np.full(len(self.steps if steps is None else steps), np.nan)


def _cadence(steps: list[int]) -> int:
    """The most common interval between the rows (the A1 stride-2 variant keeps multiples of twice it)."""
    return int(Counter(np.diff(steps).tolist()).most_common(1)[0][0])


# --------------------------------------------------------------------------------------------------------------
# Grams and analysis
# --------------------------------------------------------------------------------------------------------------

def _check_grams(grams: dict[str, np.ndarray], chosen: list[fm.Ckpt]) -> None:
    """A non-finite tensor (a run's files are not scanned value by value) and scopes that do not move."""
    for scope, P in grams.items():
        diag = np.diag(P)
        if not np.isfinite(P).all():
            i = int(np.argmin(np.isfinite(diag))) if not np.isfinite(diag).all() else 0
            raise InspectError(f"{chosen[i].path}: non-finite values (NaN or inf) in scope {scope}; leave this "
                               f"checkpoint out with --steps")
    zero = [i for i in range(1, len(chosen)) if grams["trunk"][i, i] <= 0]
    if zero:
        raise InspectError(f"{chosen[zero[0]].path}: its trunk equals the reference's (step {chosen[0].step}), so "
                           f"there is no drift to analyse; leave it out with --steps")
    frozen = [s for s, P in grams.items() if not (np.diag(P)[1:] > 0).any()]
    if frozen:
        raise InspectError(f"{chosen[-1].path}: scope {frozen[0]} never moves from the reference (frozen "
                           f"parameters?); choose a trunk without it (--trunk REGEX)")


def compute_grams(series: fm.Series, chosen: list[fm.Ckpt], readers: list[fm.Reader], scopes: dict,
                  progress: bool) -> dict[str, np.ndarray]:
    if series.format == "drift":  # the run's own reader: every tensor's stored sha256 is checked as it is read
        from drift.analysis.gram_stream import gram_matrices
        grams = gram_matrices(series.root, [c.step for c in chosen], list(scopes), progress=progress)
    else:
        grams = gm.gram_matrices(readers, scopes, progress=progress)
    _check_grams(grams, chosen)
    return grams


def analyse(run, steps: list[int], grams: dict, split_step: int | None, window: int, dims: dict,
            foreign: bool):
    """(Setup, results) through drift.backbone's own analysis, as trajectory_pca_uncentered.py computes them."""
    from drift.analysis.backbone import analyze_setup, setup_from_grams
    try:
        su = setup_from_grams(run, steps, grams, split_step)
        results = analyze_setup(su, window)
    except ValueError as e:  # degenerate geometry (e.g. a window whose rows all vanish)
        raise InspectError(f"{run.run_dir}: the trajectory analysis failed: {e}") from None
    if foreign:
        results["setup"]["dims"] = {"trunk": dims["trunk"], "block": dims["block0"], "block+ln": dims["block0+ln"],
                                    "by_scope": dims}
        results["correlations"] = {"skipped": "A7 p_ood correlations: " + PROBE_SKIP}
        results["switching"] = {"skipped": "A11 switching: " + PROBE_SKIP}
        for key in ("p_ood", "val_loss"):
            results["series"].pop(key, None)
    return su, results


def null_bands(su, dims: dict, draws: int, seed: int, window: int, kinds, workers: int) -> dict:
    """nulls.json's results, from drift.nulls' own draws and bands (null_statistics' layout), with the scopes'
    measured dimensions (a foreign model's blocks are not this project's)."""
    stats, spectra = nl.run_statistics(su, window)
    rows = {k: nl.draw_statistics(su, k, draws, seed, dims, window, workers) for k in kinds}
    return jsonable({
        "nulls": nl.nulls_block(kinds, draws, seed), "level": nl.LEVEL, "key_null": nl.KEY_NULL, "dims": dims,
        "steps": su.steps, "window": window,
        "rule": f"beyond: the observed value lies outside a null's central {nl.LEVEL:.0%} band (above or below); "
                "within otherwise. No side is predicted here; summary.md says what each side means",
        "statistics": nl.collect(stats, {k: [r[0] for r in v] for k, v in rows.items()}),
        "spectra": nl.collect(spectra, {k: [r[1] for r in v] for k, v in rows.items()}),
        "draws": {k: {key: [r[0].get(key, math.nan) for r in v] for key in stats} for k, v in rows.items()},
    })


# --------------------------------------------------------------------------------------------------------------
# The whole command, outputs in memory
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    doc: dict           # trajectory.json
    nulls: dict         # nulls.json
    summary: str        # summary.md


def _run_for(series: fm.Series, steps: list[int], n_layer: int, split_step: int | None):
    """(run, split step): this project's RunInfo (its switch is the default split), or a SeriesRun."""
    if series.format == "drift":
        from drift.run.info import load_run
        return load_run(series.root), split_step
    split = steps[len(steps) // 2] if split_step is None else int(split_step)
    return SeriesRun(series.root, steps, n_layer, _cadence(steps[1:]), split), split


def inspect_series(args) -> Outcome:
    """Everything but writing: discover, choose steps, validate, stream the Grams, analyse, draw the nulls."""
    t0 = time.time()
    series = fm.discover(args.ckpt_dir, args.format)
    info = ck.read_run(series.root) if series.format == "drift" else None
    holes = [] if args.steps else check_holes(series, info, args.allow_missing)
    chosen, reference = choose_steps(series, args.ref_step, args.steps, args.step0, holes)
    readers = fm.open_series(chosen, progress=not args.no_progress)
    trunk = args.trunk
    if series.format == "drift" and trunk not in ("auto", "drift"):
        raise InspectError(f"{series.root}: a run directory is read with the drift trunk; to apply --trunk "
                           f"{trunk!r} to its files pass --format torch")
    scopes, layers, preset, pattern = sc.trunk_scopes(readers[0].meta, trunk, readers[0].label)
    dims = sc.scope_dims(readers[0].meta, scopes)
    steps = [c.step for c in chosen]
    run, split = _run_for(series, steps, len(layers), args.split_step)
    grams = compute_grams(series, chosen, readers, scopes, progress=not args.no_progress)
    su, results = analyse(run, steps, grams, split, args.window, dims, series.format != "drift")
    t_read = time.time() - t0
    nulls = null_bands(su, dims, args.draws, args.seed, args.window, args.nulls, args.workers)
    doc = {"analysis": "inspect_trajectory", "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "params": _params(args, reference["ref_step"], results["setup"]["split_step"]),
           "inputs": _inputs(series, chosen, readers, reference, preset, pattern, layers, dims),
           "skipped": _skipped(series.format != "drift"), "run": _run_block(series, steps),
           "timing_s": {"read_and_analyse": round(t_read, 2), "nulls": round(time.time() - t0 - t_read, 2)},
           "results": results}
    return Outcome(doc, nulls, summary_markdown(doc, nulls))


def _params(args, ref: int, split: int) -> dict:
    return {"format": args.format, "trunk": args.trunk, "ref_step": ref, "ref_step_given": args.ref_step,
            "step0": args.step0, "steps": args.steps, "allow_missing": args.allow_missing, "window": args.window,
            "split_step": split, "split_step_given": args.split_step, "draws": args.draws, "seed": args.seed,
            "nulls": list(args.nulls)}


def _inputs(series, chosen, readers, reference, preset, pattern, layers, dims) -> dict:
    stripped = sorted({r.stripped for r in readers if r.stripped})
    return {"ckpt_dir": str(series.root), "format": series.format, "steps": [c.step for c in chosen],
            "files": {str(c.step): [str(f) for f in c.files] for c in chosen}, "ignored": series.ignored,
            "all_steps": [c.step for c in series.ckpts], "reference": reference,
            "trunk": {"preset": preset, "regex": pattern, "layers": layers, "dims": dims,
                      "transposed_conv1d": preset == "gpt2"},
            "stripped_prefixes": stripped,
            "dtypes": sorted({dt for _, dt in readers[0].meta.values()})}


def _skipped(foreign: bool) -> dict:
    out = {"A9-A10": "gradient alignment and Fisher curvature need the model, its data and its loss: not part of "
                     "this command (backbone_gradient_analysis.py, backbone_fisher_analysis.py on this project's "
                     "runs); A8's update alignment (mean |C|) is in nulls.json"}
    if foreign:
        out.update({"A7": "p_ood correlations: " + PROBE_SKIP, "A11": "switching: " + PROBE_SKIP})
    return out


def _run_block(series, steps) -> dict | None:
    if series.format != "drift":
        return None
    from drift.run.info import run_block
    return run_block(series.root, steps)


# --------------------------------------------------------------------------------------------------------------
# Writing: all files at once, only after everything was read and computed
# --------------------------------------------------------------------------------------------------------------

def publish(out: Path, outcome: Outcome) -> list[Path]:
    """Write the files into a temporary sibling directory, then move them into `out` (a rename of the whole
    directory when `out` does not exist yet, else one rename per file)."""
    from drift.report.figures import figure_null_spectrum
    from drift.report.plotting import save_figure
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        ck.atomic_write_json(outcome.doc, tmp / "trajectory.json")
        ck.atomic_write_json({"analysis": "inspect_nulls", "created": outcome.doc["created"],
                              "params": outcome.doc["params"], "inputs": {"ckpt_dir": outcome.doc["inputs"]["ckpt_dir"],
                                                                        "steps": outcome.nulls["steps"]},
                              "results": outcome.nulls}, tmp / "nulls.json")
        draws = outcome.doc["params"]["draws"]
        save_figure(figure_null_spectrum([outcome.nulls], [f"{Path(outcome.doc['inputs']['ckpt_dir']).name} "
                                                           f"({draws} draws per null)"]), tmp / "nulls_spectrum")
        ck.atomic_write_text(outcome.summary, tmp / "summary.md")
        names = sorted(p.name for p in tmp.iterdir())
        if not out.exists():
            os.replace(tmp, out)
        else:
            for name in names:
                os.replace(tmp / name, out / name)
            tmp.rmdir()
    except OSError as e:
        raise ck.write_error(out, e) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out / n for n in names]


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------

def parser() -> cli.Parser:
    p = cli.parser(PROG, __doc__)
    p.add_argument("ckpt_dir", metavar="CKPT_DIR", type=cli.path("a directory"),
                   help="directory holding the checkpoint series")
    p.add_argument("--out", required=True, metavar="OUT_DIR", type=cli.path("a directory"),
                   help="output directory (created; the files it writes replace those of a previous run)")
    p.add_argument("--format", default="auto", choices=("auto", "hf", "torch", "drift"),
                   help="layout of CKPT_DIR (default auto: the one present; two at once is an error)")
    p.add_argument("--trunk", default="auto", type=cli.regex(("auto", *sc.TRUNK_PRESETS)),
                   help=f"trunk definition: {', '.join(sc.TRUNK_PRESETS)}, auto (the preset that matches; default) "
                        "or a regex matched against whole parameter names, its first group the layer index")
    p.add_argument("--steps", type=cli.STEP, nargs="+", help="steps to analyse (default: every checkpoint found)")
    p.add_argument("--ref-step", type=cli.STEP,
                   help="reference checkpoint theta_ref (default: the first step analysed)")
    p.add_argument("--step0", default="auto", choices=STEP0,
                   help="initialisation checkpoint: auto (use it if present; default), require, exclude")
    p.add_argument("--allow-missing", action="store_true",
                   help="analyse a series with holes in its checkpoint cadence (the holes are recorded)")
    p.add_argument("--window", type=cli.WINDOW, default=10, help="rolling-window length in checkpoints (default 10)")
    p.add_argument("--split-step", type=cli.STEP,
                   help="phase split (default: the lambda switch for this project's runs, else the middle step)")
    p.add_argument("--draws", type=cli.DRAWS, default=DEFAULT_DRAWS,
                   help=f"draws per null (default {DEFAULT_DRAWS}; >= 20)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="base seed of the null draws (default 0)")
    p.add_argument("--nulls", nargs="+", default=list(nl.NULLS), choices=nl.NULLS, help="which nulls (default all)")
    p.add_argument("--workers", type=cli.WORKERS, default=1,
                   help="processes sharing the null draws (results do not change)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv=None) -> int:
    p = parser()
    args = cli.parse(p, argv)
    out = Path(args.out)
    try:
        if out.exists() and not out.is_dir():
            raise InspectError(f"{out}: --out names a file, not a directory")
        outcome = inspect_series(args)
        paths = publish(out, outcome)
    except (ck.RunError, ConfigError) as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    table = [l for l in outcome.summary.splitlines() if l.startswith("|")]
    print("\n".join(table))
    print(f"wrote {', '.join(p.name for p in paths)} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
