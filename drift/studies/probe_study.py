"""Probe-scaling study: in which laptop-scale regime is the key-retrieval probe learned, as in the paper's run?

A study is a list of named configs (override lists on top of a base preset) trained for a few seeds, one run at a
time, into `<root>/<name>_s<seed>`. Runs are resumable: a finished run is skipped, an interrupted one is resumed
from its last checkpoint, a run killed before its first resume state is started again. Each run is judged by the
probe-regime criteria (PROTOCOL section 6, C1's rule; the eval-set size requirement of the probe issue):

    learned      best p_in >= 0.9
    rises        best p_ood > 0.4
    drops        at least one peak -> next-trough fall of p_ood passing claims.oscillation_drops (3 binomial std)
    val_falls    validation loss falls steadily (claims.val_falls)
    eval_size    n_probe_eval >= 1000 (binomial std of p_ood at 0.5 <= 0.016)

The paper's phases (the regime issue; stated here before any of its seeds ran). The runs above stop before the
paper's late phase, so a reported cpu regime must also show, in every seed:

    phase_learned   best p_in >= 0.9
    phase_peak      best p_ood >= 0.6
    phase_fall      p_ood falls from a peak by >= 0.3: the largest drawdown max_s [p(s) - min_{s' > s} p(s')] of the
                    run's own eval curve (the paper's seed 42: 0.44 and 0.57), and the same on a fresh 4,096-example
                    OOD set (drift/studies/eval_size.py, read from experiments/results/eval_size_<run>.json when it exists)
    phase_end       the last eval's p_ood <= 0.35 (the paper ends at 0.14-0.20), with val_falls
    phase_rate      p_probe <= 0.20 (the paper: 0.10)

The x axis everything is compared on is *probe sequences seen* = step x sequences per step x p_probe, the quantity
the paper's own run needed about 23,000 of before the probe appeared.

    from drift.studies.probe_study import STUDY, summarize_run
    for spec in STUDY: print(spec.name, spec.overrides)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from drift.run import checkpoint as ck
from drift.report.rules import oscillation_drops, val_falls
from drift.config import SAME_TRAINING, Config, config_fields, resolve
from drift.geometry.switching import find_peaks_troughs
from drift.paper import PAPER_S42_P_IN, PAPER_S42_P_OOD, PAPER_SEQS_PER_STEP
from drift.run.info import DONE

MIN_EVAL = 1000        # examples per probe eval set: binomial std <= 0.016 at p = 0.5
P_IN_LEARNED = 0.9
P_OOD_RISES = 0.4
# The paper's-phases criteria (module docstring), fixed before the regime issue's seeds were trained.
PHASE_PEAK = 0.6
PHASE_FALL = 0.3
PHASE_END = 0.35
PHASE_MAX_P_PROBE = 0.20
PHASE_FRESH_N = 4096


@dataclass(frozen=True)
class StudyConfig:
    name: str
    overrides: tuple[str, ...]
    why: str                      # what this config varies, in a few words
    base: str = "cpu_small"       # preset the overrides apply to (the cpu preset before this study)


def _run(total: int, p_probe: float, warmup: int | None = None, **extra) -> tuple[str, ...]:
    """Overrides that keep the paper's structure at a given run length: the lambda switch at 40% of the run, about
    50 evaluations and a resume state every 10% (checkpoints are not needed for the probe curves)."""
    warmup = round(0.15 * total) if warmup is None else warmup
    o = {"total_steps": total, "lambda_switch_step": round(0.4 * total), "warmup_steps": warmup,
         "p_probe": p_probe, "n_probe_eval": 1024, "eval_every": max(10, total // 50),
         "ckpt_every": max(10, total // 10),
         "threads": 1}  # one core per study run, so a study can share the machine with other work
    o.update(extra)
    return tuple(f"{k}={v}" for k, v in o.items())


# Ordered by how much each answers: the config that learned the probe in a first try, then one knob at a time.
STUDY: tuple[StudyConfig, ...] = (
    StudyConfig("p20_T2500_w150", _run(2500, 0.2, warmup=150), "the first config seen to learn the probe"),
    StudyConfig("p10_T2500_w150", _run(2500, 0.1, warmup=150), "the paper's p_probe"),
    StudyConfig("p20_T2500", _run(2500, 0.2), "warmup at the paper's 15% of the run"),
    StudyConfig("p20_T1500_w150", _run(1500, 0.2, warmup=150), "a shorter run"),
    StudyConfig("p10_T4000_w150", _run(4000, 0.1, warmup=150), "the paper's p_probe, longer run"),
    StudyConfig("p20_T2500_lam1", _run(2500, 0.2, warmup=150, lambda_early=1.0, lambda_late=2.0), "half lambda"),
    StudyConfig("p20_T2500_cw256", _run(2500, 0.2, warmup=150, n_codewords=256), "256 codewords"),
    StudyConfig("p20_T2500_b32", _run(2500, 0.2, warmup=150, grad_accum=1), "half the batch"),
    StudyConfig("p20_T2500_d192", _run(2500, 0.2, warmup=150, d_model=192, n_head=6, d_ff=768), "a wider model"),
    # The paper's phases (late collapse): p20_T2500_w150 ends at 0.13 in seed 42 but 0.33 / 0.39 in seed 271 (one /
    # two threads), so its late phase is not reached in every seed; the run is lengthened, the rest kept.
    StudyConfig("p20_T4000_w150", _run(4000, 0.2, warmup=150), "the paper's late phase: a longer run"),
    # Half the run: `make reproduce` costs about 7.4 main-run lengths in steps, so its 2-hour budget on two cores
    # (0.78 s per step here) allows a main run of about 1,250 steps.
    StudyConfig("p20_T1250_w150", _run(1250, 0.2, warmup=150), "half the run (the reproduce budget)"),
    StudyConfig("p40_T1250_w150", _run(1250, 0.4, warmup=150), "half the run, twice the probe share"),
    # One knob at a time around the adopted cpu preset (p40_T1250_w150), at its cost or below.
    StudyConfig("p40_T1250_b32", _run(1250, 0.4, warmup=150, grad_accum=1), "cpu preset, half the batch"),
    StudyConfig("p40_T1250_lam1", _run(1250, 0.4, warmup=150, lambda_early=1.0, lambda_late=2.0),
                "cpu preset, half lambda"),
    StudyConfig("p40_T1250_cw256", _run(1250, 0.4, warmup=150, n_codewords=256), "cpu preset, 256 codewords"),
    StudyConfig("p40_T1250_w300", _run(1250, 0.4, warmup=300), "cpu preset, twice the warmup"),
    StudyConfig("p40_T1250_d192", _run(1250, 0.4, warmup=150, d_model=192, n_head=6, d_ff=768),
                "cpu preset, 1.5x wider"),
)
SEEDS = (42, 271)
# The regime issue's main-run seeds, fixed before any of them ran: the paper's two, and the three it screened.
PHASE_SEEDS = (42, 271, 137, 314, 1729)


def config_for(spec: StudyConfig, seed: int) -> Config:
    return resolve(spec.base, seed, list(spec.overrides))


def find(name: str) -> StudyConfig:
    for spec in STUDY:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown study config {name!r}; choose from {', '.join(s.name for s in STUDY)}")


def run_status(run_dir: Path) -> str:
    """'missing', 'finished' (or early_stopped/diverged: done either way), 'resumable' or 'restart'."""
    info_path = run_dir / "run.json"
    if not info_path.exists():
        return "missing"
    status = ck.read_json(info_path).get("status")
    if status in DONE:
        return "finished"
    return "resumable" if (run_dir / "resume.pt").exists() else "restart"


def train_one(spec: StudyConfig, seed: int, root: Path, progress: bool = True, threads: int | None = None) -> Path:
    """Train (or resume, or skip) one study run. `threads` overrides the config's (a MECHANICAL field: it changes
    the speed, not what is computed beyond the order of floating-point sums)."""
    from drift.train.trainer import DivergedError, train
    run_dir = root / f"{spec.name}_s{seed}"
    status = run_status(run_dir)
    if status == "finished":
        return run_dir
    # A run killed before its first resume state is started over by the trainer, which clears its files under the
    # run lock (as control_runs does), so a trainer still writing there is refused rather than deleted.
    try:
        cfg = config_for(spec, seed)
        if threads is not None:
            cfg.train.threads = threads
        train(cfg, run_dir, resume=(status == "resumable"), restart=(status == "restart"), progress=progress,
              argv=["probe_study", spec.name, str(seed)])
    except DivergedError:
        pass  # recorded in run.json and reported as such
    return run_dir


# A run that differs from a study config only in these trains that config (the study reads training metrics only).
MECHANICAL = SAME_TRAINING


def matching_config(run_dir: Path) -> tuple[StudyConfig, int]:
    """(study config, seed) of a run trained outside the study (e.g. a main run of the cpu preset) that trains that
    config exactly: every field equal to config_for(spec, seed) except the MECHANICAL ones. Raises ValueError when
    none matches."""
    cfg = ck.read_config(run_dir)
    ours = config_fields(cfg, MECHANICAL)
    for spec in STUDY:
        if config_fields(config_for(spec, cfg.train.seed), MECHANICAL) == ours:
            return spec, cfg.train.seed
    raise ValueError(f"{run_dir} trains no config of the study (they differ in more than {', '.join(sorted(MECHANICAL))})")


def loop_wall_s(run_dir: Path) -> float | None:
    """The training loop's time (data, compute, eval, checkpoints) from the last metrics record: the timers travel
    in the resume state, so a run killed and resumed later still adds up (a wall clock around the
    process does not survive a kill)."""
    rows = [r for r in ck.read_metrics(run_dir) if "timers" in r]
    return float(sum(rows[-1]["timers"].values())) if rows else None


def read_metrics(run_dir: Path) -> dict[str, np.ndarray]:
    rows = [r for r in ck.read_metrics(run_dir) if "p_ood" in r]  # tolerates the torn last line of a live run
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in ("step", "p_in", "p_ood", "val_loss")}


def largest_fall(p_ood) -> tuple[float, int, int]:
    """(fall, i, j): the largest p[i] - p[j] with j > i, i.e. the deepest fall of the curve from any earlier peak."""
    p = np.nan_to_num(np.asarray(p_ood, dtype=np.float64), nan=0.0)
    best, where, i_max = 0.0, (0, 0), 0
    for j in range(1, p.size):
        if p[j - 1] > p[i_max]:
            i_max = j - 1
        if p[i_max] - p[j] > best:
            best, where = float(p[i_max] - p[j]), (i_max, j)
    return best, *where


def fresh_eval_fall(run_name: str, ckpt_steps, results: Path = Path("experiments/results")) -> float | None:
    """largest_fall of the run's curve on the fresh PHASE_FRESH_N-example OOD set (experiments/eval_size.py), or None
    when that has not been measured. A file whose scored steps are not this run's checkpoints (another run of the
    same name, e.g. an earlier preset's) does not count."""
    path = results / f"eval_size_{run_name}.json"
    if not path.exists():
        return None
    scored = ck.read_json(path)
    if list(scored.get("steps", [])) != [s for s in ckpt_steps if s >= 1]:
        return None
    curve = scored["p_ood"].get(str(PHASE_FRESH_N))
    return None if curve is None else largest_fall(curve)[0]


