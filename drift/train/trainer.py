"""The only training loop. train.py, the optimizer controls, the Nesterov run, the beta2 sweep and reheating all
call `train(cfg, run_dir, ...)` with a different config.

Under torchrun each rank computes its share of a step's micro-batches and the gradients are summed over ranks
(drift/train/distributed.py); only rank 0 evaluates and writes to the run directory.

One step: `grad_accum` micro-batches of L = L_LM + lambda * L_probe (each divided by grad_accum), global-norm
clipping, one optimizer step at lr_at(step). Checkpoints at the schedule's steps (step 0 = initialization), evals
appended to metrics.jsonl as they happen, resume state rewritten atomically at every checkpoint. The run directory
around the loop (checks before writing, the lock, run.json, resume.pt) is drift/train/lifecycle.py's.

    from drift.config import resolve
    from drift.train.trainer import train
    train(resolve("tiny", seed=1), "runs/tiny_s1")
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from drift.run import checkpoint as ck
from drift.run.kinds import KINDS
from drift.train import distributed as dist
from drift.train import lifecycle
from drift.config import Config, parse_dense, validate
from drift.data.context import RunContext, build_context, codewords_for
from drift.data.corpus import split_description
from drift.train.fused_ce import fused_composite_loss
from drift.train.lowp import BF16Shadow
from drift.model import GPT
from drift.train.optim import build_optimizer, lambda_at, lr_at, set_lr
from drift.data.probe import probe_accuracy


class DivergedError(RuntimeError):
    """The loss or gradient norm became NaN/inf; the last good checkpoint is kept."""

    def __init__(self, step: int, run_dir):
        self.step = step
        super().__init__(f"loss became non-finite at step {step}; stopped, the last good checkpoint in {run_dir} "
                         f"is kept (lower lr, or raise grad_clip strictness)")


# --------------------------------------------------------------------------------------------------------------
# Schedules: which steps save a checkpoint and which evaluate
# --------------------------------------------------------------------------------------------------------------

def is_ckpt_step(step: int, cfg: Config, dense: list[tuple[int, int, int]] | None = None) -> bool:
    """Whether the schedule saves a checkpoint at `step`, by arithmetic: the loop asks at every step, and a set of
    every scheduled step would grow with total_steps. `dense`: parse_dense(dense_ckpt), parsed once by the caller."""
    t = cfg.train
    if not 0 <= step <= t.total_steps:
        return False
    windows = parse_dense(t.dense_ckpt) if dense is None else dense
    return step in (0, 1, t.total_steps) or step % t.ckpt_every == 0 or \
        any(start <= step <= end and (step - start) % every == 0 for start, end, every in windows)


def is_eval_step(step: int, cfg: Config) -> bool:
    t = cfg.train
    return 1 <= step <= t.total_steps and (step in (1, t.total_steps) or step % t.eval_every == 0)


def ckpt_schedule(cfg: Config) -> list[int]:
    """Every checkpoint step (run.json lists them); as long as the checkpoints, which drift.config bounds."""
    t = cfg.train
    steps = {0, 1, t.total_steps} | set(range(t.ckpt_every, t.total_steps + 1, t.ckpt_every))
    for start, end, every in parse_dense(t.dense_ckpt):
        steps |= set(range(start, min(end, t.total_steps) + 1, every))
    return sorted(s for s in steps if s <= t.total_steps)


def eval_schedule(cfg: Config) -> list[int]:
    t = cfg.train
    return sorted({1, t.total_steps} | set(range(t.eval_every, t.total_steps + 1, t.eval_every)))


# --------------------------------------------------------------------------------------------------------------
# Loss: L = L_LM + lambda * L_probe (the fused version lives in fused_ce.py)
# --------------------------------------------------------------------------------------------------------------

def composite_loss(logits: torch.Tensor, y: torch.Tensor, probe_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_LM over scored non-probe positions, L_probe over the probe mask or 0 when the batch has none)."""
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), reduction="none",
                         ignore_index=-100).view(y.shape)
    lm = (y != -100) & ~probe_mask
    loss_lm = ce[lm].sum() / lm.sum().clamp(min=1)
    loss_probe = ce[probe_mask].sum() / probe_mask.sum() if probe_mask.any() else ce.new_zeros(())
    return loss_lm, loss_probe


