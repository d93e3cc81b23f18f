"""What a run directory is, so that every consumer refuses the wrong one: the run's kind, recorded in run.json.

    main      train.py (and the probe study's runs): one run, analysed on its own, reported with --runs
    controls  sgd_control.py, sgd_nesterov_run.py: a set <dir>/A, B, B0, C, C_prime
    beta2     beta2_sweep.py: a set <dir>/b<beta2>[_p<p_probe>]
    reheat    reheat.py: a set <main run>/reheat/lr<peak lr>

Where the kind lives. Each run's run.json ("kind"), written with its run_id when the run is created
(drift/train/lifecycle.py) and never changed (resume keeps the record; train.py --restart keeps the kind). A set
(a controls or beta2 directory) has no record of its own: its kind is its members' kind, and they must agree (a
directory mixing kinds is refused, naming a member of each). Not a marker file at the set's top, because runs are
copied and moved one directory at a time: the kind has to travel with the run, and a marker would describe what
the set held when it was made, one more file that can disagree with the runs inside. The trainers also refuse to
add a run to a set of another kind (`check_set`).

Legacy runs (run.json without "kind", written before kinds were recorded, as every committed result): the kind is
inferred, first from the script that made the run when it is one of the set scripts (run.json's argv[0]:
sgd_control.py, sgd_nesterov_run.py -> controls, beta2_sweep.py -> beta2, reheat.py -> reheat), else from the
layout those scripts give their runs (the names above; any other name is a main run), which is how the consumers
found them before kinds were recorded.

    kind_of("runs/ctrl_s42"), kind_of("runs/ctrl_s42/A")          # "controls", "controls"
    require_kind("runs/ctrl_s42", "beta2", "--beta2", {"controls": "--controls"})
    # RunError: --beta2 runs/ctrl_s42 is an optimizer-control set (kind "controls"), not a beta2 sweep; pass it
    #           to --controls
"""
from __future__ import annotations

import re
from pathlib import Path

from drift.run import checkpoint as ck

KINDS = ("main", "controls", "beta2", "reheat")
SETS = {"main": "a directory of main runs", "controls": "an optimizer-control set", "beta2": "a beta2 sweep",
        "reheat": "a set of reheating runs"}
RUNS = {"main": "a main run", "controls": "an optimizer-control run", "beta2": "a run of a beta2 sweep",
        "reheat": "a reheating run"}
# Where each kind of directory goes, for a refusal whose consumer names no option of its own for it (reheating runs
# are read through their main run).
TAKEN_BY = {"main": "make_report.py --runs, trajectory_nulls.py RUN or reheat.py RUN",
            "controls": "--controls (make_report.py, trajectory_nulls.py) or sgd_control_analysis.py",
            "beta2": "--beta2 (make_report.py, trajectory_nulls.py) or beta2_sweep.py --analyze-only"}

CONTROL_RUNS = ("A", "B", "B0", "C", "C_prime")  # the control runs' directory names (drift/train/control_runs.py)
# The scripts that make set members. train.py is not among them: `train.py --restart` of a member recorded its own
# argv before kinds existed, so a legacy run made by train.py is judged by its layout.
SCRIPTS = {"sgd_control.py": "controls", "sgd_nesterov_run.py": "controls", "beta2_sweep.py": "beta2",
           "reheat.py": "reheat"}
_BETA2_NAME = re.compile(r"^b\d[\d.e+-]*(_p[\d.]+)?$")  # control_runs.beta2_run_name: b0.99, b0.0_p0.20
_REHEAT_NAME = re.compile(r"^lr\d")                     # control_runs.reheat_run_name: lr0.0006


def layout_kind(run_dir: Path) -> str:
    """A legacy run's kind from where the scripts put it (module docstring)."""
    if run_dir.name in CONTROL_RUNS:
        return "controls"
    if _BETA2_NAME.match(run_dir.name):
        return "beta2"
    if run_dir.parent.name == "reheat" and _REHEAT_NAME.match(run_dir.name):
        return "reheat"
    return "main"


def run_kind(run_dir, info: dict | None = None) -> str:
    """The kind of one run: run.json's "kind", else (legacy) inferred from its argv, else from its layout."""
    run_dir = Path(run_dir)
    info = ck.read_json(run_dir / "run.json", "run file") if info is None else info
    kind = info.get("kind")
    if kind is not None:
        if kind not in KINDS:
            raise ck.RunError(f"{run_dir / 'run.json'} records an unknown kind {kind!r} (one of {', '.join(KINDS)} "
                              f"expected); correct it or retrain the run")
        return kind
    argv = info.get("argv") or []
    script = Path(str(argv[0])).name if argv else ""
    return SCRIPTS.get(script) or layout_kind(run_dir)


def members(root) -> list[Path]:
    """The run directories directly under a set directory (those holding a run.json)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "run.json").is_file())


def kind_of(path) -> tuple[str, bool] | None:
    """(kind, is_set) of a run directory or a set of runs; None when it is neither. A set whose members disagree
    is a RunError naming one member of each kind."""
    path = Path(path)
    if (path / "run.json").is_file():
        return run_kind(path), False
    found: dict[str, Path] = {}
    for run in members(path):
        found.setdefault(run_kind(run), run)
    if len(found) > 1:
        shown = ", ".join(f"{p.name} is {k}" for k, p in found.items())
        raise ck.RunError(f"{path} mixes runs of different kinds ({shown}); keep one kind per directory and move "
                          f"the others out")
    return (next(iter(found)), True) if found else None


def require_kind(path, expected: str, option: str = "", flags: dict[str, str] | None = None) -> None:
    """Refuse `path` (given as `option`) unless it is a run or a set of the `expected` kind: one line naming the
    directory, its kind and where it goes (`flags[kind]`, the consumer's own option for it, else TAKEN_BY). A path
    that is neither a run nor a set passes: the consumer's own check says what is missing."""
    found = kind_of(path)
    if found is None or found[0] == expected:
        return
    kind, is_set = found
    path = Path(path)
    if kind == "reheat":
        main = path.parent if is_set else path.parent.parent
        then = f"it is read through its main run: reheat.py {main} --analyze-only"
    else:
        where = (flags or {}).get(kind, TAKEN_BY[kind])
        then = f"pass it to {where}" if is_set or kind == "main" else f"pass its directory {path.parent} to {where}"
    wanted = RUNS[expected] if expected == "main" else SETS[expected]
    raise ck.RunError(f"{option + ' ' if option else ''}{path} is {SETS[kind] if is_set else RUNS[kind]} (kind "
                      f"\"{kind}\"), not {wanted}; {then}")


def check_set(run_dir, kind: str) -> None:
    """Before a run of `kind` is trained into run_dir: a set's directory holds runs of one kind (main runs stand
    alone, so only controls, beta2 and reheat runs are checked against their siblings)."""
    run_dir = Path(run_dir)
    if kind == "main":
        return
    if (run_dir.parent / "run.json").is_file():
        raise ck.RunError(f"{run_dir.parent} is a run directory, not a directory for {SETS[kind]}; choose another "
                          f"--out")
    for other in members(run_dir.parent):
        if other != run_dir and (k := run_kind(other)) != kind:
            raise ck.RunError(f"{run_dir.parent} is {SETS[k]} (its run {other.name} has kind \"{k}\"), not "
                              f"{SETS[kind]}; choose another --out")
