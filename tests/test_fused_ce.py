"""drift/train/fused_ce.py: the chunked head + composite loss equals plain autograd through the full logits.

The reference here is written out from the semantics (logits = hidden @ weight.T, per-position cross-entropy,
L_LM over scored non-probe positions, L_probe over the probe mask or 0), independently of the Function's hand-made
gradients; one test ties it to drift.train.trainer.composite_loss. Agreement is to 1e-5 relative to the largest entry.
"""
import pytest
import torch
import torch.nn.functional as F

from drift.train.fused_ce import fused_composite_loss
from drift.train.trainer import composite_loss

RTOL = 1e-5


@pytest.fixture(autouse=True)
def _one_thread(restore_torch_threads):
    """The tensors here are tiny: a second thread only adds waits, and on a shared 2-core machine doubles the time."""
    torch.set_num_threads(1)


def reference(hidden, weight, targets, probe_mask, lam, grad_accum):
    logits = hidden @ weight.T
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none",
                         ignore_index=-100).view(targets.shape)
    lm = (targets != -100) & ~probe_mask
    loss_lm = ce[lm].sum() / lm.sum().clamp(min=1)
    loss_probe = ce[probe_mask].sum() / probe_mask.sum() if probe_mask.any() else ce.new_zeros(())
    return (loss_lm + lam * loss_probe) / grad_accum, loss_lm, loss_probe


