"""Optimizer controls, beta2 sweep and reheating as experiments (PROTOCOL E2-E4): which runs they train, with which
configs, derived from a preset; and running them (skip finished, resume killed, record divergence). The tables
computed from their run directories are in drift/analysis/ (controls.py, matched.py, beta2.py, reheat.py).

Scaling rule. The paper's controls are defined in steps of its 10,000-step main run. A preset's controls keep the
same proportions: with factor = (the preset's main-run total_steps) / 10,000, every step *position* of the paper
(run length, cosine horizon, checkpoint-window bounds and spacings, lambda switch, early-stop step, matched-loss
windows, reheating length and warmup) maps to max(1, round(factor * paper_step)); step 1 stays 1. The main run's
*cadence* is inherited unchanged: warmup_steps, eval_every and ckpt_every are the preset's (paper: 1500 / 200 /
200, exactly E2; cpu: 150 / 50 / 50, so the cpu control is 1,000 steps, windows 150:500:13 and 500:1000:25).

Early-stop thresholds (run C'). The paper's rule is "val > 5.1 and best p_ood < 0.02" at step 2000. The p_ood
threshold is a fraction and is kept. The loss threshold is rescaled to the vocabulary: 5.1 is 0.4713 of ln(50257),
the loss of a uniform (untrained) predictor, so early_stop_max_val = round(0.4713... * ln(vocab_size), 3); that is
5.1 exactly for the paper's tokenizer and 3.711 for the 2,636-id embedded one. Both are plain config fields
(recorded in run.json) and can be overridden like any other (`early_stop_max_val=4.0`).

    cfg = control_config("cpu", 42, "C")                 # sgd_momentum, 1,000 steps, 57 checkpoints
    ensure_run(cfg, "runs/ctrl_s42/C")                     # trains, resumes, or skips a finished run
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Sequence

from drift.run import checkpoint as ck
from drift.run import kinds
from drift.run.info import DONE
from drift.run.kinds import CONTROL_RUNS
from drift.run.stages import beta2_run_name, reheat_run_name  # noqa: F401 (the run names, beside their stamps)
from drift.config import DERIVED, SAME_EXPERIMENT, Config, apply_overrides, config_fields, resolve, validate
from drift.paper import PAPER_MAIN_STEPS, PAPER_MAX_VAL, PAPER_MIN_P_OOD, PAPER_VOCAB

VAL_FRACTION_OF_UNIFORM = PAPER_MAX_VAL / math.log(PAPER_VOCAB)

RUN_LABELS = {"A": "AdamW", "B": "SGD", "B0": "SGD, no weight decay", "C": "SGD+momentum", "C_prime": "Nesterov SGDW"}
RUN_OPTIMIZERS = {  # PROTOCOL E2 table
    "A": dict(optimizer="adamw", lr=1e-3, weight_decay=0.5),
    "B": dict(optimizer="sgd", lr=1e-3, weight_decay=0.5),
    # Not in the paper: plain SGD without weight decay, to tell SGD's collinearity from weight-decay shrinkage (C15)
    "B0": dict(optimizer="sgd", lr=1e-3, weight_decay=0.0),
    "C": dict(optimizer="sgd_momentum", lr=1e-2, momentum=0.9, weight_decay=0.05),
    "C_prime": dict(optimizer="nesterov_sgdw", lr=1e-2, momentum=0.9, weight_decay=0.5),
}
CONTROL_DENSE = ((600, 2000, 50), (2000, 4000, 100))  # paper steps; the first window is Table 4's standard window


# --------------------------------------------------------------------------------------------------------------
# Scaling and configs
# --------------------------------------------------------------------------------------------------------------

class Scale:
    """Maps paper step positions to a preset's: max(1, round(factor * step)), step 1 kept (module docstring)."""

    def __init__(self, factor: float):
        self.factor = float(factor)

    def step(self, paper_step: int) -> int:
        if paper_step <= 1:
            return int(paper_step)
        return max(1, int(math.floor(self.factor * paper_step + 0.5)))

    def steps(self, paper_steps: Sequence[int]) -> list[int]:
        """Scaled, deduplicated and sorted (small scales can merge neighbouring paper steps)."""
        return sorted({self.step(s) for s in paper_steps})

    @classmethod
    def of_main(cls, main: Config) -> "Scale":
        return cls(main.train.total_steps / PAPER_MAIN_STEPS)

    @classmethod
    def of_control(cls, cfg: Config) -> "Scale":
        """Recover the factor from a control run's config: its cosine horizon is the scaled 4000."""
        return cls((cfg.train.schedule_steps or cfg.train.total_steps) / 4000)


