"""What an analysis needs to know about a finished (or partial) run, read from the run directory alone, and the
one way analyses write their results.

    run = load_run("runs/cpu_s42")
    run.steps            # checkpoint steps on disk, e.g. [0, 1, 20, 40, ...]
    run.switch_step      # lambda switch (4000 for the paper, 400 for the cpu preset)
    run.metric("p_ood", run.steps)   # aligned with the steps, NaN where no eval exists
    write_analysis(run.run_dir, "trajectory_pca", results, params={...}, inputs={...})

Checks every analysis script makes before reading a trajectory (`add_check_args` + `checked_run`): a run whose
run.json says "running" is refused unless --allow-running (it says whether a process still holds the run lock);
a run with holes in its own checkpoint schedule (run.json's ckpt_steps, up to the last checkpoint it reached) is
refused unless --allow-missing. Every analysis JSON carries a "run" block: the run's status ("diverged at step N"),
the steps the analysis used and the scheduled steps it lacked; and a "provenance" block: the identity of each
checkpoint it used and the run's checkpoints when it read them (drift/run/provenance.py), which the report checks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drift.run import checkpoint as ck
from drift.run import kinds, lock
from drift.run import provenance as prov
from drift.config import SAME_EXPERIMENT, Config


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
    if not (run_dir / "run.json").exists():
        found = kinds.kind_of(run_dir)
        if found and found[0] in ("controls", "beta2"):  # a set given where one run is read: say where it goes
            raise ck.RunError(f"{run_dir} is {kinds.SETS[found[0]]} (kind \"{found[0]}\"), a directory of runs, not "
                              f"one run; pass it to {kinds.TAKEN_BY[found[0]]}")
    info = ck.read_run(run_dir)
    steps = ck.list_steps(run_dir)
    if len(steps) < require_steps:
        raise ck.RunError(f"{run_dir} has {len(steps)} checkpoint(s); the analysis needs at least {require_steps}. "
                          f"Train longer or resume it (python train.py --resume {run_dir})")
    try:
        metrics = [r for r in ck.read_metrics(run_dir) if "val_loss" in r]
    except ck.RunError:
        metrics = []
    return RunInfo(run_dir, info, ck.run_config(info, run_dir / "run.json"), steps, metrics)


def check_same_setup(a: RunInfo, b: RunInfo, ignore: tuple[str, ...] = ()) -> None:
    """Refuse to compare runs whose model or data differ (optimizer settings may differ: that is the point)."""
    data_keys = ("data_source", "tokenizer", "n_train_stories", "n_val_stories", "n_codewords",
                 "gap_in_min", "gap_in_max", "gap_ood_min", "gap_ood_max", "n_probe_eval", "seed")
    diffs = [k for k in a.config.model.__dataclass_fields__ if getattr(a.config.model, k) != getattr(b.config.model, k)]
    diffs += [k for k in data_keys if k not in ignore and getattr(a.config.train, k) != getattr(b.config.train, k)]
    if diffs:
        raise ck.RunError(f"runs {a.run_dir} and {b.run_dir} differ in {', '.join(diffs)}; they cannot be compared")


# run.json statuses a run ends with. A completed run reached its end (or its early-stop rule); a diverged one stopped
# at a non-finite loss. The runners (control_runs, the probe study) skip every DONE run; drift/train/lifecycle.py's
# FINAL is the completed ones: `train.py --resume` continues a diverged run from its last resume state.
COMPLETED = ("finished", "early_stopped")
DONE = COMPLETED + ("diverged",)


def status_text(info: dict) -> str:
    """run.json's status in words: "finished", "diverged at step N", "running", ..."""
    status = info.get("status") or "unknown"
    if status == "diverged" and info.get("diverged_step") is not None:
        return f"diverged at step {info['diverged_step']}"
    return status


