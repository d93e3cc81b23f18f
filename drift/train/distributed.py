"""Data parallelism under torchrun: one process per device, each taking its share of a step's micro-batches.

A training micro-batch is a pure function of (seed, step, micro) (drift/data/batches.py), so rank r simply takes the
micro-batches range(r, grad_accum, world) of every step: the global batch and the data order are those of a
1-process run whatever the number of ranks. Each rank backpropagates (L_LM + lambda L_probe) / grad_accum of its
micro-batches, exactly as the 1-process loop does; `all_reduce_grads` then sums the gradients over ranks, which
gives the 1-process gradient (the sum over all micro-batches of the per-micro gradient / grad_accum) with no
further division. We reduce explicitly (one flattened all_reduce per step) instead of wrapping the model in
DistributedDataParallel: the loop already accumulates over micro-batches, so DDP would need no_sync() on all but
the last micro-batch of a rank, and ranks with a different number of micro-batches (grad_accum not a multiple of
the world size) would break DDP's bucketed hook schedule. One reduction per step is what DDP would do anyway.

Only rank 0 writes to the run directory; decisions that depend on files or on evaluation are taken on rank 0 and
broadcast (`on_main`, `broadcast`), so ranks cannot diverge. With WORLD_SIZE unset or 1 nothing here touches
torch.distributed and the loop is the plain 1-process loop.

A rank that dies (killed, out of memory) shows on the others only as gloo's "Connection reset by peer" at the next
collective. Every rank therefore learns each rank's host and pid when the group forms, and a failed collective is
raised as RankLostError naming the rank whose process has ended (or, when that rank ran on another host, the
ranks there).

    torchrun --standalone --nproc_per_node=2 train.py --preset tiny --seed 1 --out runs/tiny_ddp
"""
from __future__ import annotations

import atexit
import contextlib
import datetime
import functools
import os
import re
import socket
import time

import torch
import torch.distributed as dist

from drift.config import ConfigError

# Rank 0 may build the token cache (the paper's corpus: about a minute) or evaluate while the others wait.
TIMEOUT = datetime.timedelta(minutes=60)
_PEERS: list[tuple[str, int]] = []  # (host, pid) of every rank, learnt when the group forms
_BROKEN: list[str] = []  # the collective that failed, if one did


class RankLostError(RuntimeError):
    """A collective failed because another rank's process ended; the message names it."""


def _process_ended(pid: int) -> bool:
    """Whether a process of this host has ended: gone, or a zombie its launcher has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass
        return False


def lost_ranks_message(op: str, error: BaseException, me: int, peers: list[tuple[str, int]]) -> str:
    """One line for a collective that failed: the ranks whose process ended, else the ranks on other hosts."""
    host = socket.gethostname()
    local = [r for r, (h, _) in enumerate(peers) if r != me and h == host]
    deadline = time.monotonic() + (2.0 if local else 0.0)  # a dying process closes its sockets before it ends
    while True:
        ended = [r for r in local if _process_ended(peers[r][1])]
        if ended or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    remote = [r for r, (h, _) in enumerate(peers) if h != host]
    # gloo: "[.../pair.cc:553] Connection closed by peer [127.0.0.1]:9615. This is typically caused by ..."
    cause = re.sub(r"^\[[^\]]*\]\s*", "", " ".join(str(error).split())).split(". ")[0][:120]
    if ended:
        who = ", ".join(f"rank {r} (pid {peers[r][1]})" for r in ended)
        return (f"{who} of {len(peers)} ended during the {op}, so rank {me} stops too (gloo: {cause}); look for why in "
                f"that rank's output (killed? out of memory?)")
    where = f"; ranks {remote} run on other hosts: look there" if remote else ""
    return f"rank {me} lost contact with the other ranks during the {op} (gloo: {cause}){where}"


def _collective(op: str):
    """Raise a failed collective as RankLostError naming the lost rank (gloo only says "Connection reset")."""
    def wrap(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except RankLostError:
                raise
            except RuntimeError as e:  # torch.distributed.DistBackendError and gloo's errors are RuntimeErrors
                if not dist.is_initialized():
                    raise
                _BROKEN.append(op)  # the group cannot be torn down in order any more
                raise RankLostError(lost_ranks_message(op, e, dist.get_rank(), _PEERS)) from None
        return call
    return wrap


def _env_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup() -> None:
    """Join the process group once when launched by torchrun with more than one process: gloo for CPU tensors and
    objects, NCCL for CUDA tensors (each process on the GPU of its LOCAL_RANK). Idempotent; a no-op otherwise."""
    if _env_world() <= 1 or dist.is_initialized():
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # "cuda" then means this rank's GPU
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend=backend, timeout=TIMEOUT)
    atexit.register(_teardown)
    peers = [None] * dist.get_world_size()
    dist.all_gather_object(peers, (socket.gethostname(), os.getpid()))
    _PEERS[:] = peers


def _teardown() -> None:
    if dist.is_initialized() and not _BROKEN:  # with a rank lost, destroying the group waits on it: just exit
        dist.destroy_process_group()


def active() -> bool:
    setup()
    return dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


@_collective("barrier")
def barrier() -> None:
    if active():
        dist.barrier()


@_collective("broadcast from rank 0")
def broadcast(obj, src: int = 0):
    """`obj` from rank src on every rank (any picklable object; passes through with one process)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=torch.device("cpu"))
    return box[0]


def on_main(fn, *args, **kwargs):
    """Run fn on rank 0 only and return its result on every rank. An exception on rank 0 is raised on every rank
    (same type when it can be rebuilt from its message), so no rank is left waiting for the others."""
    result, error = None, None
    if is_main():
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # re-raised below on every rank, rank 0 with its traceback
            error = e
    shared = broadcast((result, None if error is None else (type(error), str(error))))
    if error is not None:
        raise error
    if shared[1] is not None:
        kind, message = shared[1]
        try:
            raise kind(message)
        except TypeError:  # exception types whose constructor takes more than a message
            raise RuntimeError(message) from None
    return shared[0]


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block first (filling caches, writing files); the others run it after, finding them made."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def micro_indices(grad_accum: int) -> range:
    """The micro-batches of a step that this rank computes."""
    n = world()
    if n > grad_accum:
        raise ConfigError(f"{n} processes but grad_accum={grad_accum} micro-batches per step: every process needs at "
                         f"least one; launch at most {grad_accum} processes or raise grad_accum (with a smaller "
                         f"micro_batch to keep the batch)")
    return range(rank(), grad_accum, n)


@_collective("gradient all_reduce")
def all_reduce_grads(params, extra: torch.Tensor) -> torch.Tensor:
    """Sum every parameter's gradient and the `extra` vector (the step's loss sums) over ranks, in place, with one
    flattened all_reduce. A parameter without a gradient on this rank contributes zeros. Returns the summed extra."""
    if not active():
        return extra
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params] + [extra.to(params[0].grad.dtype)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n
    return flat[offset:].to(extra.dtype)


@_collective("weight broadcast")
def sync_params(model: torch.nn.Module) -> None:
    """Give every rank rank 0's weights (they start equal by seeding; this makes it a guarantee)."""
    if active():
        for t in model.state_dict().values():
            dist.broadcast(t, src=0)