def phase_criteria(m: dict[str, np.ndarray], p_probe: float, fresh_fall: float | None) -> dict[str, bool | None]:
    """The paper's-phases criteria (module docstring); phase_fall is None (not yet decided) while the fresh-set
    curve is unmeasured and the run's own curve passes."""
    p = m["p_ood"]
    own_fall = largest_fall(p)[0]
    fall = own_fall >= PHASE_FALL
    if fall:
        fall = None if fresh_fall is None else fresh_fall >= PHASE_FALL
    return {
        "phase_learned": bool(m["p_in"].size and m["p_in"].max() >= P_IN_LEARNED),
        "phase_peak": bool(p.size and p.max() >= PHASE_PEAK),
        "phase_fall": fall,
        "phase_end": bool(p.size and p[-1] <= PHASE_END and val_falls(m["step"], m["val_loss"])),
        "phase_rate": p_probe <= PHASE_MAX_P_PROBE,
    }


def summarize_run(run_dir: Path) -> dict:
    """The probe-regime verdict of one run, from its run.json and metrics.jsonl only."""
    info = ck.read_json(run_dir / "run.json", "run file")
    cfg = ck.run_config(info, run_dir / "run.json")
    t = cfg.train
    m = read_metrics(run_dir)
    seqs_per_step = t.micro_batch * t.grad_accum * t.p_probe
    ext = find_peaks_troughs(m["p_ood"])
    drops = oscillation_drops(m["p_ood"], t.n_probe_eval)
    i_ood = int(np.argmax(m["p_ood"])) if m["p_ood"].size else 0
    learned_at = next((int(s) for s, p in zip(m["step"], m["p_in"]) if p >= P_IN_LEARNED), None)
    out = {
        "run": run_dir.name, "seed": t.seed, "status": info.get("status"), "steps_done": int(m["step"][-1]) if m["step"].size else 0,
        "total_steps": t.total_steps, "p_probe": t.p_probe, "seqs_per_step": seqs_per_step,
        "n_probe_eval": t.n_probe_eval, "n_params": info.get("n_params"),
        "best_p_in": float(m["p_in"].max()) if m["p_in"].size else math.nan,
        "p_in_learned_step": learned_at,
        "best_p_ood": float(m["p_ood"][i_ood]) if m["p_ood"].size else math.nan,
        "best_p_ood_step": int(m["step"][i_ood]) if m["p_ood"].size else None,
        "p_ood_peaks": [[int(m["step"][i]), round(float(m["p_ood"][i]), 4)] for i in ext["peaks"]],
        "p_ood_troughs": [[int(m["step"][i]), round(float(m["p_ood"][i]), 4)] for i in ext["troughs"]],
        "significant_drops": [round(d, 4) for d in drops],
        "val_first": float(m["val_loss"][0]) if m["val_loss"].size else math.nan,
        "val_last": float(m["val_loss"][-1]) if m["val_loss"].size else math.nan,
        "wall_s": loop_wall_s(run_dir),
        "cpu_capability": info.get("cpu_capability"),  # absent in runs trained before it was recorded
        "path": str(run_dir),
        # the curves themselves, so the table and the figure survive the run directory (runs are not committed)
        "curve": {k: [round(float(v), 4) for v in m[k]] for k in ("step", "p_in", "p_ood", "val_loss")},
    }
    crit = {
        "learned": out["best_p_in"] >= P_IN_LEARNED,
        "rises": out["best_p_ood"] > P_OOD_RISES,
        "drops": bool(drops),
        "val_falls": val_falls(m["step"], m["val_loss"]),
        "eval_size": t.n_probe_eval >= MIN_EVAL,
    }
    out["criteria"] = crit
    out["meets_all"] = all(crit.values()) and out["status"] == "finished"
    fall, i, j = largest_fall(m["p_ood"])
    out["largest_fall"] = [round(fall, 4), int(m["step"][i]), int(m["step"][j])] if m["p_ood"].size else None
    out["final_p_ood"] = float(m["p_ood"][-1]) if m["p_ood"].size else math.nan
    out["fresh_fall"] = fresh_eval_fall(run_dir.name, info.get("ckpt_steps", []))
    out["phase_criteria"] = phase_criteria(m, t.p_probe, out["fresh_fall"])
    out["meets_phases"] = all(v is True for v in out["phase_criteria"].values()) and out["status"] == "finished"
    return out