def schedule_holes(info: dict, steps: list[int]) -> list[int]:
    """Steps of the run's own checkpoint schedule with no file on disk: up to the schedule's end for a finished
    run, else up to the last checkpoint the run reached (a killed or diverged run is short, not holed)."""
    schedule = ck.field(info, "ckpt_steps", "ints", None) or []
    if not schedule:
        return []
    limit = max(schedule) if info.get("status") == "finished" or not steps else max(steps)
    present = set(steps)
    return [s for s in schedule if s <= limit and s not in present]


def add_check_args(parser) -> None:
    """--allow-missing and --allow-running, shared by every analysis script."""
    parser.add_argument("--allow-missing", action="store_true",
                        help="analyse a run with holes in its checkpoint schedule (the steps used are recorded)")
    parser.add_argument("--allow-running", action="store_true",
                        help="analyse a run whose run.json still says running")


def check_run(run: RunInfo, allow_missing: bool = False, allow_running: bool = False) -> RunInfo:
    """Refuse a running run and a holed trajectory unless allowed (see the module docstring)."""
    d = run.run_dir
    if run.info.get("status") == "running" and not allow_running:
        h = lock.holder(d)
        why = (f"pid {h.get('pid')} on {h.get('host')} is training it" if h else
               f"no process holds its lock, so it was killed: continue it with `python train.py --resume {d}`")
        raise ck.RunError(f"{d} is still running according to its run.json ({why}); analyse it when it has "
                          f"ended, or pass --allow-running")
    holes = schedule_holes(run.info, run.steps)
    if holes and not allow_missing:
        shown = ", ".join(map(str, holes[:8])) + (" ..." if len(holes) > 8 else "")
        raise ck.RunError(f"{d} lacks {len(holes)} checkpoint(s) of its own schedule (step {shown}); pass "
                          f"--allow-missing to analyse the steps present (they are recorded), or retrain it with "
                          f"`python train.py --restart {d}`")
    return run


def checked_run(run_dir, args, require_steps: int = 2) -> RunInfo:
    """load_run + check_run with the script's --allow-missing / --allow-running."""
    return check_run(load_run(run_dir, require_steps), getattr(args, "allow_missing", False),
                     getattr(args, "allow_running", False))


