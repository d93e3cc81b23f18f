"""Training throughput on a preset: tokens/s, ms/step, and the share of wall time spent outside the
forward/backward/optimizer step (data, evaluation, checkpointing).

    python -m bench.train_throughput                     # cpu preset, 200 steps
    python -m bench.train_throughput --preset tiny --steps 30
    python -m bench.train_throughput --preset paper --steps 100 compile=true   # on a GPU

It trains a throw-away run (same code path as train.py) into a temp directory and reads the trainer's timers.
"""
import argparse
import sys
import tempfile
import time

from drift import cli
from drift.config import resolve
from drift.train.trainer import train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_config_args(parser)
    parser.add_argument("--steps", type=int, default=200, help="steps to time (default 200)")
    args = cli.parse(parser, argv)
    cfg = resolve(args.preset, args.seed, args.overrides)
    cfg.train.total_steps = args.steps
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        info = train(cfg, f"{tmp}/bench", progress=False, argv=[])
        wall = time.perf_counter() - t0
    timers, t = info["timers"], cfg.train
    tokens = args.steps * t.micro_batch * t.grad_accum * cfg.model.seq_len
    outside = wall - timers["compute"]
    print(f"preset={args.preset} device={info['device']} params={info['n_params']:,} steps={args.steps}")
    print(f"wall {wall:.1f} s (includes data setup); loop: compute {timers['compute']:.1f} s, "
          f"data {timers['data']:.2f} s, eval {timers['eval']:.2f} s, ckpt {timers['ckpt']:.2f} s")
    loop = timers["compute"] + timers["data"] + timers["eval"] + timers["ckpt"]
    print(f"tokens/s (compute only) {tokens / timers['compute']:,.0f}   tokens/s (loop) {tokens / loop:,.0f}")
    print(f"ms/step (compute) {1000 * timers['compute'] / args.steps:.1f}   ms/step (loop) {1000 * loop / args.steps:.1f}")
    print(f"outside fwd/bwd/opt within the loop: {100 * (loop - timers['compute']) / loop:.1f}%  "
          f"(target < 10%)   including one-off setup: {100 * outside / wall:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