def summarize(root: Path, names: Sequence[str] | None = None, adopted: Sequence[Path] = ()) -> list[dict]:
    """Every existing study run under root, in STUDY order; a config passes only when every seed run meets all.
    `adopted`: runs trained outside the study that train one of its configs exactly (matching_config), counted as
    that config's run for their seed; a seed run twice is refused."""
    found: dict[tuple[str, int], Path] = {}
    for spec in STUDY:
        for seed in SEEDS:
            if (root / f"{spec.name}_s{seed}" / "metrics.jsonl").exists():
                found[spec.name, seed] = root / f"{spec.name}_s{seed}"
    for run_dir in map(Path, adopted):
        spec, seed = matching_config(run_dir)
        if (spec.name, seed) in found:
            raise ValueError(f"{spec.name} seed {seed} is already in the study ({found[spec.name, seed]}); "
                             f"adopt {run_dir} only instead of it")
        found[spec.name, seed] = run_dir
    # the study's seeds first, then the regime's (PHASE_SEEDS), then any other adopted seed: none is left out
    seeds = list(dict.fromkeys([*SEEDS, *PHASE_SEEDS, *sorted(seed for _, seed in found)]))
    rows = []
    for spec in STUDY:
        if names and spec.name not in names:
            continue
        for seed in seeds:
            if (spec.name, seed) in found:
                row = summarize_run(found[spec.name, seed])
                row.update(config=spec.name, why=spec.why, overrides=list(spec.overrides))
                rows.append(row)
    return rows