def run_block(run_dir, steps=None) -> dict | None:
    """The "run" block of an analysis JSON: status, diverged step, steps used, scheduled steps missing."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return None
    info = ck.read_json(path)
    on_disk = ck.list_steps(run_dir)
    block = {"status": info.get("status"), "status_text": status_text(info),
             "diverged_step": info.get("diverged_step"), "missing_steps": schedule_holes(info, on_disk)}
    if steps is not None:
        block["steps_used"] = [int(s) for s in steps]
    return block


def analysis_dir(run_dir) -> Path:
    path = Path(run_dir) / "analysis"
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(run_dir) -> Path:
    path = Path(run_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_analysis(run_dir, name: str, results: dict, params: dict, inputs: dict | None = None,
                   steps=None, run: dict | None = None, provenance: dict | None = None) -> Path:
    """analysis/<name>.json = {"analysis", "run_dir", "created", "params", "inputs", "run", "provenance",
    "results"}. "run" is run_block(run_dir, steps) (steps default: inputs["steps"], else params["steps"]) unless
    given (a directory of several runs passes one block per run). "provenance" is the identity of the inputs
    (drift/run/provenance.py): the one given, else inputs["provenance"] (moved out of "inputs"; analyses that
    read their run before computing return it there, with the run's steps as they read them), else a record of
    `steps` taken now (a directory of several runs: every checkpoint of each)."""
    path = analysis_dir(run_dir) / f"{name}.json"
    inputs = dict(inputs or {})
    returned = inputs.pop("provenance", None)
    provenance = provenance or returned
    if steps is None:
        steps = inputs.get("steps", params.get("steps"))
    if run is None:
        run = run_block(run_dir, steps)
    if provenance is None:
        single = (Path(run_dir) / "run.json").exists()
        provenance = prov.record(run_dir, steps) if single else prov.record_runs(run_dir)
    ck.atomic_write_json({"analysis": name, "run_dir": str(run_dir), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                          "params": params, "inputs": inputs, "run": run, "provenance": provenance,
                          "results": results}, path)
    return path


def read_analysis(run_dir, name: str, producer: str) -> dict:
    """Load analysis/<name>.json; a missing file names the script that makes it."""
    path = Path(run_dir) / "analysis" / f"{name}.json"
    return ck.read_json(path, "analysis", f"run `python {producer} {run_dir}` first")


_NOT_SCIENCE = SAME_EXPERIMENT | {"seed"}  # seeds of one experiment differ in the seed and nothing else


def differences_but_seed(ref_dir, run_dir) -> list[str]:
    """Config fields (other than the seed) in which run_dir differs from ref_dir."""
    a, b = load_run(ref_dir, require_steps=0).config, load_run(run_dir, require_steps=0).config
    diffs = [f"{part}.{k}: {getattr(getattr(a, part), k)!r} vs {getattr(getattr(b, part), k)!r}"
             for part in ("model", "train") for k in getattr(a, part).__dataclass_fields__
             if k not in _NOT_SCIENCE and getattr(getattr(a, part), k) != getattr(getattr(b, part), k)]
    return diffs


def check_seed_set(run_dirs) -> None:
    """Runs reported side by side as seeds of one experiment must differ in the seed and in nothing else."""
    run_dirs = [Path(d) for d in run_dirs]
    seeds = {}
    for d in run_dirs:
        seed = load_run(d, require_steps=0).config.train.seed
        if seed in seeds:
            raise ck.RunError(f"{seeds[seed]} and {d} have the same seed {seed}; pass one run per seed")
        seeds[seed] = d
    for d in run_dirs[1:]:
        diffs = differences_but_seed(run_dirs[0], d)
        if diffs:
            shown = "; ".join(diffs[:3]) + (f"; ... ({len(diffs)} fields)" if len(diffs) > 3 else "")
            raise ck.RunError(f"{d} cannot be reported as another seed of {run_dirs[0]}: their configs differ in "
                              f"more than the seed ({shown}); report them separately")


def check_sweep_matches(sweep_dir, main_dir, option: str) -> None:
    """A control or sweep directory must hold runs of the main run's model and data (seed aside)."""
    subs = sorted(Path(sweep_dir).glob("*/run.json"))
    if not subs:
        raise ck.RunError(f"{option} {sweep_dir} holds no runs (no */run.json); train them first")
    a, b = load_run(main_dir, require_steps=0), load_run(subs[0].parent, require_steps=0)
    try:
        check_same_setup(a, b, ignore=("seed",))
    except ck.RunError as e:
        raise ck.RunError(f"{option} {sweep_dir}: {e} (another preset?); pass the directory made with the main "
                          f"runs' preset") from None


def _main(argv=None) -> int:
    """python -m drift.run.info same-but-seed REF_RUN RUN: exit 1 (listing the fields) unless the two configs
    differ only in the seed. run_seed.sh uses it to keep seeds comparable."""
    import sys

    from drift import cli
    parser = cli.parser("python -m drift.run.info", _main.__doc__)
    parser.add_argument("command", choices=["same-but-seed"])
    parser.add_argument("ref_run", type=cli.path("a run directory"))
    parser.add_argument("run", type=cli.path("a run directory"))
    args = cli.parse(parser, argv)
    try:
        diffs = differences_but_seed(args.ref_run, args.run)
    except ck.RunError as e:
        print(f"drift.run.info: error: {e}", file=sys.stderr)
        return 2
    if diffs:
        print(f"drift.run.info: error: {args.run} differs from {args.ref_run} in more than the seed: "
              + "; ".join(diffs), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from drift import cli
    raise SystemExit(cli.run(_main, "python -m drift.run.info"))
