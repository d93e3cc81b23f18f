"""The model matches PROTOCOL section 1 and torch's fused attention matches a manual reference."""
import math

import torch
import torch.nn.functional as F

from drift.config import ModelConfig, resolve
from drift.model import GPT
from drift.run.params import flatten, grad_vector, scope_keys, scope_size


def test_paper_parameter_counts():
    model = GPT(resolve("paper").model)  # vocab 50,257 as in the paper
    state = model.state_dict()
    assert model.num_params() == 51_045_888
    assert scope_size(state, "trunk") == 25_165_824
    assert all(scope_size(state, f"block{l}") == 3_145_728 for l in range(8))
    assert scope_size(state, "block0+ln") == 3_147_776
    assert model.lm_head.weight.data_ptr() == model.tok_emb.weight.data_ptr()


def _manual_attention(attn, x):
    b, t, d = x.shape
    q, k, v = attn.qkv(x).split(d, dim=2)
    q, k, v = (z.view(b, t, attn.n_head, -1).transpose(1, 2) for z in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(torch.tril(torch.ones(t, t, dtype=torch.bool)).logical_not(), float("-inf"))
    y = F.softmax(scores, dim=-1) @ v
    return attn.out_proj(y.transpose(1, 2).reshape(b, t, d))


def test_sdpa_equals_manual_causal_attention():
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, d_model=32, n_head=4, d_ff=64, seq_len=16, vocab_size=50))
    x = torch.randn(3, 16, 32)
    attn = model.blocks[0].attn
    torch.testing.assert_close(attn(x), _manual_attention(attn, x), atol=1e-5, rtol=1e-5)


def test_causality_and_init():
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=2, d_model=32, n_head=2, d_ff=64, seq_len=16, vocab_size=50))
    idx = torch.randint(0, 50, (2, 16))
    idx2 = idx.clone()
    idx2[:, 10:] = (idx2[:, 10:] + 1) % 50
    # changing future tokens never changes earlier logits
    torch.testing.assert_close(model(idx)[:, :10], model(idx2)[:, :10])
    w = model.blocks[0].mlp.w_up.weight
    assert abs(w.std().item() - 0.02) < 0.003 and model.blocks[0].ln1.weight.eq(1).all()


def test_canonical_order_is_shared_by_params_and_grads():
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=2, d_model=16, n_head=2, d_ff=32, seq_len=8, vocab_size=20))
    keys = scope_keys(model.state_dict().keys(), "block1")
    assert keys == sorted(keys) and keys[0].endswith("attn.out_proj.weight")
    # gradient of 0.5*|theta|^2 is theta itself: both flattenings must agree coordinate by coordinate
    loss = sum(0.5 * (p ** 2).sum() for p in model.parameters())
    loss.backward()
    torch.testing.assert_close(grad_vector(model, keys), flatten(model.state_dict(), keys))
