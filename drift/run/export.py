"""Copy what a result needs out of a run directory, never its checkpoints: run.json, metrics.jsonl, environment.txt
and analysis/*.json, for a main run and for every sub-run of a control set or beta2 sweep (sub-directories holding a
run.json). The copy is what the report and the studies rebuild from once runs/ is gone, so it is committed.

    python -m drift.run.export runs/cpu_s271 --out experiments/results/cpu_runs_p20
    python -m drift.run.export runs/ctrl_s42 runs/beta2_s42 --out experiments/results/cpu_runs_p20

Each run lands in OUT/<run directory name>/ (sub-runs keep their names below it). A file is written to a temporary
name and renamed, and a stale copy of a file the run no longer has is removed, so OUT mirrors the run's results.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from drift import cli
from drift.atomic import atomic_path

# What a result needs; checkpoints, resume state, caches and figures are left behind (figures are redrawn from JSON).
TOP_FILES = ("run.json", "metrics.jsonl", "environment.txt", "codewords.json")
MAX_BYTES = 5 << 20  # a committed JSON larger than this is a mistake (a draws dump, a cache): refuse it


class ExportError(ValueError):
    """A directory that is not a run (or set of runs), or a file too large to commit."""


def result_files(run_dir: Path) -> list[Path]:
    """The files of one run (not its sub-runs) that a result needs, relative to the run directory."""
    files = [Path(n) for n in TOP_FILES if (run_dir / n).is_file()]
    analysis = run_dir / "analysis"
    if analysis.is_dir():
        files += sorted(p.relative_to(run_dir) for p in analysis.glob("*.json"))
    return files


def runs_below(root: Path) -> list[Path]:
    """root itself when it is a run, plus every immediate sub-directory that is one (a control set, a sweep)."""
    found = [root] if (root / "run.json").is_file() else []
    found += sorted(p for p in root.iterdir() if p.is_dir() and (p / "run.json").is_file())
    return found


def _copy(src: Path, dst: Path) -> None:
    if src.stat().st_size > MAX_BYTES:
        raise ExportError(f"{src} is {src.stat().st_size / 2**20:.1f} MiB, over the {MAX_BYTES >> 20} MiB a committed "
                          f"result file may have; it is not a result (leave it in the run directory)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def export(root, out) -> list[Path]:
    """Copy the results of `root` (a run, or a directory of runs with its own analysis/) into out/<root name>/."""
    root, dest = Path(root), Path(out) / Path(root).resolve().name
    if not root.is_dir():
        raise ExportError(f"{root} is not a directory; pass a run directory (runs/cpu_s42) or a set (runs/ctrl_s42)")
    runs = runs_below(root)
    if not runs and not (root / "analysis").is_dir():
        raise ExportError(f"{root} holds no run.json and no sub-run; is it a run directory?")
    written = []
    for run in runs + ([root] if root not in runs else []):
        target = dest / run.relative_to(root)
        keep = result_files(run)
        for rel in keep:
            _copy(run / rel, target / rel)
            written.append(target / rel)
        for old in (target / "analysis").glob("*.json") if (target / "analysis").is_dir() else ():
            if old.relative_to(target) not in keep:  # the run no longer has it: the copy must not outlive it
                old.unlink()
    return written


def main(argv=None) -> int:
    p = cli.parser("python -m drift.run.export", __doc__)
    p.add_argument("runs", nargs="+", type=cli.path("a run directory"),
                   help="run directories or sets of runs (controls, beta2 sweep)")
    p.add_argument("--out", type=cli.path("a directory"), required=True,
                   help="results directory, e.g. experiments/results/cpu_runs_p20")
    args = cli.parse(p, argv)
    args.runs, args.out = [Path(r) for r in args.runs], Path(args.out)
    try:
        for root in args.runs:
            files = export(root, args.out)
            print(f"{root}: {len(files)} files -> {args.out / root.resolve().name}")
    except (ExportError, OSError) as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m drift.run.export"))