def merge_recorded(rows: Sequence[dict], recorded: Sequence[dict]) -> list[dict]:
    """`rows` (summarized from runs on disk) plus the `recorded` rows (an earlier results JSON) of every
    (config, seed) not on disk any more, in STUDY order: a study spread over machines whose run directories do not
    all survive still shows every run it made. A recorded row of a config no longer in STUDY is dropped."""
    have = {(r["config"], r["seed"]) for r in rows}
    kept = [r for r in recorded if (r["config"], r["seed"]) not in have]
    order = {spec.name: i for i, spec in enumerate(STUDY)}
    merged = [r for r in [*rows, *kept] if r["config"] in order]
    return sorted(merged, key=lambda r: (order[r["config"]], SEEDS.index(r["seed"]) if r["seed"] in SEEDS else 99))


def row_curve(row: dict) -> dict[str, np.ndarray] | None:
    """A row's probe curves: from the row itself, else from its run directory, else None (recorded before rows
    carried their curves, and the run is gone)."""
    if "curve" in row:
        return {k: np.asarray(v, dtype=np.float64) for k, v in row["curve"].items()}
    if (Path(row["path"]) / "metrics.jsonl").exists():
        return read_metrics(Path(row["path"]))
    return None


def config_verdicts(rows: Sequence[dict]) -> dict[str, str]:
    """'passes' when every seed in SEEDS ran and met all criteria (and so did every other seed run, e.g. the
    regime's PHASE_SEEDS), 'fails' when a finished seed did not, else 'incomplete'."""
    out = {}
    for name in dict.fromkeys(r["config"] for r in rows):
        mine = {r["seed"]: r for r in rows if r["config"] == name}
        if any(r["status"] == "finished" and not r["meets_all"] for r in mine.values()):
            out[name] = "fails"
        elif all(s in mine and mine[s]["meets_all"] for s in SEEDS):
            out[name] = "passes"
        else:
            out[name] = "incomplete"
    return out


