"""Data parallelism (drift/train/distributed.py): 2 gloo processes x 1 micro-batch each against 1 process x 2
micro-batches, files written once, and resume with another number of processes. The torchrun tests are marked
slow (python -m pytest -m slow; CI runs them).

The tolerance is fixed in advance: final weights within TOL_WEIGHT (absolute) and every logged loss within
TOL_LOSS (relative) of the 1-process run. Summing two per-micro-batch gradients is the same float addition in one
process (autograd accumulation) and across two (all_reduce), so the runs are expected to agree far inside it.
"""
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from drift.run import checkpoint as ck
from drift.train import distributed as dist
from drift.config import ConfigError, resolve
from drift.train.trainer import eval_schedule, train

ROOT = Path(__file__).resolve().parent.parent
TOL_WEIGHT = 1e-5
TOL_LOSS = 1e-5
KILL_STEP = 17  # after the step-15 checkpoint of the tiny preset
LOGGED = ("val_loss", "p_in", "p_ood", "nll_in", "nll_ood", "train_loss", "train_lm", "train_probe", "grad_norm")


@pytest.mark.parametrize("world, accum", [(1, 2), (2, 2), (2, 3), (4, 4), (3, 8)])
def test_micro_batches_split_over_ranks(monkeypatch, world, accum):
    """Every micro-batch of a step is computed by exactly one rank, whatever the world size."""
    seen = []
    monkeypatch.setattr(dist, "world", lambda: world)
    for r in range(world):
        monkeypatch.setattr(dist, "rank", lambda r=r: r)
        seen += list(dist.micro_indices(accum))
    assert sorted(seen) == list(range(accum))


def test_more_ranks_than_micro_batches_is_refused(monkeypatch):
    monkeypatch.setattr(dist, "world", lambda: 4)
    with pytest.raises(ConfigError, match="at most 2 processes"):
        dist.micro_indices(2)


def test_single_process_helpers_pass_through():
    assert not dist.active() and dist.world() == 1 and dist.is_main()
    assert dist.broadcast({"a": 1}) == {"a": 1}
    assert dist.on_main(lambda x: x + 1, 1) == 2
    with pytest.raises(ck.RunError, match="boom"):
        dist.on_main(lambda: (_ for _ in ()).throw(ck.RunError("boom")))
    extra = torch.tensor([1.0, 2.0])
    assert dist.all_reduce_grads([torch.nn.Parameter(torch.ones(2))], extra) is extra


def _max_weight_diff(run_a, run_b, step):
    a, b = ck.load_checkpoint(run_a, step)["model"], ck.load_checkpoint(run_b, step)["model"]
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _assert_same_run(reference, run, label):
    last = max(ck.list_steps(reference))
    assert ck.list_steps(run) == ck.list_steps(reference)
    diff = _max_weight_diff(reference, run, last)
    print(f"{label}: max |w - w_ref| at step {last} = {diff:.3g}")
    assert diff <= TOL_WEIGHT, f"{label}: final weights differ by {diff:.3g} > {TOL_WEIGHT}"
    ref_m, m = ck.read_metrics(reference), ck.read_metrics(run)
    assert [r["step"] for r in m] == [r["step"] for r in ref_m]  # each eval logged once
    for r0, r1 in zip(ref_m, m):
        for key in LOGGED:
            assert r1[key] == pytest.approx(r0[key], rel=TOL_LOSS, abs=1e-12), (label, r0["step"], key)


@pytest.fixture(scope="module")
def ddp_runs(tiny_run, tmp_path_factory):
    """One torchrun launch (2 processes, gloo) running the three scenarios of tests/helpers/ddp_worker.py."""
    root = tmp_path_factory.mktemp("ddp")
    killed = root / "resumed_1to2"
    import drift.train.trainer as tr
    original = tr._train_step

    def killing_step(model, fwd, opt, ctx, step, state):
        if step == KILL_STEP:
            raise KeyboardInterrupt
        return original(model, fwd, opt, ctx, step, state)

    tr._train_step = killing_step
    try:
        with pytest.raises(KeyboardInterrupt):
            train(resolve("tiny", seed=1), killed, progress=False)
    finally:
        tr._train_step = original
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "helpers" / "ddp_worker.py"), str(root), str(KILL_STEP)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root


