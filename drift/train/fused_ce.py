"""Fused, chunked "linear head + composite cross-entropy": the training loss without the full logits tensor.

The trainer's loss is composite_loss(lm_head(hidden), y, probe_mask) from drift/train/trainer.py: the full (b*t, V)
logits (32 x 128 x 2,636 = 43 MB in float32 at the cpu preset), then their log-softmax, then a gradient of the
same size. Here the rows are processed `chunk_rows` at a time: logits of the chunk, softmax, p(target) and,
straight away, the gradient of the final loss w.r.t. the chunk's logits, which is folded into grad_hidden (chunk
rows) and grad_weight (accumulated) before the next chunk. Only those two gradients are kept for backward, which
scales them by the incoming scalar gradient. Same semantics as the reference, to float rounding:

    ce        = per-position cross-entropy of hidden @ weight.T (computed in float32; float64 stays float64)
    lm        = (targets != -100) & ~probe_mask
    loss_lm   = sum(ce[lm]) / max(#lm, 1)
    loss_probe= sum(ce[probe_mask]) / #probe, or 0 when there is no probe position
    loss      = (loss_lm + lam * loss_probe) / grad_accum

Usage (replacing `composite_loss(model(x), y, mask)` and the division by grad_accum):

    from drift.train.fused_ce import fused_composite_loss
    loss, loss_lm, loss_probe = fused_composite_loss(model.hidden(x), model.lm_head.weight, y, mask, lam, grad_accum)
    loss.backward()          # loss_lm and loss_probe are detached, for logging only

Limits: `loss` is differentiable once (no double backward), and only w.r.t. hidden and weight; lam and
grad_accum are plain numbers. The benchmark is bench/fused_ce_bench.py.
"""
from __future__ import annotations

import torch

IGNORE_INDEX = -100
# Rows per chunk, from bench/fused_ce_bench.py at the cpu preset (4,096 rows, d 128, V 2,636; a 256-row float32 chunk of
# logits is 2.7 MB, so softmax and the two gradient matmuls reread it from cache). On 2 threads the fastest calls,
# the closest to an idle machine, took 0.73-0.75 of the reference at 128-256 rows, 0.78-0.82 at 512, 0.82-0.87 at
# 1,024, 0.88-0.90 at 2,048+; on 1 thread 128-256 were best too (0.74-0.80). Every chunk is a few more parallel ops,
# and on a machine shared with other jobs each can wait for a descheduled thread: there the median ratio at 256 rose
# to 1.3-2.2 while 1,024-2,048 stayed at 1.0-1.3, so pass a larger chunk_rows (or run with OMP_WAIT_POLICY=PASSIVE,
# which halved that penalty) when the cores are not the run's own. Each chunk also rereads and rewrites the whole
# (V, d) grad_weight: at GPT-2's vocabulary (V 50,257, d 512, 1,024 rows) 256-row chunks took 1.1x the reference
# and one 1,024-row chunk 0.97x, so a large vocabulary wants chunks of 1,024 rows or more.
DEFAULT_CHUNK_ROWS = 256


