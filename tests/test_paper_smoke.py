"""The `paper` preset on CPU for a few steps: the paper's 8-layer d_model-512 model (51,045,888 parameters) with
the real GPT-2 tokenizer, trained on the embedded corpus, its checkpoints, and the trajectory analysis on them.
Only the data size, batch size and run length are shrunk; the model and tokenizer are the paper's.

Slow (about a minute; see README), so CI runs it with `make test-slow`. Needs the GPT-2 files (`make tokenizer`).
Run: DRIFT_REQUIRE_GPT2=1 python -m pytest -m slow tests/test_paper_smoke.py
"""
import math

import pytest
import torch

from drift.analysis import backbone as bb
from drift.analysis import gram_cache
from drift.run import checkpoint as ck
from drift.analysis import gram_stream
from drift.config import resolve
from drift.run.params import TRUNK_SUFFIXES, scope_keys, scope_size
from drift.train.trainer import train

PAPER_PARAMS = 51_045_888
PAPER_TRUNK = 25_165_824  # 12 * n_layer * d_model^2
SMOKE = dict(data_source="embedded", n_train_stories=400, n_val_stories=40, total_steps=4, warmup_steps=2,
             lambda_switch_step=2, eval_every=4, ckpt_every=1, micro_batch=2, grad_accum=1, val_batches=1,
             val_batch_size=4, n_probe_eval=8, device="cpu", threads=1)


@pytest.mark.slow
def test_paper_preset_smoke(gpt2_tokenizer, tmp_path):
    cfg = resolve("paper", seed=42, overrides=SMOKE)
    m = cfg.model
    assert (m.n_layer, m.d_model, m.n_head, m.d_ff, m.seq_len) == (8, 512, 16, 2048, 256)
    assert cfg.train.tokenizer == "gpt2"
    run = tmp_path / "paper_smoke"
    info = train(cfg, run, progress=False)
    assert info["status"] == "finished" and info["n_params"] == PAPER_PARAMS
    assert info["config"]["model"]["vocab_size"] == gpt2_tokenizer.vocab_size == 50257
    assert ck.list_steps(run) == [0, 1, 2, 3, 4]
    metrics = ck.read_metrics(run)
    assert [r["step"] for r in metrics] == [1, 4] and all(math.isfinite(r["val_loss"]) for r in metrics)
    assert metrics[0]["val_loss"] < math.log(50257) + 0.5  # one small step from a near-uniform initialization

    # The trunk: the 4 matrices of each of the 8 blocks, in sorted state-dict key order.
    state = ck.load_checkpoint(run, 4, mmap=True)["model"]
    keys = scope_keys(state.keys(), "trunk")
    assert keys == sorted(f"blocks.{l}.{s}" for l in range(8) for s in TRUNK_SUFFIXES)
    assert scope_size(state, "trunk") == PAPER_TRUNK
    assert gram_stream.flat_vector(state, "trunk").numel() == PAPER_TRUNK
    assert sum(t.numel() for k, t in state.items() if k != "lm_head.weight") == PAPER_PARAMS  # head is tied
    first = ck.load_checkpoint(run, 0, mmap=True)["model"]
    assert not torch.equal(first[keys[0]], state[keys[0]])  # the trunk moved

    # The trajectory analysis runs on the paper-size checkpoints, from the streaming Grams.
    r = bb.analyze_run(run, window=2, progress=False)
    assert r["setup"]["row_steps"] == [2, 3, 4]
    assert 0 < r["trunk"]["pc1_rownorm_full"] <= 1 and 0 < r["trunk"]["pc1_raw_full"] <= 1
    assert len(r["blocks"]["pc1"]["block"]) == 8 and all(math.isfinite(x) for x in r["blocks"]["pc1"]["block"])
    gram = gram_cache.trajectory_grams(run, [1, 4], ["trunk"])["trunk"]
    direct = (gram_stream.flat_vector(state, "trunk").double()
              - gram_stream.flat_vector(ck.load_checkpoint(run, 1, mmap=True)["model"], "trunk").double())
    assert gram[1, 1] == pytest.approx(float(direct @ direct), rel=1e-9)