@pytest.mark.slow  # one torchrun launch, ~20 s of CPU; CI runs it (make test-slow)
def test_two_processes_match_one(tiny_run, ddp_runs):
    """2 processes x 1 micro-batch = 1 process x 2 micro-batches, over the tiny preset's 30 steps."""
    _assert_same_run(tiny_run, ddp_runs / "fresh", "2 ranks vs 1")
    assert json.loads((ddp_runs / "fresh" / "run.json").read_text())["world_size"] == 2


@pytest.mark.slow  # one torchrun launch, ~20 s of CPU; CI runs it (make test-slow)
def test_every_file_is_written_once_by_rank_0(tiny_run, ddp_runs):
    writes = {r: Counter(tuple(w) for w in json.loads((ddp_runs / f"writes.rank{r}.json").read_text()))
              for r in (0, 1)}
    assert not writes[1], f"rank 1 wrote {sorted(writes[1])}"
    fresh = Counter({k: n for k, n in writes[0].items() if k[1].startswith("fresh/")})
    cfg = resolve("tiny", seed=1)
    ckpts = ck.list_steps(ddp_runs / "fresh")
    expected = Counter({("replace", f"fresh/ckpt_{s:06d}.pt"): 1 for s in ckpts})
    expected[("replace", "fresh/run.json")] = 2          # at the start (status running) and at the end
    expected[("replace", "fresh/codewords.json")] = 1
    expected[("replace", "fresh/resume.pt")] = len(ckpts) - 1  # at every checkpoint after the initialization
    expected[("append", "fresh/metrics.jsonl")] = len(eval_schedule(cfg))
    assert fresh == expected
    lines = (ddp_runs / "fresh" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(eval_schedule(cfg))


@pytest.mark.slow  # one torchrun launch, ~20 s of CPU; CI runs it (make test-slow)
def test_resume_with_another_number_of_processes(tiny_run, ddp_runs):
    """Killed in 1 process, resumed in 2; killed in 2, resumed in 1: both end where the uninterrupted run does."""
    _assert_same_run(tiny_run, ddp_runs / "resumed_1to2", "1 -> 2 ranks")
    assert json.loads((ddp_runs / "resumed_1to2" / "run.json").read_text())["resumed_world_size"] == 2
    killed = ddp_runs / "killed_2"
    info = json.loads((killed / "run.json").read_text())
    # stopped by an exception on every rank: rank 0 records it (lifecycle.mark_stopped); the resume point stays
    assert max(ck.list_steps(killed)) == 15 and info["status"] == "failed" and info["error"].startswith("Killed")
    train(resolve("tiny", seed=1), killed, resume=True, progress=False)
    _assert_same_run(tiny_run, killed, "2 -> 1 ranks")


@pytest.mark.slow  # one torchrun launch, ~10 s of CPU; CI runs it (make test-slow)
def test_a_lost_rank_is_named_in_one_line(tmp_path):
    """Rank 1 is SIGKILLed at step 12 (as by the out-of-memory killer). Before: rank 0 printed gloo's "Read error
    ... Connection reset by peer. This is typically caused by ... GLHF!" without naming any rank, then hung in the
    process-group teardown until torchrun sent it SIGTERM."""
    out = tmp_path / "lost"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "helpers" / "lost_rank_worker.py"), str(out), "12"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "exitcode  : 2" in proc.stderr, proc.stderr[-3000:]  # rank 0 exits by itself
    err = [line for line in (tmp_path / "lost.rank0.stderr").read_text().splitlines() if "data split" not in line]
    assert len(err) == 1 and err[0].startswith("train.py: error: rank 1 (pid "), err
    assert "of 2 ended during the gradient all_reduce, so rank 0 stops too (gloo: " in err[0]
    info = ck.read_json(out / "run.json")
    assert info["status"] == "failed" and info["error"].startswith("RankLostError: rank 1")
    assert max(ck.list_steps(out)) == 10  # the last checkpoint before step 12 stays; --resume continues from it


def test_lost_rank_message_without_a_dead_local_process():
    error = RuntimeError("[/x/gloo/pair.cc:537] Read error [10.0.0.2]:4242: Connection reset by peer. This is ...")
    import socket
    message = dist.lost_ranks_message("barrier", error, 0, [(socket.gethostname(), os.getpid()), ("elsewhere", 1)])
    assert message == ("rank 0 lost contact with the other ranks during the barrier (gloo: Read error "
                       "[10.0.0.2]:4242: Connection reset by peer); ranks [1] run on other hosts: look there")
