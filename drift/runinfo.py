"""What an analysis needs to know about a finished (or partial) run, read from the run directory alone, and the
one way analyses write their results.

    run = load_run("runs/cpu_s42")
    run.steps            # checkpoint steps on disk, e.g. [0, 1, 20, 40, ...]
    run.switch_step      # lambda switch (4000 for the paper, 400 for the cpu preset)
    run.metric("p_ood", run.steps)   # aligned with the steps, NaN where no eval exists
    write_analysis(run.run_dir, "trajectory_pca", results, params={...}, inputs={...})
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drift import checkpoint as ck
from drift.config import Config


@dataclass
class RunInfo:
    run_dir: Path
    info: dict          # run.json
    config: Config
    steps: list[int]    # checkpoint steps present on disk
    metrics: list[dict]  # eval records (diverged / early-stop markers excluded)

    @property
    def switch_step(self) -> int:
        return self.config.train.lambda_switch_step

    @property
    def total_steps(self) -> int:
        return self.config.train.total_steps

    @property
    def ckpt_every(self) -> int:
        return self.config.train.ckpt_every

    @property
    def last_step(self) -> int:
        return self.steps[-1]

    def regular_steps(self, start: int = 1) -> list[int]:
        """Steps on the main cadence (step `start`, then multiples of ckpt_every), i.e. without dense windows."""
        return [s for s in self.steps if s == start or (s > start and s % self.ckpt_every == 0)]

    def metric(self, key: str, steps=None) -> np.ndarray:
        by_step = {r["step"]: r.get(key) for r in self.metrics}
        steps = self.steps if steps is None else steps
        return np.array([np.nan if by_step.get(s) is None else float(by_step[s]) for s in steps])

    def eval_steps(self) -> list[int]:
        return [r["step"] for r in self.metrics]


def load_run(run_dir, require_steps: int = 2) -> RunInfo:
    run_dir = Path(run_dir)
    info = ck.read_run(run_dir)
    steps = ck.list_steps(run_dir)
    if len(steps) < require_steps:
        raise ck.RunError(f"{run_dir} has {len(steps)} checkpoint(s); the analysis needs at least {require_steps}. "
                          f"Train longer or resume it (python train.py --resume {run_dir})")
    try:
        metrics = [r for r in ck.read_metrics(run_dir) if "val_loss" in r]
    except ck.RunError:
        metrics = []
    return RunInfo(run_dir, info, Config.from_dict(info["config"]), steps, metrics)


def check_same_setup(a: RunInfo, b: RunInfo, ignore: tuple[str, ...] = ()) -> None:
    """Refuse to compare runs whose model or data differ (optimizer settings may differ: that is the point)."""
    data_keys = ("data_source", "tokenizer", "n_train_stories", "n_val_stories", "n_codewords",
                 "gap_in_min", "gap_in_max", "gap_ood_min", "gap_ood_max", "n_probe_eval", "seed")
    diffs = [k for k in a.config.model.__dataclass_fields__ if getattr(a.config.model, k) != getattr(b.config.model, k)]
    diffs += [k for k in data_keys if k not in ignore and getattr(a.config.train, k) != getattr(b.config.train, k)]
    if diffs:
        raise ck.RunError(f"runs {a.run_dir} and {b.run_dir} differ in {', '.join(diffs)}; they cannot be compared")


def analysis_dir(run_dir) -> Path:
    path = Path(run_dir) / "analysis"
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(run_dir) -> Path:
    path = Path(run_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_analysis(run_dir, name: str, results: dict, params: dict, inputs: dict | None = None) -> Path:
    """analysis/<name>.json = {"analysis", "run_dir", "created", "params", "inputs", "results"}."""
    path = analysis_dir(run_dir) / f"{name}.json"
    ck.atomic_write_json({"analysis": name, "run_dir": str(run_dir), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                          "params": params, "inputs": inputs or {}, "results": results}, path)
    return path


def read_analysis(run_dir, name: str, producer: str) -> dict:
    """Load analysis/<name>.json; a missing file names the script that makes it."""
    path = Path(run_dir) / "analysis" / f"{name}.json"
    return ck.read_json(path, "analysis", f"run `python {producer} {run_dir}` first")


# Fields that change speed or placement, not the experiment itself.
_NOT_SCIENCE = {"seed", "threads", "device", "compile", "cache_dir"}


def differences_but_seed(ref_dir, run_dir) -> list[str]:
    """Config fields (other than the seed) in which run_dir differs from ref_dir."""
    a, b = load_run(ref_dir, require_steps=0).config, load_run(run_dir, require_steps=0).config
    diffs = [f"{part}.{k}: {getattr(getattr(a, part), k)!r} vs {getattr(getattr(b, part), k)!r}"
             for part in ("model", "train") for k in getattr(a, part).__dataclass_fields__
             if k not in _NOT_SCIENCE and getattr(getattr(a, part), k) != getattr(getattr(b, part), k)]
    return diffs


def _main(argv=None) -> int:
    """python -m drift.runinfo same-but-seed REF_RUN RUN: exit 1 (listing the fields) unless the two configs
    differ only in the seed. run_seed.sh uses it to keep seeds comparable."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(prog="python -m drift.runinfo", description=_main.__doc__)
    parser.add_argument("command", choices=["same-but-seed"])
    parser.add_argument("ref_run")
    parser.add_argument("run")
    args = parser.parse_args(argv)
    try:
        diffs = differences_but_seed(args.ref_run, args.run)
    except ck.RunError as e:
        print(f"drift.runinfo: error: {e}", file=sys.stderr)
        return 2
    if diffs:
        print(f"drift.runinfo: error: {args.run} differs from {args.ref_run} in more than the seed: "
              + "; ".join(diffs), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