def _compute_dtype(hidden: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """float64 when the inputs are float64 (gradcheck); otherwise float32, whatever autocast or bf16 inputs say."""
    promoted = torch.promote_types(hidden.dtype, weight.dtype)
    return torch.float64 if promoted == torch.float64 else torch.float32


def _row_weights(targets: torch.Tensor, probe: torch.Tensor, lam: float, grad_accum: int, dtype: torch.dtype):
    """d loss / d ce per row, plus the two counts. Counts stay on the device (no host sync): clamping #probe to 1
    is harmless since with no probe position no row uses it."""
    valid = targets != IGNORE_INDEX
    lm = valid & ~probe
    n_lm = lm.sum().clamp(min=1)
    n_probe = probe.sum().clamp(min=1)
    # ignored rows get 0 even when probe-masked: their ce is 0 in the reference (ignore_index) yet they count in #probe
    w = lm.to(dtype) / (grad_accum * n_lm) + (probe & valid).to(dtype) * (lam / (grad_accum * n_probe))
    return w, lm, n_lm, n_probe


def _chunk_pass(h, w, hr, tgt, p_t, grad_h, grad_w, chunk_rows):
    """Fill p_t (rows, 1) with p(target) and, when given, grad_h (rows, d) before its row weights and grad_w
    (accumulated), one chunk of rows at a time.

    d loss / d logits = rw * (softmax - onehot(target)); the row weight rw is applied on the narrow (rows, d) side
    (hr = rw * h here, grad_h by the caller) so the (chunk, V) buffers see no extra pass. softmax - onehot is formed
    elementwise before the matmuls, as the reference's log-softmax backward does, so a confident row (p_t near 1)
    keeps its precision. Softmax rather than log-softmax + exp: one exp per logit instead of two, and one parallel
    op less per chunk (on a busy CPU each can wait for a descheduled thread); ce = -log p_t is exact unless p_t
    underflows, which the caller checks. Two preallocated (chunk, V) buffers: logits, and softmax turned into the
    gradient in place."""
    rows, vocab = h.shape[0], w.shape[0]
    chunk_rows = max(1, min(chunk_rows, rows))  # no buffer larger than the rows; an empty batch loops 0 times
    logits_buf, grad_buf = h.new_empty(chunk_rows, vocab), h.new_empty(chunk_rows, vocab)
    minus_one = h.new_full((chunk_rows, 1), -1.0)
    for s in range(0, rows, chunk_rows):
        e = min(s + chunk_rows, rows)
        n, t = e - s, tgt[s:e, None]
        logits = torch.mm(h[s:e], w.t(), out=logits_buf[:n])
        g = torch.softmax(logits, dim=1, out=grad_buf[:n])
        torch.gather(g, 1, t, out=p_t[s:e])
        if grad_h is None and grad_w is None:
            continue
        g.scatter_add_(1, t, minus_one[:n])
        if grad_h is not None:
            torch.mm(g, w, out=grad_h[s:e])
        if grad_w is not None:
            grad_w.addmm_(g.t(), hr[s:e])


def _cross_entropy(h, w, tgt, p_t, scored, chunk_rows):
    """Per-row ce = -log p_t, with the rows whose p_t is below the smallest normal number (ce > 87 in float32: a
    diverging run) recomputed as logsumexp - target logit, chunked like the main pass. Checking for them costs one
    host sync per call (the reference syncs too, on probe_mask.any())."""
    ce = p_t.squeeze(1).log().neg_()
    rows = ((p_t.squeeze(1) < torch.finfo(p_t.dtype).tiny) & scored).nonzero().squeeze(1)
    for s in range(0, rows.numel(), chunk_rows):
        r = rows[s:s + chunk_rows]
        ce[r] = -torch.log_softmax(h[r] @ w.t(), dim=1).gather(1, tgt[r, None]).squeeze(1)
    return ce


def _forward(hidden, weight, targets, probe_mask, lam, grad_accum, chunk_rows, want_h, want_w):
    """(loss, loss_lm, loss_probe, grad_h or None, grad_w or None), grads of loss in the compute dtype."""
    dtype = _compute_dtype(hidden, weight)
    h = hidden.reshape(-1, hidden.shape[-1]).to(dtype)
    w = weight.to(dtype)
    y = targets.reshape(-1)
    probe = probe_mask.reshape(-1).to(torch.bool)
    rw, lm, n_lm, n_probe = _row_weights(y, probe, lam, grad_accum, dtype)
    ignored = y == IGNORE_INDEX
    tgt = y.masked_fill(ignored, 0)  # any column: rw = 0 on these rows and their ce is zeroed below
    p_t = h.new_empty(h.shape[0], 1)
    grad_h = torch.empty_like(h) if want_h else None
    grad_w = torch.zeros_like(w) if want_w else None
    _chunk_pass(h, w, h * rw[:, None] if want_w else None, tgt, p_t, grad_h, grad_w, chunk_rows)
    if want_h:
        grad_h = grad_h.mul_(rw[:, None]).view(hidden.shape)
    ce = _cross_entropy(h, w, tgt, p_t, ~ignored, chunk_rows).masked_fill_(ignored, 0.0)
    loss_lm = (ce * lm).sum() / n_lm
    loss_probe = (ce * probe).sum() / n_probe
    return (loss_lm + lam * loss_probe) / grad_accum, loss_lm, loss_probe, grad_h, grad_w


class _FusedCompositeCE(torch.autograd.Function):
    """The loss and, already in forward, its gradients; backward only scales them by the incoming gradient."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, probe_mask, lam, grad_accum, chunk_rows, with_grad):
        want_h, want_w = (with_grad and need for need in ctx.needs_input_grad[:2])
        # autocast would run the matmuls in bf16; the loss is computed in float32 like the reference's .float()
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            loss, loss_lm, loss_probe, grad_h, grad_w = _forward(hidden, weight, targets, probe_mask, lam,
                                                                 grad_accum, chunk_rows, want_h, want_w)
        ctx.save_for_backward(grad_h, grad_w)
        ctx.in_dtypes = (hidden.dtype, weight.dtype)
        ctx.mark_non_differentiable(loss_lm, loss_probe)
        return loss, loss_lm, loss_probe

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss, _grad_lm, _grad_probe):
        grad_h, grad_w = ctx.saved_tensors
        h_dtype, w_dtype = ctx.in_dtypes
        gh = (grad_h * grad_loss).to(h_dtype) if grad_h is not None else None
        gw = (grad_w * grad_loss).to(w_dtype) if grad_w is not None else None
        return gh, gw, None, None, None, None, None, None


def fused_composite_loss(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         probe_mask: torch.Tensor, lam: float, grad_accum: int = 1,
                         chunk_rows: int = DEFAULT_CHUNK_ROWS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, loss_lm, loss_probe) of the head `hidden @ weight.T` without materialising the full logits.

    hidden (b, t, d); weight (V, d), the (tied) head weight; targets (b, t) int64 with -100 = ignored; probe_mask
    (b, t) bool. loss = (loss_lm + lam * loss_probe) / grad_accum is differentiable w.r.t. hidden and weight;
    loss_lm and loss_probe are detached. The gradients are computed in this call, so it costs a backward even if
    none follows, except under torch.no_grad() or when neither input requires grad."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows}: must be >= 1")
    if targets.shape != hidden.shape[:-1] or probe_mask.shape != targets.shape:
        raise ValueError(f"shapes disagree: hidden {tuple(hidden.shape)}, targets {tuple(targets.shape)}, "
                         f"probe_mask {tuple(probe_mask.shape)}")
    if weight.shape[-1] != hidden.shape[-1]:
        raise ValueError(f"weight {tuple(weight.shape)} does not match hidden width {hidden.shape[-1]}")
    loss, loss_lm, loss_probe = _FusedCompositeCE.apply(hidden, weight, targets, probe_mask, float(lam),
                                                        int(grad_accum), int(chunk_rows), torch.is_grad_enabled())
    return loss, loss_lm.detach(), loss_probe.detach()
