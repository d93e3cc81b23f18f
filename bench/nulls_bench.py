"""Benchmark: every null (N1, N2, N3) x every claim statistic on a cpu-sized trajectory. Target: <= 60 s on 2 cores.

The trajectory has the cpu preset's shape (4 blocks, 51 analysis checkpoints: step 1 and every 20 up to 1000, the
lambda switch at 400) and each scope's true dimension; its Grams are a planted drift plus isotropic noise (the
timing does not depend on the values). With a run directory that has analysis/trajectory_pca.json, its cached
Grams are used instead (no checkpoint is read). Prints the time per null and in total, per draw, and the workers.

    OMP_NUM_THREADS=1 python -m bench.nulls_bench       # 200 draws per null, 2 worker processes
    python -m bench.nulls_bench --draws 50 --workers 1
    python -m bench.nulls_bench --run runs/cpu_s42
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from drift.analysis import backbone
from drift.nulls import trajectory as nulls
from drift.run.checkpoint import RunError
from drift.config import resolve
from drift.run.params import all_scopes
from drift.run.info import RunInfo, load_run, read_analysis


def synthetic_setup(seed: int = 0) -> backbone.Setup:
    """cpu-preset steps and scope dimensions; each scope's updates u_i = 0.5 e + isotropic noise, drawn through
    the exact N1 construction (a walk of 50 explicit 200k-dimensional steps would cost more than the benchmark)."""
    cfg = resolve("cpu", 42)
    steps = [1] + list(range(cfg.train.ckpt_every, cfg.train.total_steps + 1, cfg.train.ckpt_every))
    run = RunInfo(Path("synthetic"), {}, cfg, [0] + steps, [])
    probe = backbone.setup_from_grams(run, steps, {s: np.eye(len(steps)) for s in all_scopes(cfg.model.n_layer)})
    rng = np.random.default_rng(seed)
    n = len(steps) - 1
    grams = {}
    for scope, D in backbone.scope_dims(probe).items():
        noise = nulls.isotropic_cosines(n, D, rng)            # unit isotropic steps, exact cross terms for D
        grams[scope] = nulls.gram_from_updates(noise + 0.25)  # + a common component: <u_i, u_j> += 0.25
    return backbone.setup_from_grams(run, steps, grams)


def run_setup(run_dir) -> tuple[backbone.Setup, int]:
    run = load_run(run_dir)
    traj = read_analysis(run.run_dir, "trajectory_pca", "trajectory_pca_uncentered.py")
    prm = traj["params"]
    su = backbone.prepare(run, prm["ref_step"], traj["inputs"]["steps"], prm["split_step"], prm["stride"],
                          progress=False)
    return su, prm["window"]


def _cpu() -> float:
    """CPU seconds of this process and of its finished child processes (the workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=200, help="draws per null (default 200)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--run", default=None, help="a run directory with trajectory_pca.json (default: synthetic)")
    args = p.parse_args(argv)
    if args.draws < 1 or args.workers < 1:
        p.error("--draws and --workers must be >= 1")
    try:
        su, window = run_setup(args.run) if args.run else (synthetic_setup(), 10)
    except RunError as e:
        print(f"nulls_bench: error: {e}", file=sys.stderr)
        return 2
    n_stats = len(nulls.run_statistics(su, window)[0])
    print(f"trajectory: {'synthetic cpu-sized' if not args.run else args.run}, {len(su.steps)} checkpoints, "
          f"{len(su.trajs)} scopes, {n_stats} statistics + 3 spectra; {args.draws} draws per null, "
          f"{args.workers} worker(s), {os.cpu_count()} cpus visible")
    t0, c0 = time.perf_counter(), _cpu()
    res = nulls.null_statistics(su, args.draws, seed=0, window=window, workers=args.workers, log=print)
    total, cpu = time.perf_counter() - t0, _cpu() - c0
    print(f"all nulls x all statistics: {total:.1f} s wall ({1000 * total / (3 * args.draws):.1f} ms per draw), "
          f"{cpu:.1f} s CPU in this process and its workers  [target <= 60 s for 200 draws on 2 cores; on a "
          f"shared machine, CPU / workers is the better guide]")
    e = res["statistics"]["trunk_pc1_raw"]
    print("trunk raw PC1: observed {:.4f}; ".format(e["observed"]) + ", ".join(
        f"{k} {e[k]['median']:.4f} [{e[k]['lo']:.4f}, {e[k]['hi']:.4f}]" for k in nulls.NULLS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
