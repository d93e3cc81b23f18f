"""Train one run: the paper's GPT on TinyStories (or the embedded offline corpus) with the key-retrieval probe.

Examples:
    python train.py --preset tiny --seed 1 --out runs/tiny_s1          # seconds, offline
    python train.py --preset cpu --seed 42 --out runs/cpu_s42          # minutes on 2 cores, offline
    python train.py --preset paper --seed 42 --out runs/paper_s42      # the paper's run (GPU, TinyStories, GPT-2 BPE)
    python train.py --resume runs/cpu_s42                              # continue a run that was killed
    python train.py --restart runs/cpu_s42                             # start it over from step 0 (same config;
                                                                       # deletes its checkpoints and analyses)
    python train.py --preset cpu --out runs/reheat lr=6e-4 --init-from runs/cpu_s42/ckpt_001000.pt
    torchrun --standalone --nproc_per_node=2 train.py --preset paper --seed 42 --out runs/paper_s42   # 2 GPUs

Writes run.json, metrics.jsonl (one line per eval), codewords.json and ckpt_XXXXXX.pt into the run directory.
"""
import os
import signal
import sys
from pathlib import Path

from drift import cli
from drift.train import distributed as dist
from drift.run.checkpoint import RunError, read_json, run_config
from drift.run.kinds import run_kind
from drift.config import Config, ConfigError, resolve
from drift.train.lifecycle import DERIVED_OUTPUTS, RUN_FILES
from drift.train.trainer import DivergedError, train


def saved_preset(info: dict) -> str | None:
    """The preset a run was made with: run.json's "preset", else read from the argv train.py recorded."""
    if info.get("preset"):
        return info["preset"]
    argv = info.get("argv") or []
    if argv and Path(str(argv[0])).name == "train.py":
        return argv[argv.index("--preset") + 1] if "--preset" in argv[:-1] else "cpu"
    return None


def continued_config(args) -> tuple[Config, str]:
    """Config and directory of --resume / --restart RUN_DIR, refusing options that disagree with the run."""
    flag, run_dir = ("--resume", args.resume) if args.resume else ("--restart", args.restart)
    if args.overrides or args.init_from:
        raise ConfigError(f"{flag} takes the config from the run's run.json; drop the overrides and --init-from")
    info = read_json(f"{run_dir}/run.json", "run file", f"nothing to continue; start the run without {flag}")
    cfg = run_config(info, f"{run_dir}/run.json")
    if args.seed is not None and args.seed != cfg.train.seed:
        raise ConfigError(f"{flag} {run_dir}: --seed {args.seed} disagrees with the run's seed "
                          f"{cfg.train.seed}; drop --seed (the run keeps its own)")
    if args.preset is not None and args.preset != saved_preset(info):
        known = saved_preset(info)
        raise ConfigError(f"{flag} {run_dir}: --preset {args.preset} disagrees with the run's preset "
                          f"{known or '(not recorded)'}; drop --preset (the run keeps its own)")
    if args.out is not None and os.path.realpath(args.out) != os.path.realpath(run_dir):
        raise ConfigError(f"{flag} {run_dir} writes into {run_dir}, not --out {args.out}; drop --out")
    return cfg, run_dir


def _stop_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds: the run lock is released and run.json says "interrupted"


PROG = "train.py"


def after_interrupt(out) -> str:
    """What an interrupted run directory allows next (the trainer has marked its run.json "interrupted")."""
    d = Path(out) if out else None
    if d is not None and (d / "resume.pt").exists():
        return f"{d}/run.json says interrupted; continue with `python train.py --resume {d}`"
    if d is not None and (d / "run.json").exists():
        return f"it stopped before its first resume point; start it over with `python train.py --restart {d}`"
    return "nothing was written"


def main(argv=None) -> int:
    parser = cli.parser(PROG, __doc__)
    cli.add_config_args(parser, default_preset=None)
    parser.add_argument("--out", type=cli.path("a run directory"),
                        help="run directory to create (default: runs/<preset>_s<seed>)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", metavar="RUN_DIR", type=cli.path("a run directory"),
                       help="continue the run in RUN_DIR from its last checkpoint")
    group.add_argument("--restart", metavar="RUN_DIR", type=cli.path("a run directory"),
                       help="start the run in RUN_DIR over from step 0 with its run.json config; first deletes "
                            f"its checkpoints, {', '.join(RUN_FILES)} and everything made from them, now stale: "
                            f"{', '.join(DERIVED_OUTPUTS)} (the analyses "
                            "with the Gram cache, figures, reheating runs, stage stamps, environment snapshot)")
    parser.add_argument("--init-from", metavar="CKPT", type=cli.path("a checkpoint file"),
                        help="start from these weights with a fresh optimizer")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = cli.parse(parser, argv)
    if argv is None:
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    out = args.resume or args.restart or args.out
    try:
        kind = "main"
        if args.resume or args.restart:
            cfg, out = continued_config(args)
            saved = read_json(f"{out}/run.json")
            preset, kind = saved_preset(saved), run_kind(out, saved)  # a restarted control run stays one
        else:
            preset = args.preset or "cpu"
            cfg = resolve(preset, args.seed, args.overrides)
            out = args.out or f"runs/{preset}_s{cfg.train.seed}"
        info = train(cfg, out, resume=bool(args.resume), restart=bool(args.restart), init_from=args.init_from,
                     argv=sys.argv if argv is None else argv, progress=not args.no_progress, preset=preset,
                     kind=kind)
    except KeyboardInterrupt:  # the trainer has marked run.json "interrupted" (when it was written)
        return cli.interrupted(PROG, after_interrupt(out))
    except (ConfigError, RunError, DivergedError, RuntimeError, ValueError, OSError) as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if dist.is_main():
        print(f"{out}: {info['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