def make_case(b, t, d, vocab, probe=True, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(b, t, d, generator=gen, dtype=dtype)
    weight = torch.randn(vocab, d, generator=gen, dtype=dtype) / d ** 0.5 * 3  # logits of spread ~3
    targets = torch.randint(0, vocab, (b, t), generator=gen)
    targets[torch.rand(b, t, generator=gen) < 0.2] = -100
    probe_mask = (torch.rand(b, t, generator=gen) < 0.25) if probe else torch.zeros(b, t, dtype=torch.bool)
    return hidden, weight, targets, probe_mask


def assert_rel(got, want, rtol=RTOL):
    """max |got - want| <= rtol * max |want| (exact equality when want is all zeros)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = want.detach().abs().max().item()
    err = (got.detach().double() - want.detach().double()).abs().max().item()
    assert err <= rtol * scale, f"max abs diff {err:.3g} vs {rtol} * {scale:.3g}"


def both(hidden, weight, targets, probe_mask, lam=2.0, grad_accum=2, chunk_rows=7):
    """(loss, lm, probe, grad_hidden, grad_weight) from the reference and from the fused Function."""
    out = []
    for fused in (False, True):
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        if fused:
            loss, lm, pr = fused_composite_loss(h, w, targets, probe_mask, lam, grad_accum, chunk_rows=chunk_rows)
        else:
            loss, lm, pr = reference(h, w, targets, probe_mask, lam, grad_accum)
        loss.backward()
        out.append((loss, lm, pr, h.grad, w.grad))
    return out


@pytest.mark.parametrize("shape", [(2, 5, 8, 11), (3, 17, 16, 50), (4, 32, 24, 97)])
@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 10_000])
@pytest.mark.parametrize("probe", [True, False])
def test_matches_reference(shape, chunk_rows, probe):
    case = make_case(*shape, probe=probe, seed=sum(shape) + chunk_rows)
    want, got = both(*case, lam=2.5, grad_accum=3, chunk_rows=chunk_rows)
    for g, w in zip(got, want):
        assert_rel(g, w)
    assert not got[1].requires_grad and not got[2].requires_grad  # logging values are detached
    if not probe:
        assert got[2].item() == 0.0


def test_reference_is_the_trainers_composite_loss():
    hidden, weight, targets, probe_mask = make_case(3, 9, 8, 13)
    lm, pr = composite_loss(hidden @ weight.T, targets, probe_mask)
    _, ref_lm, ref_pr = reference(hidden, weight, targets, probe_mask, 1.0, 1)
    assert torch.equal(lm, ref_lm) and torch.equal(pr, ref_pr)


def test_all_positions_ignored():
    hidden, weight, targets, probe_mask = make_case(2, 6, 8, 11)
    targets = torch.full_like(targets, -100)  # probe positions too: ce 0 there, yet they count in #probe
    want, got = both(hidden, weight, targets, probe_mask)
    assert got[0].item() == 0.0 and got[1].item() == 0.0 and got[2].item() == 0.0
    assert not got[3].any() and not got[4].any()
    for g, w in zip(got, want):
        assert_rel(g, w)


def test_probe_positions_with_ignored_targets():
    """A probe-masked position whose target is -100 adds 0 to the probe sum but 1 to its count, as in the
    reference."""
    hidden, weight, targets, probe_mask = make_case(3, 10, 8, 11)
    targets[probe_mask & (torch.arange(10) % 2 == 0)] = -100
    assert (probe_mask & (targets == -100)).any() and (probe_mask & (targets != -100)).any()
    want, got = both(hidden, weight, targets, probe_mask)
    for g, w in zip(got, want):
        assert_rel(g, w)


def test_underflowing_target_probability():
    """Logits hundreds apart: p(target) underflows to 0 for most rows, whose ce (in the hundreds) is recomputed
    exactly rather than read as -log 0."""
    hidden, weight, targets, probe_mask = make_case(3, 10, 8, 11)
    weight = weight * 100
    want, got = both(hidden, weight, targets, probe_mask, chunk_rows=4)
    assert want[1].item() > 100
    for g, w in zip(got, want):
        assert_rel(g, w)


def test_non_contiguous_inputs():
    hidden, weight, targets, probe_mask = make_case(5, 12, 8, 11)
    h = hidden.transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()  # same values, (t, b, d) in memory
    base = torch.stack([weight, torch.zeros_like(weight)], dim=2).reshape(weight.shape[0], -1).requires_grad_()
    w = base[:, ::2]  # every other column: a strided view equal to weight
    y, m = targets.t().contiguous().t(), probe_mask.t().contiguous().t()
    assert not (h.is_contiguous() or w.is_contiguous() or y.is_contiguous() or m.is_contiguous())
    loss, _, _ = fused_composite_loss(h, w, y, m, 2.0, 2, chunk_rows=5)
    loss.backward()
    want = both(hidden, weight, targets, probe_mask, 2.0, 2)[0]
    assert_rel(loss, want[0])
    assert_rel(h.grad, want[3])
    assert_rel(base.grad[:, ::2], want[4])
    assert not base.grad[:, 1::2].any()


def test_upstream_gradient_and_frozen_weight():
    """backward scales the stored gradients by the incoming one; a weight without requires_grad is skipped."""
    hidden, weight, targets, probe_mask = make_case(2, 8, 8, 11)
    h1, h2 = hidden.clone().requires_grad_(), hidden.clone().requires_grad_()
    (3.0 * fused_composite_loss(h1, weight, targets, probe_mask, 2.0, 1, chunk_rows=4)[0] + h1.sum()).backward()
    (3.0 * reference(h2, weight, targets, probe_mask, 2.0, 1)[0] + h2.sum()).backward()
    assert_rel(h1.grad, h2.grad)


def test_tied_embedding_and_head():
    """One tensor as embedding and head: its gradient sums both paths, as autograd through the logits does."""
    vocab, d = 23, 8
    grads = []
    for fused in (False, True):
        torch.manual_seed(0)
        emb, mix = torch.nn.Embedding(vocab, d), torch.nn.Linear(d, d)
        idx = torch.randint(0, vocab, (3, 10))
        targets, probe_mask = torch.roll(idx, -1, dims=1), torch.rand(3, 10) < 0.3
        targets[:, -1] = -100
        hidden = torch.tanh(mix(emb(idx)))
        loss_fn = fused_composite_loss if fused else reference
        loss_fn(hidden, emb.weight, targets, probe_mask, 4.0, 2)[0].backward()
        grads.append((emb.weight.grad, mix.weight.grad, mix.bias.grad))
    for g, w in zip(grads[1], grads[0]):
        assert_rel(g, w)


def test_autocast_and_bf16_inputs_compute_in_float32():
    hidden, weight, targets, probe_mask = make_case(2, 8, 8, 11)
    h16, w16 = hidden.bfloat16().requires_grad_(), weight.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, lm, pr = fused_composite_loss(h16, w16, targets, probe_mask, 2.0, 2, chunk_rows=3)
    loss.backward()
    assert loss.dtype == torch.float32 and h16.grad.dtype == torch.bfloat16 and w16.grad.dtype == torch.bfloat16
    h32, w32 = h16.detach().float().requires_grad_(), w16.detach().float().requires_grad_()
    ref, _, _ = reference(h32, w32, targets, probe_mask, 2.0, 2)
    ref.backward()
    assert_rel(loss, ref)
    assert_rel(h16.grad.float(), h32.grad, rtol=1e-2)  # the grads are rounded to bf16 on the way out
    assert_rel(w16.grad.float(), w32.grad, rtol=1e-2)


def test_float64_gradcheck():
    hidden, weight, targets, probe_mask = make_case(1, 4, 3, 5, dtype=torch.float64)  # 12 + 15 inputs to perturb
    probe_mask[0, :2] = True
    hidden.requires_grad_()
    weight.requires_grad_()
    loss = fused_composite_loss(hidden, weight, targets, probe_mask, 2.0, 2)[0]
    assert loss.dtype == torch.float64
    assert torch.autograd.gradcheck(
        lambda h, w: fused_composite_loss(h, w, targets, probe_mask, 1.5, 2, chunk_rows=2)[0], (hidden, weight))


def test_bad_arguments():
    hidden, weight, targets, probe_mask = make_case(2, 3, 4, 5)
    with pytest.raises(ValueError, match="chunk_rows"):
        fused_composite_loss(hidden, weight, targets, probe_mask, 1.0, 1, chunk_rows=0)
    with pytest.raises(ValueError, match="shapes"):
        fused_composite_loss(hidden, weight, targets[:, :2], probe_mask, 1.0, 1)


def test_no_grad_and_frozen_hidden():
    """Under no_grad only the loss is computed (same values); with hidden frozen only the weight gets a gradient."""
    hidden, weight, targets, probe_mask = make_case(3, 7, 8, 11)
    want = both(hidden, weight, targets, probe_mask, 2.0, 2)[0]
    with torch.no_grad():
        loss, lm, pr = fused_composite_loss(hidden, weight.requires_grad_(), targets, probe_mask, 2.0, 2)
    assert not loss.requires_grad
    for g, w in zip((loss, lm, pr), want[:3]):
        assert_rel(g, w)
    weight.grad = None
    fused_composite_loss(hidden, weight, targets, probe_mask, 2.0, 2)[0].backward()
    assert_rel(weight.grad, want[4])


def test_a_run_with_fused_ce_matches_the_plain_loss(tiny_run, tmp_path):
    """fused_ce=true trains the same run as the plain loss to float rounding: every logged loss within 1e-4."""
    from drift.config import resolve
    from drift.run import checkpoint as ck
    from drift.train.trainer import train
    train(resolve("tiny", seed=1, overrides=["fused_ce=true"]), tmp_path / "fused", progress=False)
    plain, fused = ck.read_metrics(tiny_run), ck.read_metrics(tmp_path / "fused")
    assert [r["step"] for r in plain] == [r["step"] for r in fused]
    for a, b in zip(plain, fused):
        for k in ("train_loss", "train_lm", "val_loss"):
            assert abs(a[k] - b[k]) <= 1e-4 * max(1.0, abs(a[k])), (a["step"], k, a[k], b[k])


def test_fused_ce_refuses_compile_and_shadow():
    import pytest
    from drift.config import ConfigError, resolve
    for bad in (["compile=true"], ["amp=bf16_shadow"]):
        with pytest.raises(ConfigError, match="fused_ce=true computes the head itself"):
            resolve("tiny", overrides=["fused_ce=true", *bad])


def test_resume_accepts_a_run_json_written_before_the_field_existed(tiny_run_copy):
    """run.json of a run started before fused_ce existed lacks the key; resuming it must not read that as a change."""
    import json
    from drift.config import resolve
    from drift.train.lifecycle import check_run_dir
    info = json.loads((tiny_run_copy / "run.json").read_text())
    del info["config"]["train"]["fused_ce"]
    (tiny_run_copy / "run.json").write_text(json.dumps(info))
    check_run_dir(resolve("tiny", seed=1), tiny_run_copy, resume=True)  # raises RunError on a difference
