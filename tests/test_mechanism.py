"""Tests for drift.analysis.{minibatch,updates,gradients,fisher} and the three mechanism scripts (update alignment,
gradient alignment, Fisher).

Known answers: the Fisher of a least-squares model's mini-batch gradients through the real gradient path, a
gradient/direction flattening-order check on a model whose sorted-key order differs from its module order, the
split (LM / probe) gradients against one backward pass, update alignment against a dense computation, and the
default checkpoint choices. Each script runs end to end on a copy of the tiny run.

Run: pytest tests/test_mechanism.py
"""
import json
import types

import numpy as np
import pytest
import torch

from drift.geometry import fisher as fm
from drift.geometry.pca import dense_pca
from drift.geometry.trajectory import Trajectory
from drift.analysis import minibatch, updates
from drift.analysis.fisher import default_fisher_steps
from drift.analysis.gradients import default_gradient_steps
from drift.config import Config, ModelConfig, TrainConfig
from drift.model import GPT
from drift.run.params import flatten, scope_keys
from drift.train.trainer import composite_loss
from drift.analysis.gram_stream import flat_vector
from helpers import dense

SMALL = ModelConfig(n_layer=2, d_model=16, n_head=2, d_ff=32, seq_len=12, vocab_size=50)


class _LinearModel(torch.nn.Module):
    def __init__(self, D):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(D, dtype=torch.float64))


def test_least_squares_fisher_through_the_gradient_path():
    """g_i = X_i^T (X_i w - y_i) / b in closed form; G from flat_grad must give the closed-form Fisher."""
    rng = np.random.default_rng(0)
    M, b, D = 10, 6, 5
    model = _LinearModel(D)
    w = rng.standard_normal(D)
    model.w.data = torch.from_numpy(w.copy())
    rows, closed = [], []
    for _ in range(M):
        X, y = rng.standard_normal((b, D)), rng.standard_normal(b)
        loss = ((torch.from_numpy(X) @ model.w - torch.from_numpy(y)) ** 2).sum() / (2 * b)
        rows.append(minibatch.flat_grad(model, loss, ["w"]).double())
        closed.append(X.T @ (X @ w - y) / b)
    G, G_closed = torch.stack(rows), np.stack(closed)
    np.testing.assert_allclose(G.numpy(), G_closed, rtol=1e-6, atol=1e-7)  # grad_vector returns float32
    F = G_closed.T @ G_closed / M
    e = np.eye(D)
    out = fm.fisher_readouts(G, {"v_b": torch.from_numpy(e[0]), "v_pc2": torch.from_numpy(e[1])}, n_random=3)
    assert out["q"]["v_b"] == pytest.approx(F[0, 0], rel=1e-5)
    assert out["q"]["v_pc2"] == pytest.approx(F[1, 1], rel=1e-5)
    evals, evecs = np.linalg.eigh(F)
    assert out["lambda_1"] == pytest.approx(evals[-1], rel=1e-5)
    assert out["u1_overlap"]["v_b"] == pytest.approx(abs(evecs[0, -1]), abs=1e-5)
    # D - 1 = 4 random directions orthogonal to v_b = e_0 span its whole complement, whatever the draw: their
    # quotients add up to trace(F) - F_00, so alpha = F_00 / ((trace F - F_00) / 4)
    full = fm.fisher_readouts(G, {"v_b": torch.from_numpy(e[0])}, n_random=D - 1, seed=5)
    rest = np.trace(F) - F[0, 0]
    assert sum(full["q_random"]) == pytest.approx(rest, rel=1e-5)
    assert full["alpha"] == pytest.approx(F[0, 0] / (rest / (D - 1)), rel=1e-5)


def test_gradient_and_direction_share_the_canonical_order():
    """A direction equal to the gradient of a known loss has cos = 1 through the code path; flattening the same
    tensors in module order (the reference code's bug) does not."""
    torch.manual_seed(0)
    model = GPT(SMALL)
    keys = scope_keys(model.state_dict().keys(), "block0")
    module_order = [n for n, _ in model.named_parameters() if n in keys]
    assert module_order != keys  # otherwise this test could not catch an order mix-up
    named = dict(model.named_parameters())
    A = {k: torch.randn_like(named[k]) for k in keys}  # d/dW <W, A> = A
    with minibatch.scope_only_grads(model, keys):
        loss = sum((named[k] * A[k]).sum() for k in keys)
        g = minibatch.flat_grad(model, loss, keys)
    state = {**model.state_dict(), **A}
    v = flat_vector(state, "block0")  # how the backbone directions are flattened
    assert float(fm.abs_cos_with(g[None], v)[0]) == pytest.approx(1.0, abs=1e-6)
    wrong = flatten(A, module_order)
    assert float(fm.abs_cos_with(g[None], wrong)[0]) < 0.2
    assert all(p.requires_grad for p in model.parameters())  # the freeze is undone
    torch.testing.assert_close(g[minibatch.module_order_index(model, keys)], wrong)  # the control reproduces the bug