# --------------------------------------------------------------------------------------------------------------
# Evaluate: validation loss and probe accuracy, in and out of distribution
# --------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(model: GPT, ctx: RunContext) -> dict:
    was_training = model.training
    model.eval()
    nll, n = 0.0, 0
    for x, y in ctx.val_batches:
        x, y = x.to(ctx.device), y.to(ctx.device)
        with ctx.autocast():
            logits = model(x)
        nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1),
                               ignore_index=-100, reduction="sum").item()
        n += int((y != -100).sum())
    p_in, nll_in = probe_accuracy(model, ctx.eval_in, ctx.device, autocast=ctx.autocast)
    p_ood, nll_ood = probe_accuracy(model, ctx.eval_ood, ctx.device, autocast=ctx.autocast)
    model.train(was_training)
    return {"val_loss": nll / max(1, n), "p_in": p_in, "p_ood": p_ood, "nll_in": nll_in, "nll_ood": nll_ood}


# --------------------------------------------------------------------------------------------------------------
# One step: micro-batches, all-reduce, clipping, optimizer step at lr_at(step)
# --------------------------------------------------------------------------------------------------------------

@dataclass
class LoopState:
    step: int = 0
    best_p_ood: float = 0.0
    sums: dict = field(default_factory=lambda: {"loss": 0.0, "lm": 0.0, "probe": 0.0, "n": 0})
    timers: dict = field(default_factory=lambda: {"data": 0.0, "compute": 0.0, "eval": 0.0, "ckpt": 0.0})


def _train_step(model, fwd, opt, ctx: RunContext, step: int, state: LoopState) -> float:
    t = ctx.cfg.train
    set_lr(opt, lr_at(step, t))
    lam = lambda_at(step, t)
    opt.zero_grad(set_to_none=True)
    # loss, L_LM, L_probe summed over micro-batches on the device; read once per step (one sync, not three per micro)
    sums = torch.zeros(3, device=ctx.device)
    shadow = fwd if isinstance(fwd, BF16Shadow) else None  # amp=bf16_shadow: bf16 copy, float32 master
    if shadow is not None:
        shadow.pull()
    for micro in dist.micro_indices(t.grad_accum):  # all of them with one process
        t0 = time.perf_counter()
        x, y, mask = (z.to(ctx.device, non_blocking=True) for z in ctx.train_batches.get(step, micro))
        t1 = time.perf_counter()
        state.timers["data"] += t1 - t0
        with ctx.autocast():
            if t.fused_ce:  # head and loss in chunks, gradients formed in the forward (drift/train/fused_ce.py)
                loss, loss_lm, loss_probe = fused_composite_loss(model.hidden(x), model.lm_head.weight, y, mask, lam,
                                                                 t.grad_accum)
            else:
                loss_lm, loss_probe = composite_loss(fwd(x), y, mask)
                loss = (loss_lm + lam * loss_probe) / t.grad_accum
        loss.backward()
        if shadow is not None:
            shadow.push_grads()
        sums += torch.stack([loss.detach(), loss_lm.detach() / t.grad_accum, loss_probe.detach() / t.grad_accum])
        state.timers["compute"] += time.perf_counter() - t1
    t2 = time.perf_counter()
    sums = dist.all_reduce_grads(model.parameters(), sums)  # the 1-process sums; a no-op with one process
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
    loss_value, lm_value, probe_value = sums.tolist()
    if not (math.isfinite(loss_value) and math.isfinite(float(grad_norm))):
        raise DivergedError(step, ctx.run_dir)
    opt.step()
    state.timers["compute"] += time.perf_counter() - t2
    state.sums["loss"] += loss_value
    state.sums["lm"] += lm_value
    state.sums["probe"] += probe_value
    state.sums["n"] += 1
    return float(grad_norm)


# --------------------------------------------------------------------------------------------------------------
# Eval and early stop: a metrics record, then the early-stop rule
# --------------------------------------------------------------------------------------------------------------

def _record_eval(model, ctx: RunContext, step: int, state: LoopState, grad_norm: float) -> dict:
    t0 = time.perf_counter()
    rec = {"step": step, **evaluate(model, ctx)}
    n = max(1, state.sums["n"])
    rec.update(train_loss=state.sums["loss"] / n, train_lm=state.sums["lm"] / n, train_probe=state.sums["probe"] / n,
               lr=lr_at(step, ctx.cfg.train), lam=lambda_at(step, ctx.cfg.train), grad_norm=grad_norm)
    state.sums = {"loss": 0.0, "lm": 0.0, "probe": 0.0, "n": 0}
    state.best_p_ood = max(state.best_p_ood, rec["p_ood"])
    state.timers["eval"] += time.perf_counter() - t0
    rec["timers"] = dict(state.timers)
    ck.append_jsonl(ctx.run_dir / "metrics.jsonl", rec)
    return rec


