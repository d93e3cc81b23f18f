"""The evidence the claims, tables and figures read: each main run's analysis JSON, and the control and beta2-sweep
directories' JSON, loaded once (never a checkpoint). Also which directories make_report.py reads by default.

    ev = load_evidence(["runs/cpu_s42", "runs/cpu_s271"], controls="runs/ctrl_s42", beta2="runs/beta2_s42")
    ev.runs[0].results("trajectory_pca"), ev.control("sgd_control"), ev.beta2
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from drift import cli
from drift.run import checkpoint as ck
from drift.run.info import RunInfo, load_run

# Analysis files of a main run -> the script that writes them (named in every "not measured" / missing message).
RUN_ANALYSES = {
    "trajectory_pca": "trajectory_pca_uncentered.py",
    "update_alignment": "backbone_update_analysis.py",
    "gradient_alignment": "backbone_gradient_analysis.py",
    "fisher": "backbone_fisher_analysis.py",
    "reheat": "reheat.py",
    "nulls": "trajectory_nulls.py",
}
CONTROL_ANALYSES = {"sgd_control": "sgd_control_analysis.py", "sgd_matched_valloss": "sgd_matched_valloss.py",
                    "nulls": "trajectory_nulls.py --controls"}

# ---------------------------------------------------------------------------------------------------------------
# Evidence: the JSON of the runs, loaded once
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class RunEvidence(RunInfo):
    """One main run (one seed): what RunInfo reads from the run directory, plus the `results` of each analysis
    file (None: absent)."""
    analyses: dict[str, dict | None] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"s{self.config.train.seed}"

    def results(self, name: str) -> dict | None:
        return self.analyses.get(name)

    def missing(self, name: str) -> str:
        return f"{self.run_dir}/analysis/{name}.json absent (run `python {RUN_ANALYSES[name]} {self.run_dir}`)"

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of an eval metric, NaN where absent."""
        steps = np.array([r["step"] for r in self.metrics], dtype=np.float64)
        vals = np.array([np.nan if r.get(key) is None else float(r[key]) for r in self.metrics])
        return steps, vals


@dataclass
class Evidence:
    """Main runs (one per seed), and the optional control, beta2-sweep directories' analysis results."""
    runs: list[RunEvidence]
    controls_dir: Path | None = None
    beta2_dir: Path | None = None
    controls: dict[str, dict | None] = field(default_factory=dict)
    beta2: dict | None = None
    beta2_nulls: dict | None = None

    def control(self, name: str) -> dict | None:
        return self.controls.get(name)

    def missing_control(self, name: str) -> str:
        if self.controls_dir is None:
            return ("optimizer controls not given (train them with `python sgd_control.py --out runs/ctrl_s42` "
                    f"and `python sgd_nesterov_run.py --out runs/ctrl_s42`, then `python {CONTROL_ANALYSES[name]} "
                    "runs/ctrl_s42`)")
        where = self.controls_dir
        return f"{where}/analysis/{name}.json absent (run `python {CONTROL_ANALYSES[name]} {where}`)"

    def missing_beta2(self) -> str:
        if self.beta2_dir is None:
            return "beta2 sweep not given (run `python beta2_sweep.py --out runs/beta2_s42`)"
        where = self.beta2_dir
        return f"{where}/analysis/beta2_sweep.json absent (run `python beta2_sweep.py --out {where} --analyze-only`)"

    def missing_beta2_nulls(self) -> str:
        if self.beta2_dir is None:
            return self.missing_beta2()
        return f"{self.beta2_dir}/analysis/nulls.json absent (run `python trajectory_nulls.py {self.beta2_dir} --beta2`)"


def _results(path: Path) -> dict | None:
    if not path.exists():
        return None
    return ck.read_json(path, "analysis")["results"]  # a file without "results" is a one-line RunError


def load_run_evidence(run_dir) -> RunEvidence:
    run = load_run(run_dir, require_steps=0)
    ev = RunEvidence(**{f.name: getattr(run, f.name) for f in fields(RunInfo)})
    ev.analyses = {name: _results(ev.run_dir / "analysis" / f"{name}.json") for name in RUN_ANALYSES}
    return ev


def add_evidence_args(p, out: str) -> None:
    """--runs, --controls, --beta2 and --out (default `out`): what the report and the figures are built from."""
    p.add_argument("--runs", nargs="*", type=cli.path("a run directory"), default=None,
                   help="main run directories, one per seed")
    p.add_argument("--controls", type=cli.path("a directory"), default=None,
                   help="optimizer-control directory (holding A, B, C, C_prime)")
    p.add_argument("--beta2", type=cli.path("a directory"), default=None, help="beta2-sweep directory")
    p.add_argument("--out", type=cli.path("a directory"), default=out, help=f"output directory (default: {out})")


DEFAULT_RUN_SETS = (("runs/paper_s42", "runs/paper_s271"), ("runs/cpu_s42", "runs/cpu_s271"))
DEFAULT_CONTROLS = ("runs/ctrl_s42",)
DEFAULT_BETA2 = ("runs/beta2_s42",)


def _same_model(sweep_dir: Path, main_run: Path) -> bool:
    """Whether the runs under a control/beta2 directory share the main run's model and data (so that a tiny main
    run is never reported next to cpu-scale controls)."""
    def key(run_json: Path) -> tuple:
        cfg = ck.read_config(run_json.parent)
        return (cfg.model, cfg.train.data_source, cfg.train.tokenizer)
    subs = sorted(sweep_dir.glob("*/run.json"))
    return bool(subs) and key(subs[0]) == key(main_run / "run.json")


def default_inputs(runs: Sequence | None = None, root=".") -> tuple[list[Path], Path | None, Path | None]:
    """(main runs, control dir, beta2 dir). Main runs: `runs` if given (even empty), else the paper-preset seeds
    under `root` if any exists, else the cpu-preset seeds. Control and beta2 directories: the default ones when
    they exist and hold runs of the same model and data as the first main run."""
    root = Path(root)
    chosen = [Path(r) for r in runs] if runs is not None else []
    for group in () if runs is not None else DEFAULT_RUN_SETS:
        chosen = [root / d for d in group if (root / d / "run.json").exists()]
        if chosen:
            break
    found = []
    for candidates in (DEFAULT_CONTROLS, DEFAULT_BETA2):
        dirs = [root / d for d in candidates if (root / d).is_dir()]
        found.append(next((d for d in dirs if chosen and (chosen[0] / "run.json").exists()
                           and _same_model(d, chosen[0])), None))
    return chosen, found[0], found[1]


def load_evidence(run_dirs: Sequence, controls=None, beta2=None) -> Evidence:
    """Load the main runs (sorted by seed) and, when their directories are given, the control and beta2 JSON."""
    runs = sorted((load_run_evidence(d) for d in run_dirs), key=lambda r: r.config.train.seed)
    ev = Evidence(runs, Path(controls) if controls else None, Path(beta2) if beta2 else None)
    if ev.controls_dir is not None:
        ev.controls = {n: _results(ev.controls_dir / "analysis" / f"{n}.json") for n in CONTROL_ANALYSES}
    if ev.beta2_dir is not None:
        ev.beta2 = _results(ev.beta2_dir / "analysis" / "beta2_sweep.json")
        ev.beta2_nulls = _results(ev.beta2_dir / "analysis" / "nulls.json")
    return ev