def _fake_ctx(batches, cfg):
    return types.SimpleNamespace(device=torch.device("cpu"), autocast=lambda: torch.autocast("cpu", enabled=False),
                                 cfg=cfg, train_batches=types.SimpleNamespace(get=lambda step, micro: batches[micro]))


def _batch(gen, probe: bool):
    x = torch.randint(0, SMALL.vocab_size, (3, SMALL.seq_len), generator=gen)
    y = torch.randint(0, SMALL.vocab_size, (3, SMALL.seq_len), generator=gen)
    mask = torch.zeros_like(y, dtype=torch.bool)
    if probe:
        mask[1, -1] = True
    return x, y, mask


def test_split_gradients_equal_one_backward_of_the_composite_loss():
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = GPT(SMALL)
    cfg = Config(model=SMALL, train=TrainConfig(lambda_switch_step=10, lambda_early=2.0, lambda_late=4.0))
    batches = [_batch(gen, True), _batch(gen, False)]
    keys = scope_keys(model.state_dict().keys(), "trunk")
    grads = minibatch.stacked_gradients(model, _fake_ctx(batches, cfg), 12, 2, keys, split=True)
    D = 2 * (4 * 16 * 16 + 2 * 16 * 32)  # per block: qkv + out_proj, w_up + w_down
    assert grads["composite"].shape == (2, D) and grads["probe"].shape[0] == 1  # no-probe skipped
    x, y, mask = batches[0]
    lm, probe = composite_loss(model(x), y, mask)
    full = minibatch.flat_grad(model, lm + 4.0 * probe, keys)  # lambda_late at step 12; nothing frozen here
    torch.testing.assert_close(grads["composite"][0], full, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grads["lm"][1], grads["composite"][1])
    only = minibatch.stacked_gradients(model, _fake_ctx(batches, cfg), 12, 2, keys, split=False)["composite"]
    torch.testing.assert_close(only, grads["composite"], rtol=1e-5, atol=1e-7)


def test_update_alignment_matches_dense_computation():
    rng = np.random.default_rng(3)
    steps = np.array([1, 10, 20, 30, 40, 50])
    direction = rng.standard_normal(40)
    thetas = np.cumsum(np.outer(np.linspace(1, 2, 6), direction) + 0.3 * rng.standard_normal((6, 40)), axis=0)
    traj = Trajectory.from_dense(steps, thetas)
    out = updates.scope_update_alignment(traj, list(steps), {"raw": False}, lag=20, early_step=25)["raw"]
    dense = dense_pca(steps, thetas, 1)
    v = dense.directions[0]
    U = np.diff(thetas, axis=0)
    np.testing.assert_allclose(out["consecutive"]["cos"], U @ v / np.linalg.norm(U, axis=1), atol=1e-9)
    assert out["consecutive"]["end_steps"] == [10, 20, 30, 40, 50]
    assert out["consecutive"]["mid_steps"] == [5.5, 15, 25, 35, 45]
    U2 = thetas[3:] - thetas[1:4]  # (10, 30), (20, 40), (30, 50): step 1 has no partner 20 steps earlier
    np.testing.assert_allclose(out["overlapping"]["cos"], U2 @ v / np.linalg.norm(U2, axis=1), atol=1e-9)
    assert out["consecutive_summary"]["mean_abs_cos"] == pytest.approx(np.mean(np.abs(U @ v) / np.linalg.norm(U, axis=1)),
                                                                        rel=1e-9)


def _fake_run(total, every, switch, p_ood=None):
    steps = [0, 1] + list(range(every, total + 1, every))
    metrics = [{"step": s, "p_ood": p} for s, p in zip(steps[1:], p_ood)] if p_ood is not None else []
    return types.SimpleNamespace(steps=steps, total_steps=total, switch_step=switch, ckpt_every=every,
                                 regular_steps=lambda start=1: [s for s in steps if s == start or
                                                                (s > start and s % every == 0)],
                                 eval_steps=lambda: [m["step"] for m in metrics],
                                 metric=lambda key, st: np.array([m[key] for m in metrics]))


def test_default_steps():
    run = _fake_run(1000, 20, 400)
    assert default_gradient_steps(run) == [1] + list(range(80, 1000, 100))
    p = np.full(51, 0.1)
    p[8:11] = [0.3, 0.5, 0.3]     # early peak at step 180 (index 9 of [1, 20, 40, ...]) then a trough
    p[12:15] = [0.05, 0.02, 0.05]  # trough at step 260
    p[30:33] = [0.2, 0.6, 0.2]    # late peak at step 620
    roles = default_fisher_steps(_fake_run(1000, 20, 400, p))
    assert roles == {20: ["early"], 180: ["early_peak"], 260: ["early_trough"], 420: ["after_switch"],
                     620: ["late_peak"], 1000: ["last"]}
    p[8:15] = 0.1  # now the only peak (620) comes after the switch: it is the early pair's peak, not a late one
    p[33:36] = [0.05, 0.02, 0.05]
    roles = default_fisher_steps(_fake_run(1000, 20, 400, p))
    assert roles == {20: ["early"], 420: ["after_switch"], 620: ["early_peak"], 680: ["early_trough"],
                     1000: ["last"]}


