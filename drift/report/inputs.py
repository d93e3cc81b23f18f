"""The evidence the claims, tables and figures read: each main run's analysis JSON, and the control and beta2-sweep
directories' JSON, loaded once (never a checkpoint). Also which directories make_report.py reads by default.

    ev = load_evidence(["runs/cpu_s42", "runs/cpu_s271"], controls="runs/ctrl_s42", beta2="runs/beta2_s42")
    ev = load_evidence(runs, controls=["runs/ctrl_s42", "runs/ctrl_s271"], beta2=["runs/beta2_s42"])  # sets
    ev.runs[0].results("trajectory_pca"), ev.control("sgd_control"), ev.beta2
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from drift import cli
from drift.run import checkpoint as ck
from drift.run import provenance
from drift.run.info import RunInfo, load_run
from drift.run.kinds import kind_of, members, require_kind

# Analysis files of a main run -> the script that writes them (named in every "not measured" / missing message).
RUN_ANALYSES = {
    "trajectory_pca": "trajectory_pca_uncentered.py",
    "update_alignment": "backbone_update_analysis.py",
    "gradient_alignment": "backbone_gradient_analysis.py",
    "gradient_horizon": "backbone_gradient_analysis.py --equal-horizon",
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
    # One Evidence per control set / beta2 sweep (one per seed; the first is this one): claims on controls and
    # sweeps are judged in every set (report/claims.py); Table 4 and the beta2 table show every set, Table 5 and
    # the figures the first.
    control_views: list["Evidence"] = field(default_factory=list, repr=False)
    beta2_views: list["Evidence"] = field(default_factory=list, repr=False)

    def control(self, name: str) -> dict | None:
        return self.controls.get(name)

    def sets(self, kind: str) -> list["Evidence"]:
        """The views of one kind, "controls" or "beta2" (at least this Evidence itself)."""
        return (self.control_views if kind == "controls" else self.beta2_views) or [self]

    def set_label(self, kind: str) -> str:
        d = self.controls_dir if kind == "controls" else self.beta2_dir
        return d.name if d is not None else "none"

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


def _results(path: Path, refresh: str) -> dict | None:
    """The results of an analysis JSON (None: absent). One that records its inputs (drift/run/provenance.py) is
    refused when they no longer describe the run(s) it was made from: the run went on past the checkpoints it
    had then, or an input checkpoint changed; the message names `refresh`, the command that remakes it. JSON
    written before inputs were recorded (the committed results) carries no record and is read as it is."""
    if not path.exists():
        return None
    doc = ck.read_json(path, "analysis")
    if "provenance" in doc:
        reason = provenance.stale_reason(doc["provenance"], path.parent.parent)
        if reason is not None:
            raise ck.RunError(f"{path} is out of date: {reason}; refresh it with `python {refresh}`")
    return doc["results"]


def load_run_evidence(run_dir) -> RunEvidence:
    run = load_run(run_dir, require_steps=0)
    ev = RunEvidence(**{f.name: getattr(run, f.name) for f in fields(RunInfo)})
    ev.analyses = {name: _results(ev.run_dir / "analysis" / f"{name}.json", f"{script} {ev.run_dir}")
                   for name, script in RUN_ANALYSES.items()}
    return ev


# The option of make_report.py (and make_paper_figures.py) that takes each kind of directory (drift/run/kinds.py).
REPORT_FLAGS = {"main": "--runs", "controls": "--controls", "beta2": "--beta2"}


def check_kinds(runs: Sequence, controls=None, beta2=None) -> None:
    """Each input is the kind its option takes: main runs for --runs, an optimizer-control set for --controls, a
    beta2 sweep for --beta2; otherwise one line naming the directory, its kind and the option that takes it."""
    for d in runs:
        require_kind(d, "main", "--runs", REPORT_FLAGS)
    for option, given, kind in (("--controls", controls, "controls"), ("--beta2", beta2, "beta2")):
        for d in _dirs(given):
            require_kind(d, kind, option, REPORT_FLAGS)


def _is_kind(path: Path, kind: str) -> bool:
    try:
        found = kind_of(path)
    except ck.RunError:  # a set mixing kinds: never a default
        return False
    return found is not None and found[0] == kind


def add_evidence_args(p, out: str) -> None:
    """--runs, --controls, --beta2 and --out (default `out`): what the report and the figures are built from."""
    p.add_argument("--runs", nargs="*", type=cli.path("a run directory"), default=None,
                   help="main run directories, one per seed")
    p.add_argument("--controls", nargs="+", type=cli.path("a directory"), default=None,
                   help="optimizer-control directories (each holding A, B, B0, C, C_prime), one per seed; the "
                        "figures and tables show the first")
    p.add_argument("--beta2", nargs="+", type=cli.path("a directory"), default=None,
                   help="beta2-sweep directories, one per seed")
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
    they exist, are of their kind and hold runs of the same model and data as the first main run."""
    root = Path(root)
    chosen = [Path(r) for r in runs] if runs is not None else []
    for group in () if runs is not None else DEFAULT_RUN_SETS:
        chosen = [root / d for d in group if (root / d / "run.json").exists()]
        if chosen:
            break
    found = []
    for candidates, kind in ((DEFAULT_CONTROLS, "controls"), (DEFAULT_BETA2, "beta2")):
        dirs = [root / d for d in candidates if (root / d).is_dir() and _is_kind(root / d, kind)]
        found.append(next((d for d in dirs if chosen and (chosen[0] / "run.json").exists()
                           and _same_model(d, chosen[0])), None))
    return chosen, found[0], found[1]


