"""bf16 shadow weights (amp=bf16_shadow): float32 master, bf16 copy refreshed once per step."""
import pytest
import torch
import torch.nn.functional as F

from drift.config import ModelConfig
from drift.train.lowp import BF16Shadow
from drift.model import GPT


def _model():
    torch.manual_seed(0)
    return GPT(ModelConfig(n_layer=2, d_model=32, n_head=2, d_ff=64, seq_len=16, vocab_size=50))


def test_shadow_keeps_tying_and_accumulates_float32_grads():
    model = _model()
    shadow = BF16Shadow(model)
    assert shadow.module.lm_head.weight is shadow.module.tok_emb.weight  # tied in the copy too
    assert all(p.dtype == torch.bfloat16 for p in shadow.module.parameters())
    with torch.no_grad():
        model.blocks[0].mlp.w_up.weight.add_(1.0)
    shadow.pull()
    assert torch.equal(shadow.module.blocks[0].mlp.w_up.weight, model.blocks[0].mlp.w_up.weight.bfloat16())
    x = torch.randint(0, 50, (4, 16))
    grads = []
    for _ in range(2):  # two micro-batches: the master holds their float32 sum
        F.cross_entropy(shadow.module(x).float().view(-1, 50), x.view(-1)).backward()
        grads.append({n: p.grad.float().clone() for n, p in shadow.module.named_parameters()})
        shadow.push_grads()
        assert all(p.grad is None for p in shadow.module.parameters())
    for n, p in model.named_parameters():
        assert p.grad.dtype == torch.float32
        torch.testing.assert_close(p.grad, grads[0][n] + grads[1][n])


def test_shadow_gradients_track_float32_ones():
    """bf16 forward/backward gives gradients within bf16 resolution of the float32 ones (cosine > 0.99)."""
    model = _model()
    shadow = BF16Shadow(model)
    x = torch.randint(0, 50, (8, 16))
    F.cross_entropy(model(x).view(-1, 50), x.view(-1)).backward()
    ref = torch.cat([p.grad.flatten() for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    shadow.pull()
    F.cross_entropy(shadow.module(x).float().view(-1, 50), x.view(-1)).backward()
    shadow.push_grads()
    low = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert F.cosine_similarity(ref, low, dim=0) > 0.99


def test_speed_probe_is_the_best_float32_time_over_the_best_bf16_time(monkeypatch):
    """A planted clock: three float32 timings of 0.3, 0.2, 0.25 s, then three bf16 ones of 0.05, 0.04, 0.1 s.
    The probe keeps the best of each (0.2 and 0.04) and reports float32 / bf16 = 5."""
    import types

    import drift.train.lowp as lowp
    ticks, now = iter([0.3, 0.2, 0.25, 0.05, 0.04, 0.1]), [0.0]

    def perf_counter():          # called twice per timing: the start, then the start plus the planted duration
        perf_counter.calls += 1
        if perf_counter.calls % 2 == 0:
            now[0] += next(ticks)
        return now[0]
    perf_counter.calls = 0
    monkeypatch.setattr(lowp, "time", types.SimpleNamespace(perf_counter=perf_counter))
    assert lowp.bf16_matmul_speedup(n=8, k=8, reps=1) == pytest.approx(5.0, rel=1e-12)
    assert perf_counter.calls == 12


def test_trainer_with_shadow_tracks_float32(tmp_path):
    """A tiny run with amp=bf16_shadow: float32 checkpoints, and every logged train loss within 0.05 nats of the
    float32 run's (tolerance fixed before the first run; bf16 keeps ~3 significant digits)."""
    import json

    from drift.run.checkpoint import load_checkpoint_file
    from drift.config import resolve
    from drift.train.trainer import train
    losses = {}
    for amp in ("off", "bf16_shadow"):
        run = tmp_path / amp
        train(resolve("tiny", 5, [f"amp={amp}"]), run, progress=False)
        recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        losses[amp] = [r["train_loss"] for r in recs if "train_loss" in r]
        assert [r["step"] for r in recs if "train_loss" in r] == [1, 5, 10, 15, 20, 25, 30]   # every eval step
    state = load_checkpoint_file(run / "ckpt_000030.pt")["model"]
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    assert max(abs(a - b) for a, b in zip(losses["off"], losses["bf16_shadow"])) < 0.05
