"""Train one run: the paper's GPT on TinyStories (or the embedded offline corpus) with the key-retrieval probe.

Examples:
    python train.py --preset tiny --seed 1 --out runs/tiny_s1          # seconds, offline
    python train.py --preset cpu --seed 42 --out runs/cpu_s42          # minutes on 2 cores, offline
    python train.py --preset paper --seed 42 --out runs/paper_s42      # the paper's run (GPU, TinyStories, GPT-2 BPE)
    python train.py --resume runs/cpu_s42                              # continue a run that was killed
    python train.py --preset cpu --out runs/reheat lr=6e-4 --init-from runs/cpu_s42/ckpt_001000.pt
    torchrun --standalone --nproc_per_node=2 train.py --preset paper --seed 42 --out runs/paper_s42   # 2 GPUs

Writes run.json, metrics.jsonl (one line per eval), codewords.json and ckpt_XXXXXX.pt into the run directory.
"""
import argparse
import sys

from drift import distributed as dist
from drift.checkpoint import RunError, read_json
from drift.config import Config, ConfigError, add_config_args, resolve
from drift.trainer import DivergedError, train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--out", help="run directory to create (default: runs/<preset>_s<seed>)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--init-from", metavar="CKPT", help="start from these weights with a fresh optimizer")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.resume:
            if args.overrides or args.init_from:
                raise ConfigError("--resume takes the config from the run's run.json; drop the overrides")
            cfg = Config.from_dict(read_json(f"{args.resume}/run.json", "run file",
                                             "nothing to resume; start the run without --resume")["config"])
            out = args.resume
        else:
            cfg = resolve(args.preset, args.seed, args.overrides)
            out = args.out or f"runs/{args.preset}_s{cfg.train.seed}"
        info = train(cfg, out, resume=bool(args.resume), init_from=args.init_from,
                     argv=sys.argv if argv is None else argv, progress=not args.no_progress)
    except (ConfigError, RunError, DivergedError, RuntimeError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    if dist.is_main():
        print(f"{out}: {info['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