def _dirs(given) -> list[Path]:
    """None, one directory or several, as a list of paths."""
    if given is None:
        return []
    if isinstance(given, (str, Path)):
        return [Path(given)]
    return [Path(d) for d in given]


def _by_seed(set_dirs: list[Path]) -> list[Path]:
    """Control sets or sweeps sorted by seed (as the main runs are), so the report does not depend on the order they
    are named in (make lists them by CONTROL_SEEDS, a shell glob by name)."""
    return sorted(set_dirs, key=_set_order)


def _set_order(set_dir: Path) -> tuple:
    """A set's seed, read from its first member's run.json; sets without a readable one go last, by name."""
    try:
        seed = int(ck.read_json(members(set_dir)[0] / "run.json")["config"]["train"]["seed"])
    except (IndexError, KeyError, TypeError, ValueError, ck.RunError):
        return (1, 0, str(set_dir))
    return (0, seed, str(set_dir))


def _load_controls(ev: Evidence, controls_dir: Path) -> None:
    ev.controls_dir = controls_dir
    ev.controls = {n: _results(controls_dir / "analysis" / f"{n}.json", f"{script} {controls_dir}")
                   for n, script in CONTROL_ANALYSES.items()}


def _load_beta2(ev: Evidence, beta2_dir: Path) -> None:
    b = ev.beta2_dir = beta2_dir
    ev.beta2 = _results(b / "analysis" / "beta2_sweep.json", f"beta2_sweep.py --out {b} --analyze-only")
    ev.beta2_nulls = _results(b / "analysis" / "nulls.json", f"trajectory_nulls.py {b} --beta2")


def load_evidence(run_dirs: Sequence, controls=None, beta2=None) -> Evidence:
    """Load the main runs (sorted by seed) and, when their directories are given (one, or a list with one per
    seed), the control and beta2 JSON, each directory checked to be the kind it is given as (check_kinds). The
    first control set and sweep are the Evidence's own; every one is also a view (control_views, beta2_views)."""
    check_kinds(run_dirs, controls, beta2)
    runs = sorted((load_run_evidence(d) for d in run_dirs), key=lambda r: r.config.train.seed)
    ev = Evidence(runs)
    ctrl_dirs, beta2_dirs = _by_seed(_dirs(controls)), _by_seed(_dirs(beta2))
    if ctrl_dirs:
        _load_controls(ev, ctrl_dirs[0])
    if beta2_dirs:
        _load_beta2(ev, beta2_dirs[0])
    ev.control_views, ev.beta2_views = [ev], [ev]
    if len(ctrl_dirs) > 1:
        ev.control_views = [ev] + [Evidence(runs) for _ in ctrl_dirs[1:]]
        for view, d in zip(ev.control_views[1:], ctrl_dirs[1:]):
            _load_controls(view, d)
    if len(beta2_dirs) > 1:
        ev.beta2_views = [ev] + [Evidence(runs) for _ in beta2_dirs[1:]]
        for view, d in zip(ev.beta2_views[1:], beta2_dirs[1:]):
            _load_beta2(view, d)
    return ev
