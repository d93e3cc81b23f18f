"""Training-speed levers side by side: each lever trains the same short run (same code path as train.py) in its own
process, levers interleaved over rounds, and the table gives per lever the median tokens/s, the ratio to the
baseline, kernel (system) time and minor page faults per step, and the share of this CPU's float32 matmul peak the
whole step reaches.

    python -m bench.train_levers                       # cpu preset, 40 steps x 3 rounds per lever
    python -m bench.train_levers --steps 60 --rounds 5
    python -m bench.train_levers --levers glibc fp32 compile fused_ce

Levers (config overrides on the preset, plus the process environment):
    glibc        amp=off, DRIFT_MALLOC=default   the baseline: float32 eager with glibc's default malloc
    fp32         amp=off                         float32 eager with the tuned allocator (drift/alloc.py; the default)
    compile      compile=true                    torch.compile on top of fp32 (inductor's C++ backend on CPU)
    fused_ce     fused_ce=true                   the chunked head + loss (drift/train/fused_ce.py) on top of fp32
    autocast     amp=bf16                        torch.autocast bf16 (per-op weight casts)
    shadow       amp=bf16_shadow                 bf16 weight copy made once per step, float32 master (drift/train/lowp.py)
    threads1     threads=1                       one thread instead of the preset's

Each timed run has evals at step 1, half-way and at the end, on the preset's eval sets: "loop" tokens/s counts the
whole loop (data, compute, eval, checkpoints) as a real run spends it, and "projected" scales the measured step and
eval times to the preset's full run (its steps and its number of evals). The bf16 levers are skipped (and the reason
printed) when a bf16 matmul is not faster than float32 on this CPU; --all runs them anyway.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

LEVERS = {
    "glibc": (["amp=off", "compile=false"], {"DRIFT_MALLOC": "default"}),
    "fp32": (["amp=off", "compile=false"], {}),
    "compile": (["amp=off", "compile=true"], {}),
    "fused_ce": (["amp=off", "compile=false", "fused_ce=true"], {}),
    "autocast": (["amp=bf16", "compile=false"], {}),
    "shadow": (["amp=bf16_shadow", "compile=false"], {}),
    "threads1": (["amp=off", "compile=false", "threads=1"], {}),
}
BASELINE = "glibc"
BF16_LEVERS = ("autocast", "shadow")


def model_flops_per_token(cfg) -> float:
    """Training FLOPs per token: 6 x the matmul parameters a token passes through (12 d^2 per block and the V x d
    head) plus the attention scores and values, 12 x n_layer x d x seq (the PaLM appendix's count)."""
    m = cfg.model
    matmul_params = m.n_layer * (4 * m.d_model ** 2 + 2 * m.d_model * m.d_ff) + m.vocab_size * m.d_model
    return 6.0 * matmul_params + 12.0 * m.n_layer * m.d_model * m.seq_len


def matmul_peak_gflops(threads: int, n: int = 1024, repeats: int = 20) -> float:
    """Best float32 GF/s of an n x n matmul on this CPU with `threads` threads: the roofline the step is put against."""
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def worker(preset: str, seed, overrides: list[str], steps: int) -> dict:
    """One timed run in this process: timers, kernel time and page faults per step."""
    from drift.config import resolve
    from drift.train.trainer import train
    cfg = resolve(preset, seed, overrides + [f"total_steps={steps}", f"eval_every={steps // 2}",
                                             f"ckpt_every={steps}"])
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        info = train(cfg, f"{tmp}/bench", progress=False, argv=[])
        wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    tm, t = info["timers"], cfg.train
    tokens = steps * t.micro_batch * t.grad_accum * cfg.model.seq_len
    n_evals = len(info["eval_steps"])
    return {"tokens": tokens, "steps": steps, "n_evals": n_evals, "wall": wall,
            "compute_data": tm["compute"] + tm["data"], "eval": tm["eval"], "loop": sum(tm.values()),
            "sys_per_step": (r1.ru_stime - r0.ru_stime) / steps, "faults_per_step": (r1.ru_minflt - r0.ru_minflt) / steps,
            "flops_per_token": model_flops_per_token(cfg), "allocator": info.get("allocator")}


def run_lever(name: str, args) -> dict:
    overrides, env = LEVERS[name]
    cmd = [sys.executable, "-m", "bench.train_levers", "--worker", "--preset", args.preset, "--steps", str(args.steps)]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    out = subprocess.run(cmd + args.overrides + overrides, capture_output=True, text=True,
                         env={**os.environ, **env})
    if out.returncode != 0:
        raise RuntimeError(f"lever {name} failed:\n{out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(levers, results, args, peak: float, full_steps: int, full_evals: int) -> None:
    med = {k: {f: statistics.median(r[f] for r in results[k]) for f in results[k][0] if f != "allocator"}
           for k in levers}
    base = med[BASELINE]
    step_s = lambda m: m["compute_data"] / m["steps"]
    eval_s = lambda m: m["eval"] / m["n_evals"]
    projected = {k: full_steps * step_s(m) + full_evals * eval_s(m) for k, m in med.items()}
    print(f"\n{'lever':9s} {'tok/s':>8s} {'ratio':>6s} {'loop tok/s':>10s} {'ratio':>6s} {'projected run':>13s} "
          f"{'ratio':>6s} {'sys ms/step':>11s} {'faults/step':>11s} {'matmul peak':>11s}")
    for k in levers:
        m = med[k]
        tok = m["tokens"] / m["compute_data"]
        loop = m["tokens"] / m["loop"]
        share = tok * m["flops_per_token"] / (peak * 1e9)
        print(f"{k:9s} {tok:8,.0f} {tok / (base['tokens'] / base['compute_data']):6.2f} {loop:10,.0f} "
              f"{loop / (base['tokens'] / base['loop']):6.2f} {projected[k] / 60:10.1f} min "
              f"{projected[BASELINE] / projected[k]:6.2f} {1000 * m['sys_per_step']:11.1f} "
              f"{m['faults_per_step']:11,.0f} {100 * share:10.1f}%")
    print(f"(median of {args.rounds} rounds of {args.steps} steps; tok/s = compute + data; loop = + evals and "
          f"checkpoints; projected = {full_steps} steps and {full_evals} evals of the preset at the measured rates; "
          f"matmul peak = {peak:.0f} GF/s float32)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from drift import cli
    from drift.config import resolve
    cli.add_config_args(parser)
    parser.add_argument("--steps", type=int, default=40, help="steps per timed run (default 40; even)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--levers", nargs="+", default=["glibc", "fp32", "compile", "fused_ce", "autocast"],
                        choices=list(LEVERS))
    parser.add_argument("--all", action="store_true", help="run the bf16 levers even when bf16 is slower here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = cli.parse(parser, argv)
    if args.rounds < 1 or args.steps < 4 or args.steps % 2:
        parser.error("--rounds must be >= 1 and --steps an even number >= 4")
    if args.worker:
        print(json.dumps(worker(args.preset, args.seed, args.overrides, args.steps)))
        return 0
    import torch
    from drift.train.lowp import bf16_matmul_speedup
    cfg = resolve(args.preset, args.seed, args.overrides)
    known = {f for part in cfg.to_dict().values() for f in part}
    levers = [BASELINE] + [k for k in args.levers if k != BASELINE
                           and all(o.split("=")[0] in known for o in LEVERS[k][0])]
    threads = cfg.train.threads or torch.get_num_threads()
    speedup = bf16_matmul_speedup()
    peak = matmul_peak_gflops(threads)
    print(f"preset={args.preset} threads={threads} torch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; bf16/fp32 matmul speed ratio {speedup:.2f}; float32 matmul "
          f"peak {peak:.0f} GF/s")
    if speedup < 1.0 and not args.all:
        skipped = [k for k in levers if k in BF16_LEVERS]
        levers = [k for k in levers if k not in BF16_LEVERS]
        if skipped:
            print(f"skipping {', '.join(skipped)}: bf16 matmuls run slower than float32 on this CPU; --all runs them")
    results = {k: [] for k in levers}
    for r in range(args.rounds):
        for k in levers:
            res = run_lever(k, args)
            results[k].append(res)
            print(f"  round {r + 1}/{args.rounds} {k:9s} {res['tokens'] / res['compute_data']:9,.0f} tok/s  "
                  f"{1000 * res['sys_per_step']:6.1f} sys ms/step  {res['faults_per_step']:8,.0f} faults/step",
                  flush=True)
    from drift.train.trainer import eval_schedule
    summarize(levers, results, args, peak, cfg.train.total_steps, len(eval_schedule(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