# ---------------------------------------------------------------------------------------------------------------
# End to end on the tiny run
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", ["backbone_update_analysis", "backbone_gradient_analysis",
                                    "backbone_fisher_analysis"])
def test_help(module, capsys):
    mod = __import__(module)
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0 and "usage" in capsys.readouterr().out


def _autograd_gradients(run_dir, step: int, stream: int, n: int, scope: str) -> np.ndarray:
    """(n, D) gradients of the composite loss (training lambda, eval mode) for the first n batches of `stream` at
    `step`, by one torch.autograd.grad per batch, flattened over the scope's sorted keys (tests/helpers/dense.py,
    the order its checkpoint vectors use)."""
    from drift.data.context import build_context
    from drift.run.checkpoint import load_checkpoint
    from drift.run.info import load_run
    from drift.train.optim import lambda_at
    cfg = load_run(run_dir).config
    ctx = build_context(cfg, run_dir, stream=stream)
    model = GPT(ctx.model_cfg)
    state = load_checkpoint(run_dir, step)["model"]
    model.load_state_dict(state)
    model.eval()
    named = dict(model.named_parameters())
    params = [named[k] for k in dense.param_keys(state, scope)]
    rows = []
    for micro in range(n):
        x, y, mask = ctx.train_batches.get(max(step, 1), micro)
        lm, probe = composite_loss(model(x), y, mask)
        grads = torch.autograd.grad(lm + lambda_at(step, cfg.train) * probe, params)
        rows.append(torch.cat([t.reshape(-1) for t in grads]).double().numpy())
    return np.stack(rows)


def test_scripts_end_to_end(tiny_run_copy, capsys, restore_torch_threads):
    import backbone_fisher_analysis
    import backbone_gradient_analysis
    import backbone_update_analysis
    run = tiny_run_copy
    assert backbone_update_analysis.main([str(run), "--lag", "10"]) == 0
    upd = json.loads((run / "analysis" / "update_alignment.json").read_text())["results"]
    assert {"trunk", "block0", "block1", "block0+ln"} <= upd["scopes"].keys()
    assert "overlapping" in upd["scopes"]["block0"]["raw"]
    assert backbone_gradient_analysis.main([str(run), "--steps", "1", "30", "--n-batches", "3", "--n-random", "4",
                                            "--no-progress"]) == 0
    grad = json.loads((run / "analysis" / "gradient_alignment.json").read_text())["results"]
    assert [r["step"] for r in grad["steps"]] == [1, 30] and grad["steps"][0]["composite"]["abs_cos"]["n"] == 3
    # C12's numbers recomputed without the analysis code: v_b = block 0's raw PC1 by numpy's SVD of the checkpoints,
    # the updates between regular checkpoints, and plain autograd gradients of the same fresh batches (stream 101)
    steps = [1, 5, 10, 15, 20, 25, 30]
    B = dense.thetas(run, steps, "block0")
    v = dense.pc1(B[1:] - B[0])
    U = np.diff(B, axis=0)
    u = np.mean(np.abs(U @ v) / np.linalg.norm(U, axis=1))
    g = np.mean([np.mean(np.abs(G @ v) / np.linalg.norm(G, axis=1))
                 for G in (_autograd_gradients(run, s, 101, 3, "block0") for s in (1, 30))])
    s = grad["summary"]
    assert s["update_mean_abs_cos"] == pytest.approx(u, rel=1e-9)
    assert (s["grad_mean_abs_cos"], s["update_over_grad"]) == pytest.approx((g, u / g), rel=1e-5)
    assert backbone_fisher_analysis.main([str(run), "--steps", "5", "30", "--m", "4", "--k", "3",
                                          "--no-progress"]) == 0
    fis = json.loads((run / "analysis" / "fisher.json").read_text())["results"]
    assert len(fis["steps"]) == 2 and fis["steps"][0]["M"] == 4 and len(fis["steps"][0]["q_random"]) == 3
    # q(v_b) = mean_i <g_i, v_b>^2 over 4 batches of stream 102, v_b the trunk's raw PC1 by numpy
    T = dense.thetas(run, steps, "trunk")
    v = dense.pc1(T[1:] - T[0])
    for r, step in zip(fis["steps"], (5, 30)):
        G = _autograd_gradients(run, step, 102, 4, "trunk")
        assert r["q"]["v_b"] == pytest.approx(np.mean((G @ v) ** 2), rel=1e-5), step
        assert r["alpha"] == pytest.approx(r["q"]["v_b"] / np.mean(r["q_random"]), rel=1e-12)
        assert r["seconds"] == pytest.approx(r["seconds_gradients"] + r["seconds_readouts"], rel=1e-9)
    for name in ("update_alignment", "gradient_alignment", "fisher"):
        assert (run / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert backbone_fisher_analysis.main([str(run), "--steps", "7"]) == 2  # no such checkpoint
    assert "error" in capsys.readouterr().err
