"""Training-speed levers side by side: each lever trains the same short run (same code path as train.py) in
interleaved rounds, and the table gives the median compute+data tokens/s and its ratio to the float32 eager loop.

    python -m bench.train_levers                       # cpu preset, 30 steps x 3 rounds per lever
    python -m bench.train_levers --steps 60 --rounds 5
    python -m bench.train_levers --levers fp32 compile threads1

Levers (config overrides on the preset):
    fp32         amp=off compile=false      the baseline: float32 eager
    autocast     amp=bf16                   torch.autocast bf16 (per-op weight casts)
    shadow       amp=bf16_shadow            bf16 weight copy made once per step, float32 master (drift/train/lowp.py)
    compile      compile=true               torch.compile (inductor's C++ backend on CPU); warm-up shown apart
    threads1     threads=1                  one thread instead of the preset's

The bf16 levers are skipped (and the reason printed) when a bf16 matmul is not faster than float32 on this CPU,
as when it lacks AVX512-BF16/AMX and oneDNN emulates bf16; --all runs them anyway.
"""
import argparse
import statistics
import sys
import tempfile
import time

import torch

from drift.config import add_config_args, resolve
from drift.train.lowp import bf16_matmul_speedup
from drift.train.trainer import train

LEVERS = {
    "fp32": ["amp=off", "compile=false"],
    "autocast": ["amp=bf16", "compile=false"],
    "shadow": ["amp=bf16_shadow", "compile=false"],
    "compile": ["amp=off", "compile=true"],
    "threads1": ["amp=off", "compile=false", "threads=1"],
}
BF16_LEVERS = ("autocast", "shadow")


def time_lever(preset, seed, overrides, steps) -> dict:
    cfg = resolve(preset, seed, overrides + [f"total_steps={steps}", f"eval_every={steps}", f"ckpt_every={steps}"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        info = train(cfg, f"{tmp}/bench", progress=False, argv=[])
        wall = time.perf_counter() - t0
    t, timers = cfg.train, info["timers"]
    tokens = steps * t.micro_batch * t.grad_accum * cfg.model.seq_len
    return {"tok_s": tokens / (timers["compute"] + timers["data"]), "wall": wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--steps", type=int, default=30, help="steps per timed run (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (>= 3)")
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--all", action="store_true", help="run the bf16 levers even when bf16 is emulated here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 2:
        parser.error("--rounds must be >= 1 and --steps >= 2")
    levers = ["fp32"] + [k for k in args.levers if k != "fp32"]
    base_cfg = resolve(args.preset, args.seed, args.overrides)
    torch.set_num_threads(base_cfg.train.threads or torch.get_num_threads())
    speedup = bf16_matmul_speedup()
    print(f"preset={args.preset} threads={torch.get_num_threads()} bf16/fp32 matmul speed ratio {speedup:.2f} "
          f"(torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()})")
    if speedup < 1.0 and not args.all:
        skipped = [k for k in levers if k in BF16_LEVERS]
        levers = [k for k in levers if k not in BF16_LEVERS]
        if skipped:
            print(f"skipping {', '.join(skipped)}: bf16 matmuls run {1 / speedup:.0f}x slower than float32 on this "
                  f"CPU (no native bf16); --all runs them anyway")
    results = {k: [] for k in levers}
    for r in range(args.rounds):
        for k in levers:
            res = time_lever(args.preset, args.seed, args.overrides + LEVERS[k], args.steps)
            results[k].append(res)
            print(f"  round {r + 1}/{args.rounds} {k:9s} {res['tok_s']:9,.0f} tok/s  (run wall {res['wall']:.1f} s)",
                  flush=True)
    base = statistics.median(x["tok_s"] for x in results["fp32"])
    print(f"\n{'lever':10s} {'tokens/s':>10s} {'ratio vs fp32 eager':>20s}   (median of {args.rounds} rounds, "
          f"{args.steps} steps each, compute + data)")
    for k in levers:
        med = statistics.median(x["tok_s"] for x in results[k])
        print(f"{k:10s} {med:10,.0f} {med / base:20.2f}")
    if "compile" in results:
        walls = [x["wall"] for x in results["compile"]]
        print(f"compile: run wall {walls[0]:.1f} s in round 1 vs {statistics.median(walls[1:] or walls):.1f} s later "
              f"(the difference is the one-off compile warm-up per process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