def _phase_cells(r: dict) -> str:
    """The paper's-phases columns; rows recorded before these criteria existed show '?' where a number is missing."""
    fall = r.get("largest_fall")
    fall_s = f"{fall[0]:.2f} ({fall[1]} -> {fall[2]})" if fall else "?"
    final = f"{r['final_p_ood']:.2f}" if "final_p_ood" in r else "?"
    fresh = "not measured" if r.get("fresh_fall") is None else f"{r['fresh_fall']:.2f}"
    crit = r.get("phase_criteria")
    if crit is None:
        verdict = "?"
    elif r.get("meets_phases"):
        verdict = "meets all"
    else:
        missing = [k.removeprefix("phase_") for k, v in crit.items() if v is False]
        open_ = [k.removeprefix("phase_") for k, v in crit.items() if v is None]
        verdict = ("fails: " + ", ".join(missing)) if missing else ("open: " + ", ".join(open_))
    return f"{fall_s} | {final} | {fresh} | {verdict}"


def table_markdown(rows: Sequence[dict]) -> str:
    verdicts = config_verdicts(rows)
    head = ("| config | seed | status | steps | p_probe | best p_in (step >= 0.9) | best p_ood @step | "
            "significant drops | val first -> last | loop min (CPU) | criteria met | config verdict | "
            "largest fall (steps) | final p_ood | fresh-set fall | paper's phases |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        crit = ", ".join(k for k, v in r["criteria"].items() if v) or "none"
        wall = f"{r['wall_s'] / 60:.1f}" if r["wall_s"] else "?"
        if r.get("cpu_capability"):
            wall += f" ({r['cpu_capability']})"
        seed = r["seed"] if r["run"] == f"{r['config']}_s{r['seed']}" else f"{r['seed']} (run {r['run']})"
        lines.append(
            f"| {r['config']} | {seed} | {r['status']} | {r['steps_done']}/{r['total_steps']} | {r['p_probe']} | "
            f"{r['best_p_in']:.3f} ({r['p_in_learned_step']}) | {r['best_p_ood']:.3f} @{r['best_p_ood_step']} | "
            f"{', '.join(f'{d:.2f}' for d in r['significant_drops']) or 'none'} | "
            f"{r['val_first']:.2f} -> {r['val_last']:.2f} | {wall} | {crit} | {verdicts[r['config']]} | "
            f"{_phase_cells(r)} |")
    return "\n".join(lines) + "\n"


def fig_probe_study(rows: Sequence[dict]):
    """p_in and p_ood against probe sequences seen, one curve per run, the paper's seed-42 points overlaid."""
    from drift.report import plotting as pl
    pl.apply_style()
    fig, (ax_in, ax_ood) = pl.new_figure(2, 1, sharex=True, height=5.0)
    names = list(dict.fromkeys(r["config"] for r in rows))
    colours = [f"C{i % 10}" for i in range(len(names))]
    no_curve = []
    for r in rows:
        m = row_curve(r)
        if m is None:
            no_curve.append(f"{r['config']} s{r['seed']}")
            continue
        x = m["step"] * r["seqs_per_step"]
        c = colours[names.index(r["config"])]
        style = "-" if r["seed"] == SEEDS[0] else "--"
        label = f"{r['config']} s{r['seed']}"
        ax_in.plot(x, m["p_in"], style, color=c, lw=1.0, label=label)
        ax_ood.plot(x, m["p_ood"], style, color=c, lw=1.0, label=label)
    for ax, pts in ((ax_in, PAPER_S42_P_IN), (ax_ood, PAPER_S42_P_OOD)):
        ax.plot([s * PAPER_SEQS_PER_STEP for s in pts], list(pts.values()), "k*", ms=7, label="paper s42")
        ax.set_ylim(0, 1)
    ax_in.set_ylabel("p_in")
    ax_ood.set_ylabel("p_ood")
    ax_ood.set_xlabel("probe sequences seen")
    ax_ood.set_xscale("log")
    ax_ood.set_xlim(left=100)  # nothing is learned before a few thousand probe sequences
    ax_in.legend(fontsize=5, ncol=2, loc="lower right")  # the curves rise at the left; the lower right is empty
    if no_curve:  # recorded before rows carried their curves; the table still has their numbers
        ax_ood.text(0.01, 0.02, "curves not stored: " + ", ".join(no_curve), transform=ax_ood.transAxes, fontsize=5)
    return fig