def vocab_size_of(cfg: Config) -> int:
    if cfg.train.tokenizer == "gpt2":
        return PAPER_VOCAB
    from drift.data.tokenizer import get_tokenizer
    from drift.data.context import cache_dir
    return get_tokenizer(cfg.train.tokenizer, cache_dir=cache_dir(cfg)).vocab_size


def early_stop_max_val(vocab_size: int) -> float:
    """The paper's 5.1 as the same fraction of the uniform-prediction loss ln(vocab_size) (module docstring)."""
    return round(VAL_FRACTION_OF_UNIFORM * math.log(vocab_size), 3)


def control_overrides(main: Config, run: str) -> dict:
    """Config fields of control `run` (A, B, C, C_prime) derived from the main-run config by the scaling rule."""
    if run not in RUN_OPTIMIZERS:
        raise ValueError(f"unknown control run {run!r}; choose from {', '.join(CONTROL_RUNS)}")
    sc = Scale.of_main(main)
    horizon = sc.step(4000)
    dense = ",".join(f"{sc.step(a)}:{sc.step(b)}:{sc.step(e)}" for a, b, e in CONTROL_DENSE)
    out = dict(total_steps=horizon, schedule_steps=horizon, dense_ckpt=dense, lambda_switch_step=horizon,
               early_stop_step=0, **RUN_OPTIMIZERS[run])
    if run == "C_prime":
        out.update(total_steps=sc.step(2000), early_stop_step=sc.step(2000), early_stop_min_p_ood=PAPER_MIN_P_OOD,
                   early_stop_max_val=early_stop_max_val(vocab_size_of(main)))
    return out


def control_config(preset: str, seed: int | None, run: str, overrides: list[str] | dict | None = None) -> Config:
    """The control run's config: preset (main run) -> scaled control fields -> the user's overrides (last wins)."""
    main = resolve(preset, seed)
    cfg = apply_overrides(resolve(preset, seed), control_overrides(main, run))
    apply_overrides(cfg, overrides or [])
    validate(cfg)
    return cfg


def beta2_config(preset: str, seed: int | None, beta2: float, p_probe: float | None = None,
                 overrides: list[str] | dict | None = None) -> Config:
    """Run A's config with beta2 (and optionally p_probe) changed (PROTOCOL E3)."""
    cfg = control_config(preset, seed, "A")
    apply_overrides(cfg, {"beta2": float(beta2), **({"p_probe": float(p_probe)} if p_probe is not None else {})})
    apply_overrides(cfg, overrides or [])
    validate(cfg)
    return cfg


def reheat_config(main: Config, lr: float, overrides: list[str] | dict | None = None) -> Config:
    """E4 from a main run's config: fresh optimizer (same kind), peak `lr`, lambda = lambda_late throughout,
    scaled warmup 200 and 2000-step cosine to the floor, an eval and a checkpoint every scaled 100 steps."""
    cfg = Config.from_dict(main.to_dict())
    sc = Scale.of_main(main)
    every = sc.step(100)
    apply_overrides(cfg, dict(lr=float(lr), total_steps=sc.step(2000), schedule_steps=0,
                              warmup_steps=sc.step(200), eval_every=every, ckpt_every=every, dense_ckpt="",
                              lambda_early=main.train.lambda_late, lambda_switch_step=1, early_stop_step=0))
    apply_overrides(cfg, overrides or [])
    validate(cfg)
    return cfg


