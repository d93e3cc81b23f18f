"""Benchmark: the fused, chunked head + composite loss (drift/train/fused_ce.py) against the full-logits reference.

Times forward + backward of the training loss from the final hidden states at the cpu preset's shapes (micro-batch
32 x 128 tokens, d_model 128, vocabulary 2,636, torch threads 2):
  ref        logits = hidden @ weight.T, drift.train.trainer.composite_loss (F.cross_entropy), (lm + lam*probe)/accum
  fused:N    drift.train.fused_ce.fused_composite_loss with chunk_rows = N
in interleaved rounds (one call of each per round, the order rotating, so a background load hits every variant
alike) and prints each one's median ms per call, its ratio to the reference (the median over rounds of its time
over the reference's in the same round: robust to a load that comes and goes), the fastest call and the ratio of
fastest calls (on a shared machine the closest to an idle one), and the largest abs and relative difference of the
loss and of the gradients w.r.t. hidden and weight against the reference. Run it from the repository root.

    python -m bench.fused_ce_bench                          # chunks 64 ... 4096, 31 rounds, ~30 s when idle
    python -m bench.fused_ce_bench --chunks 128 256 --rounds 61
    python -m bench.fused_ce_bench --batch 8 --vocab 50257 --d-model 512 --chunks 256 1024 --rounds 5   # GPT-2 vocab
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from drift.train.fused_ce import fused_composite_loss
from drift.train.trainer import composite_loss

LAM, GRAD_ACCUM = 2.0, 2  # the cpu preset's early probe weight and accumulation


def make_inputs(batch: int, seq: int, d: int, vocab: int, seed: int = 0):
    """Hidden states like a LayerNorm output, a head like the N(0, 0.02) init, a fifth of the sequences probes
    (four masked answer positions each) and a few ignored targets, as in a training batch."""
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, seq, d, generator=gen).requires_grad_()
    weight = (0.02 * torch.randn(vocab, d, generator=gen)).requires_grad_()
    targets = torch.randint(0, vocab, (batch, seq), generator=gen)
    targets[:, -3:] = -100
    probe = torch.zeros(batch, seq, dtype=torch.bool)
    probe[: max(1, batch // 5), seq // 2: seq // 2 + 4] = True
    return hidden, weight, targets, probe


def reference(hidden, weight, targets, probe):
    loss_lm, loss_probe = composite_loss(F.linear(hidden, weight), targets, probe)
    return (loss_lm + LAM * loss_probe) / GRAD_ACCUM


def run_once(name: str, inputs) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward + backward; returns (seconds, loss, grad_hidden, grad_weight)."""
    hidden, weight, targets, probe = inputs
    hidden.grad = weight.grad = None
    t0 = time.perf_counter()
    if name == "ref":
        loss = reference(hidden, weight, targets, probe)
    else:
        loss = fused_composite_loss(hidden, weight, targets, probe, LAM, GRAD_ACCUM, chunk_rows=int(name[6:]))[0]
    loss.backward()
    return time.perf_counter() - t0, loss.detach(), hidden.grad, weight.grad


def max_diffs(got, want) -> tuple[float, float]:
    """Largest abs difference, and the largest relative to the reference's largest magnitude."""
    err = (got.double() - want.double()).abs().max().item()
    return err, err / max(want.double().abs().max().item(), 1e-30)


def interleaved_times(names: list[str], inputs, rounds: int, calls: int) -> dict[str, list[float]]:
    """Seconds per call; each round runs every variant, starting one further along the list than the last."""
    times = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            times[n] += [run_once(n, inputs)[0] for _ in range(calls)]
    return times


def report(times: dict[str, list[float]], results: dict) -> None:
    print(f"{'variant':<12}{'ms':>8}{'ratio':>7}{'min ms':>8}{'ratio':>7}   max abs (rel) diff vs ref: loss, "
          "grad_hidden, grad_weight")
    _, *want = results["ref"]
    for n, ts in times.items():
        paired = statistics.median(t / r for t, r in zip(ts, times["ref"]))  # same round, same load
        fastest = min(ts) / min(times["ref"])
        diffs = "  ".join(f"{a:.1e} ({r:.1e})" for a, r in (max_diffs(g, w) for g, w in zip(results[n][1:], want)))
        print(f"{n:<12}{statistics.median(ts) * 1e3:8.2f}{paired:7.3f}{min(ts) * 1e3:8.2f}{fastest:7.3f}   {diffs}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048, 4096],
                        help="chunk_rows values to time")
    parser.add_argument("--rounds", type=int, default=31, help="interleaved rounds (default 31)")
    parser.add_argument("--calls", type=int, default=1, help="timed calls per variant per round (default 1)")
    parser.add_argument("--batch", type=int, default=32, help="micro-batch (default 32)")
    parser.add_argument("--seq", type=int, default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=2636)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the cpu preset)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1 or min(args.chunks) < 1:
        parser.error("--rounds, --calls and every chunk must be >= 1")
    torch.set_num_threads(args.threads)
    inputs = make_inputs(args.batch, args.seq, args.d_model, args.vocab)
    names = ["ref"] + [f"fused:{c}" for c in args.chunks]
    results = {n: run_once(n, inputs) for n in names}  # warm-up, and the values compared below
    times = interleaved_times(names, inputs, args.rounds, args.calls)
    print(f"rows {args.batch}x{args.seq}, d {args.d_model}, V {args.vocab}, threads {args.threads}, "
          f"{args.rounds} rounds x {args.calls} calls; ms = median per forward+backward")
    report(times, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
