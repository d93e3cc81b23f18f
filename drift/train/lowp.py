"""bf16 compute with float32 master weights, cast once per step (`amp=bf16_shadow`).

Autocast casts every weight at every op of every micro-batch and keeps many small elementwise kernels in float32;
at the cpu preset's widths those casts cost about what the bf16 matmuls save. The shadow instead holds a bfloat16
copy of the whole model: `pull()` refreshes it from the float32 master once per step, forward and backward run
entirely in bf16, and `push_grads()` adds each micro-batch's bf16 gradients into float32 master gradients (so the
accumulation over micro-batches, the clipping, the optimizer state and every checkpoint stay float32). The loss is
computed on float32 logits by the caller.

Whether any of this pays depends on the CPU: with AVX512-BF16 (or AMX) a bf16 matmul runs several times faster
than float32; without it oneDNN emulates bf16 and it runs many times slower. `bf16_matmul_speedup()` measures that
ratio directly, since CPU flags are not visible the same way on every OS.

    shadow = BF16Shadow(model)
    shadow.pull()
    for x, y in micro_batches:
        loss_fn(shadow.module(x).float(), y).backward()
        shadow.push_grads()
    optimizer.step()              # on the float32 master
"""
from __future__ import annotations

import copy
import time

import torch


class BF16Shadow:
    def __init__(self, master: torch.nn.Module, compile: bool = False):
        self.master = master
        # deepcopy keeps the tied head/embedding as one tensor in the copy too
        self.module = copy.deepcopy(master).to(torch.bfloat16)
        self._pairs = list(zip(self.module.parameters(), master.parameters()))
        if len(self._pairs) != len(list(master.parameters())):
            raise RuntimeError("BF16Shadow: the copy's parameters do not match the master's one to one")
        self._forward = torch.compile(self.module) if compile else self.module

    def __call__(self, *args, **kwargs):
        """Forward through the bf16 copy (call pull() first in each step)."""
        return self._forward(*args, **kwargs)

    @torch.no_grad()
    def pull(self) -> None:
        """Master float32 weights -> the bf16 copy (once per optimizer step)."""
        for low, high in self._pairs:
            low.copy_(high)

    @torch.no_grad()
    def push_grads(self) -> None:
        """Add the bf16 copy's gradients into the master's float32 .grad and clear them (after every backward)."""
        for low, high in self._pairs:
            if low.grad is None:
                continue
            if high.grad is None:
                high.grad = low.grad.to(torch.float32)
            else:
                high.grad.add_(low.grad)
            low.grad = None


def bf16_matmul_speedup(n: int = 512, k: int = 512, reps: int = 10, device: str = "cpu") -> float:
    """Time of a float32 (n x k) @ (k x n) matmul over the bf16 one, on this device and thread setting; > 1 means
    bf16 is faster. A fraction of a second."""
    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(n, k, device=device, dtype=dtype)
        b = torch.randn(k, n, device=device, dtype=dtype)
        a @ b  # warm-up: oneDNN picks its kernel on first use
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        times[dtype] = best
    return times[torch.float32] / times[torch.bfloat16]