# --------------------------------------------------------------------------------------------------------------
# Running: skip finished, resume killed, record divergence
# --------------------------------------------------------------------------------------------------------------

_NOT_COMPARED = SAME_EXPERIMENT  # a control set found on disk is reused when it is the same experiment
# What the scripts that train through ensure_run say after a Ctrl-C.
RERUN_HINT = "rerun the same command: finished runs are skipped, interrupted ones resumed"


def run_summary(run_dir) -> dict:
    """Status of a run directory from run.json: status, diverged step, wall time (sum of the loop's timers)."""
    info = ck.read_json(Path(run_dir) / "run.json")
    timers = info.get("timers")
    if not timers:  # killed or diverged runs never write the final timers; the last eval record has them
        try:
            timers = next((r["timers"] for r in reversed(ck.read_metrics(run_dir)) if "timers" in r), None)
        except ck.RunError:
            timers = None
    return {"run_dir": str(run_dir), "status": info.get("status"), "diverged_step": info.get("diverged_step"),
            "wall_s": float(sum(timers.values())) if timers else None,
            "start_time": info.get("start_time"), "end_time": info.get("end_time")}


def ensure_run(cfg: Config, run_dir, init_from: str | None = None, progress: bool = True,
               argv: list[str] | None = None, kind: str = "main") -> dict:
    """Train `cfg` into run_dir unless it is done. Finished, early-stopped or diverged: skipped. Killed: resumed
    (or restarted when it died before its first checkpoint). A different config or kind there, or a set directory
    of another kind (drift/run/kinds.py): RunError. A divergence is recorded by the trainer in run.json and reported
    here as status "diverged", never raised."""
    from drift.train import distributed as dist
    from drift.train.trainer import DivergedError, train  # the trainer pulls in the data layer; keep tables light
    run_dir = Path(run_dir)
    # Under torchrun rank 0 reads the directory and decides; every rank follows that decision.
    action, saved = dist.on_main(_plan_run, cfg, run_dir, kind)
    if action == "skipped":
        return {**run_summary(run_dir), "action": "skipped"}
    cfg = Config.from_dict(saved) if saved is not None else cfg
    try:
        # the restart clears the directory under the run lock (rank 0), so a trainer still writing there is never
        # deleted
        train(cfg, run_dir, resume=action == "resumed", restart=action == "restarted", init_from=init_from,
              argv=argv, progress=progress, kind=kind)
    except DivergedError:
        pass
    return {**run_summary(run_dir), "action": action}


# Config fields that may differ between a run and its copy: derived ones only. The placement fields (device, threads,
# autocast, ...) reorder floating-point sums, so a run trained under other ones would not be the run asked for.
_NOT_COMPARED_FOR_REUSE = DERIVED | {"cache_dir"}
_NOT_COPIED = ("run.lock", "resume.pt")  # a finished run's lock and resume point belong to its own directory


