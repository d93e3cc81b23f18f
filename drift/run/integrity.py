"""Check a run's checkpoints against the digests stored at save (drift/run/digests.py) and against the run they lie
in (their step and run_id, drift/run/checkpoint.py), or store digests in checkpoints written before they existed; a
damaged run gets the train.py command that retrains it, a file of another run or step is named with what to do.

    python -m drift.run.integrity runs/cpu_s42            # check every checkpoint; exit 1 if one is damaged or foreign
    python -m drift.run.integrity runs/old_run --add      # store digests in checkpoints that have none
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import NamedTuple

from drift import cli
from drift.run import checkpoint as ck
from drift.run.digests import FIELD, first_mismatch, state_digests, stored


def _retrain_hint(run_dir: Path) -> str:
    """The train.py command recorded in run.json, pointed at a fresh directory (training is deterministic)."""
    try:
        argv = ck.read_json(run_dir / "run.json").get("argv")
        argv = [str(a) for a in argv] if isinstance(argv, list) else []
    except ck.RunError:
        argv = []
    generic = (f"retrain the run into a new directory with the command recorded in {run_dir / 'run.json'} "
               f"(\"argv\"), then replace the damaged files")
    if not argv or not str(argv[0]).endswith("train.py") or "--resume" in argv:
        return generic
    out = f"{str(run_dir).rstrip('/')}_retrained"
    argv = ["python", "train.py"] + argv[1:]
    if "--out" in argv[:-1]:
        argv[argv.index("--out") + 1] = out
    else:
        argv += ["--out", out]
    return "retrain it (deterministic on CPU), then replace the damaged files: " + shlex.join(argv)


class Checked(NamedTuple):
    """Checkpoint file names of a run by outcome; `foreign` holds (name, why): a file of another run or step."""
    ok: list[str]
    corrupt: list[str]
    unverified: list[str]
    foreign: list[tuple[str, str]]


def check_run(run_dir, add: bool = False) -> Checked:
    """Every checkpoint of a run: its provenance (its step and run, drift/run/checkpoint.py) and its digests; with
    add=True unverified files of this run get digests (a foreign file is never blessed)."""
    out = Checked([], [], [], [])
    for step in ck.list_steps(run_dir):
        path = ck.ckpt_path(run_dir, step)
        try:
            ckpt = ck.load_checkpoint_file(path, step, verify=False)
        except ck.ForeignCheckpointError as e:
            out.foreign.append((path.name, str(e)))
            continue
        except ck.RunError:
            out.corrupt.append(path.name)
            continue
        found = stored(ckpt)
        if found is None:
            out.unverified.append(path.name)
            if add:
                ckpt[FIELD] = state_digests(ckpt["model"])
                ck.atomic_torch_save(ckpt, path)
        elif first_mismatch(ckpt["model"], found[1], algo=found[0]) is None:
            out.ok.append(path.name)
        else:
            out.corrupt.append(path.name)
    return out


def main(argv=None) -> int:
    p = cli.parser("python -m drift.run.integrity", __doc__)
    p.add_argument("run_dir", type=cli.path("a run directory"), help="run directory holding ckpt_*.pt")
    p.add_argument("--add", action="store_true", help="store digests in checkpoints that have none (trusting "
                   "their current contents)")
    args = cli.parse(p, argv)
    args.run_dir = Path(args.run_dir)
    try:
        ok, corrupt, unverified, foreign = check_run(args.run_dir, add=args.add)
    except ck.RunError as e:
        print(f"integrity: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.run_dir}: {len(ok)} verified, {len(corrupt)} corrupt, {len(foreign)} of another run or step, "
          f"{len(unverified)} without digests" + (" (digests added)" if args.add and unverified else ""))
    for name in corrupt:
        print(f"corrupt: {args.run_dir / name}")
    for _, why in foreign:
        print(f"not this run's: {why}")
    if unverified and not args.add:
        print(f"without digests: {', '.join(unverified)}; add them with: python -m drift.run.integrity "
              f"{args.run_dir} --add")
    if corrupt:
        print(_retrain_hint(args.run_dir))
    return 1 if corrupt or foreign else 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m drift.run.integrity"))
