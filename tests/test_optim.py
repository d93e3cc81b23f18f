"""The LR schedule, lambda switch, weight-decay groups and the hand-applied decoupled decay of run C'."""
import math

import pytest
import torch

from drift.config import ModelConfig, resolve
from drift.model import GPT
from drift.train.optim import NesterovSGDW, build_optimizer, lambda_at, lr_at, param_groups


def test_paper_schedule():
    t = resolve("paper").train
    assert lr_at(1, t) == pytest.approx(1e-3 / 1500)           # ~6.7e-7 after the first update
    assert lr_at(1499, t) == pytest.approx(1e-3 * 1499 / 1500)
    assert lr_at(1500, t) == pytest.approx(1e-3)
    r = (5750 - 1500) / 8500
    assert lr_at(5750, t) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * r)))
    # the 10% floor is a clamp that binds from about step 8,260
    first_floor = next(s for s in range(1500, 10_001) if lr_at(s, t) == pytest.approx(1e-4))
    assert 8250 <= first_floor <= 8270
    assert lr_at(10_000, t) == pytest.approx(1e-4)
    assert lambda_at(3999, t) == 2.0 and lambda_at(4000, t) == 4.0


def test_schedule_denominator_is_separate_from_run_length():
    t = resolve("paper", overrides=["total_steps=2000", "schedule_steps=4000"]).train
    t4 = resolve("paper", overrides=["total_steps=4000"]).train
    assert all(lr_at(s, t) == lr_at(s, t4) for s in (1, 1500, 1800, 2000))


def test_weight_decay_groups():
    model = GPT(ModelConfig(n_layer=1, d_model=8, n_head=2, d_ff=16, seq_len=4, vocab_size=10))
    decay, no_decay = param_groups(model, 0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in no_decay["params"]} == {
        "blocks.0.ln1.weight", "blocks.0.ln1.bias", "blocks.0.ln2.weight", "blocks.0.ln2.bias",
        "ln_f.weight", "ln_f.bias"}
    assert "tok_emb.weight" in {names[id(p)] for p in decay["params"]}  # embeddings are decayed


def test_decoupled_weight_decay_matches_its_formula():
    """One NesterovSGDW step on a toy parameter equals SGD-Nesterov followed by theta *= (1 - lr * wd)."""
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5))
    q = torch.nn.Parameter(p.detach().clone())
    opt = NesterovSGDW([{"params": [p], "weight_decay": 0.5}], lr=0.1, momentum=0.9)
    ref = torch.optim.SGD([q], lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(3):
        g = torch.randn(5)
        p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
        with torch.no_grad():
            q.mul_(1 - 0.1 * 0.5)
    torch.testing.assert_close(p.detach(), q.detach())


def test_l2_sgd_adds_decay_to_gradient():
    p = torch.nn.Parameter(torch.ones(3))
    model = torch.nn.Module()
    model.w = p
    opt = build_optimizer(model, resolve("tiny", overrides=["optimizer=sgd", "lr=0.1", "weight_decay=0.5"]).train)
    p.grad = torch.zeros(3)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((3,), 1 - 0.1 * 0.5))