def reuse_finished(src, cfg: Config, run_dir, kind: str, argv: list[str] | None = None) -> str | None:
    """Copy the finished run `src` into run_dir as a run of `kind` when it trained exactly `cfg`: training is
    deterministic, so the copy is the run training `cfg` would write (a beta2 sweep's run at run A's beta2 is run A:
    in the committed cpu_p40 sweep, trained separately, b0.95 and A agree at every eval). Returns None when copied,
    else why not (one line, and nothing is written). The copy keeps the source's run_id (its checkpoints carry it);
    run.json gets `kind`, the current argv and "reused_from" (the source's directory, run_id, kind and argv)."""
    src, run_dir = Path(src), Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        return f"{run_dir} is not empty"
    if not (src / "run.json").exists():
        return f"no run in {src}"
    info = ck.read_json(src / "run.json", "run file")
    if info.get("status") not in DONE:
        return f"{src} has not finished (status {info.get('status')!r})"
    saved = ck.run_config(info, src / "run.json")
    theirs, ours = config_fields(saved, _NOT_COMPARED_FOR_REUSE), config_fields(cfg, _NOT_COMPARED_FOR_REUSE)
    if theirs != ours:
        diff = ", ".join(f"{k[1]} {theirs.get(k)!r} there, {ours.get(k)!r} here"
                         for k in ours if theirs.get(k) != ours[k])
        return f"{src} trained another config ({diff})"
    tmp = run_dir.with_name(f".{run_dir.name}.reuse{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for f in sorted(src.iterdir()):
            if f.is_file() and f.name not in _NOT_COPIED and not f.name.startswith("."):
                shutil.copy2(f, tmp / f.name)
        reused_from = {"run_dir": str(src.resolve()), "run_id": info.get(ck.RUN_ID),
                       "kind": kinds.run_kind(src, info), "argv": info.get("argv")}
        ck.atomic_write_json({**info, "kind": kind, "reused_from": reused_from,
                              "argv": [str(a) for a in argv] if argv is not None else info.get("argv")},
                             tmp / "run.json")
        if run_dir.exists():
            run_dir.rmdir()  # empty (checked above)
        tmp.rename(run_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return None


def _plan_run(cfg: Config, run_dir: Path, kind: str = "main") -> tuple[str, dict | None]:
    """("skipped" | "resumed" | "restarted" | "trained", the saved config dict when resuming) for ensure_run.
    Reads only."""
    kinds.check_set(run_dir, kind)
    if not (run_dir / "run.json").exists():
        return "trained", None
    info = ck.read_json(run_dir / "run.json", "run file")
    saved = ck.run_config(info, run_dir / "run.json")
    if config_fields(saved, _NOT_COMPARED) != config_fields(cfg, _NOT_COMPARED):
        raise ck.RunError(f"{run_dir} holds a run with a different config; choose another --out or delete it")
    if (found := kinds.run_kind(run_dir, info)) != kind:
        raise ck.RunError(f"{run_dir} holds {kinds.RUNS[found]} (kind \"{found}\"), not {kinds.RUNS[kind]}; choose "
                          f"another --out or delete it")
    if info.get("status") in DONE:  # killed, interrupted or failed: continue it
        return "skipped", None
    if (run_dir / "resume.pt").exists():
        return "resumed", saved.to_dict()
    if set(ck.list_steps(run_dir)) <= {0}:
        return "restarted", None  # stopped before it saved anything but the initialization: start over
    raise ck.RunError(f"{run_dir} was interrupted and has no resume.pt; start it over with "
                      f"`python train.py --restart {run_dir}`")


# --------------------------------------------------------------------------------------------------------------
# Reading a run's rule back from its evals (unit-tested on crafted metrics)
# --------------------------------------------------------------------------------------------------------------

def early_stop_decision(metrics: list[dict], stop_step: int, max_val: float, min_p_ood: float) -> dict:
    """Run C''s rule read from eval records: at `stop_step`, stop iff val > max_val and the best p_ood over the
    evals up to it < min_p_ood. `fires` is None when there is no eval at stop_step (the rule cannot be applied)."""
    evals = [r for r in metrics if "val_loss" in r and r["step"] <= stop_step]
    at = next((r for r in evals if r["step"] == stop_step), None)
    best = max((r["p_ood"] for r in evals), default=math.nan)
    out = {"stop_step": stop_step, "max_val": max_val, "min_p_ood": min_p_ood, "best_p_ood": best,
           "val_loss": at["val_loss"] if at else None, "fires": None}
    if at is not None:
        out["fires"] = bool(at["val_loss"] > max_val and best < min_p_ood)
    return out
