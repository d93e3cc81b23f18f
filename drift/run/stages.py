"""The pipeline's stages and their stamps: what each stage of run_seed.sh and of `make reproduce` writes, and the
stamp `<run>/.stages/<stage>.done` that says it is done. This table is the one declaration of every stage's outputs;
run_seed.sh and the Makefile ask it, never a stamp's mere existence.

A stamp is JSON listing every output of its stage (path, size and XXH3-128 digest) and, for each stage whose
outputs it read (its inputs), a digest of that stage's stamp. A stage counts as done only while its stamp agrees:
an output missing or changed, or an input stage redone (or done, or undone) since, and the stage runs again, with
a one-line note saying why. Writing a stamp after a rerun refuses when an output listed in the old stamp is still
missing (a finished run's trainer does not rewrite a deleted checkpoint), naming the way out.

Caches that any of several stages may write first (analysis/gram_cache.npz, analysis/directions.pt) are nobody's
output; they check themselves against the checkpoint files they were built from. Files over FULL_DIGEST_MAX bytes
(paper-size checkpoints) are fingerprinted by size and a digest of their first and last MiB: the end of a zip file
(torch checkpoints, .npz) is its central directory with every member's CRC-32, and every tensor also carries its
own digest, checked whenever it is read (drift/run/digests.py).

Stamps written before this format (a date line) are legacy: when every output pattern of the stage matches a
file, the stamp is rewritten in the new format with the files as they are now (adopted, with a note); otherwise
the stage runs again.

    python -m drift.run.stages check runs/cpu_s42/.stages/trajectory.done   # 0: done; 1: run it (why on stdout)
    python -m drift.run.stages write runs/cpu_s42/.stages/trajectory.done   # after the stage succeeded
    python -m drift.run.stages list                                          # every stage: outputs and inputs
    python -m drift.run.stages times runs/cpu_s42 runs/ctrl_s42              # each stage's time, with totals
    python -m drift.run.stages slot --stamp runs/ctrl_s42/.stages/B.done --log runs/ctrl_s42/.stages/B.log \
        -- python sgd_control.py --runs B ...    # run a stage in a slot (drift/jobs.py), stamp it with its time

Standard library and xxhash only (no torch), so a check costs a Python start-up and reading the files it lists.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import xxhash

from drift.atomic import atomic_path

FULL_DIGEST_MAX = 16 << 20  # bytes: files up to this size are hashed whole
END_BYTES = 1 << 20         # larger ones: size + digest of their first and last END_BYTES
STAGES_DIR = ".stages"
SUFFIX = ".done"
FORMAT = 1

# What a training run leaves that other stages read (resume.pt is only for resuming, so it is not listed).
TRAINED = ("run.json", "metrics.jsonl", "codewords.json", "ckpt_*.pt")
CONTROL_RUNS = ("A", "B", "B0", "C", "C_prime")
# The tables over a beta2 sweep's runs and over the control runs (beta2_sweep.py --analyze-only, trajectory_nulls.py
# --beta2; sgd_control_analysis.py, sgd_matched_valloss.py, trajectory_nulls.py --controls).
BETA2_TABLES = ("analysis/beta2_sweep.json", "analysis/beta2_sweep.csv", "analysis/nulls.json",
                "figures/beta2_sweep.pdf", "figures/beta2_sweep.png")
CONTROL_TABLES = ("analysis/sgd_control.json", "analysis/sgd_control.csv", "analysis/sgd_matched_valloss.json",
                  "analysis/sgd_matched_valloss.csv", "analysis/nulls.json", "figures/sgd_control.pdf",
                  "figures/sgd_control.png")


@dataclass(frozen=True)
class Stage:
    """outputs: globs relative to the run directory (the stamp's .stages/ parent), each of which must match a file
    when the stage is done; inputs: names (globs) of the stamps in the same .stages/ whose outputs it reads."""
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()


def trained(run: str = "") -> tuple[str, ...]:
    return tuple(f"{run}/{p}" if run else p for p in TRAINED)


def figure(stem: str) -> tuple[str, str]:
    return f"figures/{stem}.pdf", f"figures/{stem}.png"


def reheat_run_name(lr: float) -> str:
    return f"lr{lr:g}"


def beta2_run_name(beta2: float, p_probe: float | None = None, default_p_probe: float | None = None) -> str:
    """b0.99, b0.9, b0.0; with `_p0.20` appended when p_probe differs from the preset's default."""
    name = f"b{float(beta2)!r}"
    if p_probe is not None and (default_p_probe is None or not math.isclose(p_probe, default_p_probe)):
        name += f"_p{p_probe:.2f}"
    return name


ANALYSES = ("trajectory", "nulls", "updates", "gradients", "horizon", "fisher", "reheat")
# run_seed.sh's stages, in its order (make runs them in groups: env..check, trajectory..fisher, reheat, figures).
MAIN_RUN = {
    "env": Stage(("environment.txt",)),
    "train": Stage(trained()),
    "check": Stage((), ("train",)),
    "trajectory": Stage(("analysis/trajectory_pca.json", *figure("trajectory_*")), ("train",)),
    "nulls": Stage(("analysis/nulls.json", *figure("nulls_spectrum")), ("train", "trajectory")),
    "updates": Stage(("analysis/update_alignment.json", *figure("update_alignment")), ("train",)),
    "gradients": Stage(("analysis/gradient_alignment.json", *figure("gradient_alignment")), ("train", "updates")),
    "horizon": Stage(("analysis/gradient_horizon.json",), ("train", "trajectory")),
    "fisher": Stage(("analysis/fisher.json", *figure("fisher")), ("train",)),
    "reheat": Stage(("analysis/reheat.json", "analysis/reheat.csv", *figure("reheat"), *trained("reheat/*")),
                    ("train",)),
    "figures": Stage(("figures/paper/*.pdf", "figures/paper/*.png"), ("train", *ANALYSES)),
}
# The Makefile's own stages, found by the stamp's name: a reheating run of a main run, a beta2 run and the sweep's
# table (in beta2_s<seed>/), a control run and the controls' tables (in ctrl_s<seed>/).
_BY_PATTERN = (
    (re.compile(r"reheat_lr(?P<lr>.+)"), lambda m: Stage(trained(f"reheat/{reheat_run_name(float(m['lr']))}"),
                                                          ("train",))),
    (re.compile(r"b(?P<b>[0-9.eE+-]+?)(?:_p(?P<p>[0-9.]+))?"),
     lambda m: Stage(trained(beta2_run_name(float(m["b"]), float(m["p"]) if m["p"] else None)))),
    (re.compile(r"table"), lambda m: Stage(BETA2_TABLES, ("b*",))),
    (re.compile("|".join(CONTROL_RUNS)), lambda m: Stage(trained(m[0]))),
    (re.compile(r"analysis"), lambda m: Stage(CONTROL_TABLES, CONTROL_RUNS)),
)


class StampError(ValueError):
    """A stamp path that names no stage, or a stage that did not leave what it declares; the message says why."""


def stage_of(stamp: Path) -> Stage:
    stamp = Path(stamp)
    if stamp.parent.name != STAGES_DIR or not stamp.name.endswith(SUFFIX):
        raise StampError(f"{stamp} is not a stage stamp (<run>/{STAGES_DIR}/<stage>{SUFFIX})")
    name = stamp.name[:-len(SUFFIX)]
    if name in MAIN_RUN:
        return MAIN_RUN[name]
    for pattern, make in _BY_PATTERN:
        m = pattern.fullmatch(name)
        if m:
            try:
                return make(m)
            except ValueError:
                break
    raise StampError(f"{stamp}: no stage is called {name!r} (python -m drift.run.stages list)")


def run_dir_of(stamp: Path) -> Path:
    return Path(stamp).parent.parent


# --------------------------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------------------------

def fingerprint(path: Path) -> dict:
    """{"size", "xxh3_128"} of the whole file, or {"size", "xxh3_128_ends"} of a file over FULL_DIGEST_MAX bytes."""
    size = path.stat().st_size
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        if size <= FULL_DIGEST_MAX:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
            return {"size": size, "xxh3_128": h.hexdigest()}
        h.update(f.read(END_BYTES))
        f.seek(size - END_BYTES)
        h.update(f.read(END_BYTES))
    return {"size": size, "xxh3_128_ends": h.hexdigest()}


def output_files(stage: Stage, run_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """({relative path: path} of the files the stage's patterns match now, [patterns that match nothing])."""
    found, empty = {}, []
    for pattern in stage.outputs:
        paths = sorted(p for p in run_dir.glob(pattern) if p.is_file())
        if not paths:
            empty.append(pattern)
        found.update((p.relative_to(run_dir).as_posix(), p) for p in paths)
    return found, empty


def _digest_json(obj) -> str:
    return xxhash.xxh3_128_hexdigest(json.dumps(obj, sort_keys=True).encode())


def read_stamp(stamp: Path) -> dict | None:
    """The stamp's record; None when it is absent; {"legacy": text} for a stamp written before output lists."""
    try:
        text = Path(stamp).read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or "outputs" not in record:
        return {"legacy": text}
    return record


def stamp_digest(stamp: Path) -> str | None:
    """What a dependent stage records of an input stage: a digest of its outputs (None: the stage is not done)."""
    record = read_stamp(stamp)
    if record is None:
        return None
    return _digest_json(record["outputs"] if "outputs" in record else record)


def input_stamps(stage: Stage, stamp: Path) -> list[Path]:
    """The stamps of the stage's inputs: the names it lists, and every existing stamp a glob among them matches."""
    names = {n for n in stage.inputs if not any(c in n for c in "*?[")}
    existing = [p.name[:-len(SUFFIX)] for p in stamp.parent.glob(f"*{SUFFIX}")]
    names |= {n for n in existing for g in stage.inputs if fnmatch.fnmatchcase(n, g)}
    names.discard(stamp.name[:-len(SUFFIX)])
    return [stamp.parent / f"{n}{SUFFIX}" for n in sorted(names)]


# --------------------------------------------------------------------------------------------------------------
# Writing and checking a stamp
# --------------------------------------------------------------------------------------------------------------

def write(stamp: Path, seconds: float | None = None) -> dict:
    """Record the stage's outputs as they are now (after the stage succeeded), its inputs' digests and, when the
    caller timed it, the stage's wall time in seconds. StampError when a declared output is absent, or an output of
    the previous stamp is still missing."""
    stamp = Path(stamp)
    stage, run_dir = stage_of(stamp), run_dir_of(stamp)
    files, empty = output_files(stage, run_dir)
    name = stamp.name[:-len(SUFFIX)]
    if empty:
        raise StampError(f"stage '{name}' of {run_dir} finished but left no file matching {', '.join(empty)}; "
                         f"it is not marked done")
    old = read_stamp(stamp)
    lost = sorted(set(old.get("outputs", {})) - set(files)) if old else []
    if lost:
        raise StampError(f"stage '{name}' ran again but {run_dir / lost[0]} (written by it before) is still missing"
                         f"{f' with {len(lost) - 1} more' if len(lost) > 1 else ''}; {_restore_hint(run_dir, lost[0])}"
                         f", or delete {stamp} to accept its outputs as they are now")
    record = {"format": FORMAT, "stage": name, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "outputs": {rel: fingerprint(p) for rel, p in files.items()},
              "inputs": {p.name[:-len(SUFFIX)]: stamp_digest(p) for p in input_stamps(stage, stamp)}}
    if seconds is not None:
        record["seconds"] = round(float(seconds), 1)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(stamp) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def _restore_hint(run_dir: Path, rel: str) -> str:
    holder = (run_dir / rel).parent
    if (holder / "run.json").exists() and any(fnmatch.fnmatchcase(Path(rel).name, p) for p in TRAINED):
        return f"a finished run is not trained again: restore the file or start it over with " \
               f"`python train.py --restart {holder}`"
    return "restore it"


def check(stamp: Path) -> tuple[bool, str | None]:
    """(done, note): whether the stage's stamp agrees with its outputs and inputs, and, when it does not (or a
    legacy stamp was adopted), why in a few words. No stamp: (False, None)."""
    stamp = Path(stamp)
    stage, run_dir = stage_of(stamp), run_dir_of(stamp)
    record = read_stamp(stamp)
    if record is None:
        return False, None
    if "legacy" in record:
        return _adopt(stamp, stage, run_dir)
    for rel, fp in sorted(record["outputs"].items()):
        path = run_dir / rel
        if not path.is_file():
            return False, f"{rel} is missing"
        if fingerprint(path) != fp:
            return False, f"{rel} changed since the stage ran"
    _, empty = output_files(stage, run_dir)
    if empty:  # a stamp from a declaration that listed fewer outputs
        return False, f"no file matches {empty[0]}"
    now = {p.name[:-len(SUFFIX)]: stamp_digest(p) for p in input_stamps(stage, stamp)}
    for name in sorted(set(now) | set(record.get("inputs", {}))):
        then, current = record.get("inputs", {}).get(name), now.get(name)
        if then != current:
            what = "is not done" if current is None else "was done since" if then is None else "was redone since"
            return False, f"its input stage '{name}' {what}"
    return True, None


def _adopt(stamp: Path, stage: Stage, run_dir: Path) -> tuple[bool, str | None]:
    """A stamp from before output lists: rewrite it with the outputs as they are, if every pattern matches a file
    (its inputs first, so this stage records their new-format digests)."""
    _, empty = output_files(stage, run_dir)
    if empty:
        return False, f"no file matches {empty[0]} (a stamp from before output lists)"
    for p in input_stamps(stage, stamp):
        record = read_stamp(p)
        if record is not None and "legacy" in record:
            _adopt(p, stage_of(p), run_dir)
    write(stamp)
    return True, "a stamp from before output lists: its outputs are all present and now recorded"


# --------------------------------------------------------------------------------------------------------------
# CLI (run_seed.sh, the Makefile)
# --------------------------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------------------------------

def _loop_seconds(run_json: Path) -> float | None:
    """A trained run's loop time from run.json's timers (data, compute, eval, checkpoints; start-up excluded, and a
    resumed run's downtime too, which its start and end times would include). None for a run copied from another
    (beta2_sweep.py --reuse): its loop ran, and is counted, in the source's stage."""
    try:
        info = json.loads(run_json.read_text())
        timers = {} if "reused_from" in info else info.get("timers") or {}
    except (OSError, json.JSONDecodeError, AttributeError, TypeError):
        return None
    total = sum(v for v in timers.values() if isinstance(v, (int, float)))
    return total if total > 0 else None


def stage_times(run_dir: Path) -> list[dict]:
    """Each stamp of a run (or set) directory, oldest first: {"stage", "seconds", "source"}. The seconds are the
    wall time run_seed.sh recorded in the stamp. A stage whose outputs hold trained runs (training, reheating, and
    the control and beta2 runs make trains without a recorded time) counts the larger of that and its runs' loop
    time from run.json's timers: the timers survive a resume, while a resumed stage's stamp holds only its last
    attempt. None: a stamp written before stages were timed, of a stage that trains nothing."""
    rows = []
    for p in sorted(Path(run_dir, STAGES_DIR).glob(f"*{SUFFIX}")):
        record = read_stamp(p)
        if not record or "legacy" in record:
            continue
        name, seconds = p.name[:-len(SUFFIX)], record.get("seconds")
        source = "stamp" if seconds is not None else "not timed"
        runs = [rel for rel in record.get("outputs", {}) if Path(rel).name == "run.json"]
        loops = [t for t in (_loop_seconds(Path(run_dir, rel)) for rel in runs) if t is not None]
        if loops and (seconds is None or sum(loops) > seconds):
            seconds, source = sum(loops), "run.json timers"
        rows.append({"stage": name, "seconds": seconds, "source": source, "written": record.get("written", "")})
    return sorted(rows, key=lambda r: r["written"])


def times_text(run_dirs) -> str:
    """A plain table of every stage's seconds per directory, with totals (the stages whose time is known)."""
    lines, grand = [], 0.0
    for d in run_dirs:
        rows = stage_times(Path(d))
        known = [r["seconds"] for r in rows if r["seconds"] is not None]
        for r in rows:
            t = "-" if r["seconds"] is None else f"{r['seconds'] / 60:8.1f} min"
            lines.append(f"{str(d):40s} {r['stage']:16s} {t:>12s}  ({r['source']})")
        missing = len(rows) - len(known)
        lines.append(f"{str(d):40s} {'total':16s} {sum(known) / 60:8.1f} min"
                     + (f"  ({missing} stage(s) not timed)" if missing else ""))
        grand += sum(known)
    if len(run_dirs) > 1:
        lines.append(f"{'all':40s} {'total':16s} {grand / 60:8.1f} min")
    return "\n".join(lines)


def _list() -> str:
    lines = [f"{name:10s} outputs: {', '.join(s.outputs) or '-'}; inputs: {', '.join(s.inputs) or '-'}"
             for name, s in MAIN_RUN.items()]
    lines += ["reheat_lr<lr>  reheat/lr<lr>/ (a trained run); inputs: train",
              "b<beta2>[_p<p>]  b<beta2>[_p<p>]/ (a trained run, in beta2_s<seed>/)",
              f"table      outputs: {', '.join(BETA2_TABLES)}; inputs: b*",
              f"{' '.join(CONTROL_RUNS)}  <name>/ (a trained run, in ctrl_s<seed>/)",
              f"analysis   outputs: {', '.join(CONTROL_TABLES)}; inputs: {', '.join(CONTROL_RUNS)}",
              f"a trained run's outputs: {', '.join(TRAINED)}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drift.run.stages", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="exit 0 if every stamp agrees with its outputs and inputs, else 1 (why on stdout)")
    c.add_argument("stamps", nargs="+", type=Path)
    w = sub.add_parser("write", help="record a finished stage's outputs in its stamp")
    w.add_argument("stamp", type=Path)
    w.add_argument("--seconds", type=float, help="the stage's wall time, recorded in the stamp")
    t = sub.add_parser("times", help="each stage's recorded time per run or set directory, with totals")
    t.add_argument("runs", nargs="+", type=Path)
    sub.add_parser("list", help="every stage with its outputs and inputs")
    s = sub.add_parser("slot", help="run a stage's command in a slot (python -m drift.jobs slot) and, when it "
                                    "succeeds, write the stage's stamp with the command's wall time")
    jobs = None
    if (sys.argv[1:] if argv is None else list(argv))[:1] == ["slot"]:
        # drift.jobs reads drift.config (about 10 ms); make runs `check` once per target, so only `slot` pays it
        from drift import jobs
        s.add_argument("--stamp", type=Path, required=True, help="the stage's stamp, <run>/.stages/<stage>.done")
        jobs.add_slot_arguments(s)
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(_list())
            return 0
        if args.command == "write":
            if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds >= 0):
                parser.error(f"--seconds {args.seconds}: must be a finite number >= 0")
            write(args.stamp, args.seconds)
            return 0
        if args.command == "slot":
            def stamp(seconds: float) -> int:  # a StampError here is reported below, in one line, exit 2
                write(args.stamp, seconds)
                return 0
            return jobs.run_in_slot(*jobs.slot_call(args, parser), on_success=stamp)
        if args.command == "times":
            print(times_text(args.runs))
            return 0
        all_done = True
        for stamp in args.stamps:
            done, note = check(stamp)
            all_done &= done
            if note:
                print(f"{stamp}: {note}" + ("" if done else "; the stage runs again"))
        return 0 if all_done else 1
    except (StampError, OSError) as e:
        print(f"drift.run.stages: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