def _early_stop(rec: dict, state: LoopState, cfg: Config) -> str | None:
    t = cfg.train
    if t.early_stop_step and rec["step"] == t.early_stop_step:
        if rec["val_loss"] > t.early_stop_max_val and state.best_p_ood < t.early_stop_min_p_ood:
            return (f"early stop at step {rec['step']}: val_loss {rec['val_loss']:.3f} > {t.early_stop_max_val} and "
                    f"best p_ood {state.best_p_ood:.3f} < {t.early_stop_min_p_ood}")
    return None


def _eval_and_decide(model, ctx: RunContext, step: int, state: LoopState, grad_norm: float, bar) -> str | None:
    rec = _record_eval(model, ctx, step, state, grad_norm)
    bar.set_postfix(val=f"{rec['val_loss']:.3f}", p_in=f"{rec['p_in']:.2f}", p_ood=f"{rec['p_ood']:.2f}")
    return _early_stop(rec, state, ctx.cfg)


# --------------------------------------------------------------------------------------------------------------
# The loop: checkpoints, evals and resume state on schedule; train() runs it in a locked run directory
# --------------------------------------------------------------------------------------------------------------

def _loop(model, fwd, opt, ctx: RunContext, state: LoopState, progress: bool, run_id: str | None) -> str:
    """`run_id`: run.json's, stamped into every checkpoint and resume point (None: a legacy run resumed)."""
    cfg, run_dir = ctx.cfg, ctx.run_dir
    dense = parse_dense(cfg.train.dense_ckpt)
    model.train()
    bar = tqdm(range(state.step + 1, cfg.train.total_steps + 1), initial=state.step, total=cfg.train.total_steps,
               desc=run_dir.name, disable=not (progress and dist.is_main()), dynamic_ncols=True)
    for step in bar:
        try:
            grad_norm = _train_step(model, fwd, opt, ctx, step, state)
        except DivergedError:  # raised on every rank at once: loss and gradient norm are the reduced ones
            lifecycle.mark_diverged(run_dir, step)
            raise
        state.step = step
        stop = None
        is_ckpt = is_ckpt_step(step, cfg, dense)
        if is_ckpt and dist.is_main():
            t0 = time.perf_counter()
            ck.save_checkpoint(run_dir, step, model.state_dict(), cfg.to_dict(), run_id)
            state.timers["ckpt"] += time.perf_counter() - t0
        if is_eval_step(step, cfg):  # rank 0 evaluates and decides; every rank gets the decision
            stop = dist.on_main(_eval_and_decide, model, ctx, step, state, grad_norm, bar)
        if (is_ckpt or stop) and dist.is_main():
            t0 = time.perf_counter()
            lifecycle.save_resume(run_dir, model, opt, state, run_id)
            state.timers["ckpt"] += time.perf_counter() - t0
        if stop:
            if dist.is_main():
                ck.append_jsonl(run_dir / "metrics.jsonl", {"step": step, "early_stop": stop})
                tqdm.write(stop)
            return "early_stopped"
    return "finished"


def train(cfg: Config, run_dir, resume: bool = False, init_from: str | None = None,
          argv: list[str] | None = None, progress: bool = True, restart: bool = False,
          preset: str | None = None, kind: str = "main") -> dict:
    """Train (or resume, or restart from step 0) one run into run_dir; returns the final run.json dict.

    Everything that can be checked is checked before anything is written: the config (ranges, bounds and
    relations), the config against the tokenizer (probe items fit seq_len), --out / --resume, and init_from's
    weights against the model. The run directory is then locked
    for the whole training (drift.run.lock), so a second writer is refused.

    Under torchrun every rank validates the config and builds the context alike; the directory checks, the lock,
    the restart's clearing and every write are rank 0's, and the other ranks follow its decisions (an error there
    is raised on every rank).

    `kind` is what the run is (drift/run/kinds.py: main, controls, beta2, reheat), recorded in a new run's run.json
    with its run_id; a resumed run keeps its record."""
    validate(cfg)
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; choose from {', '.join(KINDS)}")
    run_dir = Path(run_dir)
    dist.micro_indices(cfg.train.grad_accum)  # fail early when there are more ranks than micro-batches
    lifecycle.check_before_writing(cfg, run_dir, resume, restart)
    with dist.main_first():  # rank 0 fills the token cache; the others then read it
        ctx = build_context(cfg)  # no run_dir: writes nothing there
    init_ckpt = init_weights(init_from, ctx.model_cfg) if init_from else None
    with lifecycle.locked_run(cfg, run_dir, resume, restart):
        ctx.run_dir = run_dir
        return _train_locked(cfg, ctx, resume, init_from, init_ckpt, argv, progress, preset, kind)


def init_weights(path, model_cfg) -> dict:
    """--init-from's checkpoint, read (checked like any checkpoint: its step, its run) and checked against the
    model's shapes before anything is written (the model is built on the meta device: no memory, and the random
    state the real initialization draws from is untouched)."""
    start = ck.load_checkpoint_file(path)
    with torch.device("meta"):
        want = {k: tuple(v.shape) for k, v in GPT(model_cfg).state_dict().items()}
    have = {k: tuple(v.shape) for k, v in start["model"].items()}
    if have != want:
        diff = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
        raise ck.RunError(f"--init-from {path} holds another model than this config's ({len(diff)} tensors differ, "
                          f"e.g. {diff[0]}: {have.get(diff[0])} vs {want.get(diff[0])}); start from a checkpoint "
                          f"of a run with the same model fields")
    return start


def _train_locked(cfg: Config, ctx: RunContext, resume: bool, init_from: str | None, init_ckpt: dict | None,
                  argv, progress: bool, preset: str | None, kind: str) -> dict:
    run_dir = ctx.run_dir
    dist.on_main(codewords_for, ctx.tokenizer, cfg, run_dir, ctx.task.codewords)  # rank 0 writes or checks them
    model = GPT(ctx.model_cfg).to(ctx.device)
    extra = {"n_params": model.num_params(), "init_from": init_from, "preset": preset,
             "data_split": split_description(cfg.train.data_source), "world_size": dist.world()}
    if init_ckpt is not None:  # the run it came from is recorded
        model.load_state_dict(init_ckpt["model"])
        extra.update(init_from_run_id=init_ckpt.get(ck.RUN_ID), init_from_step=init_ckpt["step"])
    opt = build_optimizer(model, cfg.train)
    if cfg.train.amp == "bf16_shadow":
        fwd = BF16Shadow(model, compile=cfg.train.compile)
    else:
        fwd = torch.compile(model) if cfg.train.compile else model
    if resume:
        info = lifecycle.read_record(run_dir)  # every rank takes rank 0's record
        if info.get("status") in lifecycle.FINAL:
            return info  # nothing left to do; keep the record of when it really ended
        state = LoopState(**lifecycle.load_resume(run_dir, model, opt, info.get(ck.RUN_ID)))
        lifecycle.mark_resumed(run_dir, info)
    else:
        info = lifecycle.provenance(cfg, argv, ctx.device, extra, ckpt_schedule(cfg), eval_schedule(cfg),
                                    run_id=dist.on_main(ck.new_run_id), kind=kind)
        lifecycle.write_record(run_dir, info)
        state = None
    if dist.is_main():
        print(f"{run_dir}: data split: {info.get('data_split') or split_description(cfg.train.data_source)}",
              file=sys.stderr)
    try:
        if state is None:
            if dist.is_main():
                ck.save_checkpoint(run_dir, 0, model.state_dict(), cfg.to_dict(), info.get(ck.RUN_ID))
            state = LoopState()
        dist.sync_params(model)
        info["status"] = _loop(model, fwd, opt, ctx, state, progress, info.get(ck.RUN_ID))
    except DivergedError:
        raise
    except BaseException as e:  # a failed write, an interrupt: run.json must not keep saying "running"
        if dist.is_main():
            stopped = "interrupted" if isinstance(e, (KeyboardInterrupt, SystemExit)) else "failed"
            lifecycle.mark_stopped(run_dir, stopped, e)
        raise
    info["end_time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    info["timers"] = state.timers
    lifecycle.write_record(run_dir, info)
    dist.barrier()  # every file is written before any rank returns (and before rank 0 releases the lock)
    return info
