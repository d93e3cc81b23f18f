"""The long-range key-retrieval probe (PROTOCOL section 2).

A KEY sentence states a codeword ("The secret code is QUOKKA."); after a gap of g tokens a QUERY asks for it and
ends with the codeword itself, which is the target. Training injects probes into stories with probability p_probe
and gaps in [gap_in_min, gap_in_max]; p_in / p_ood are exact-match accuracies on fixed sets built from random filler
tokens with in-distribution gaps and with much longer (out-of-distribution) gaps.

    task = ProbeTask(tokenizer, codewords)
    evalset = build_eval_set(task, n=2000, gap=(80, 200), seed=seed + 200, seq_len=256)
    acc, nll = probe_accuracy(model, evalset, device)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Five fixed KEY/QUERY pairs; the query ends with the codeword, which is what the model must produce.
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("The secret code is {c}.", "What is the secret code? {c}"),
    ("Remember the word {c}.", "What was the word? {c}"),
    ("The special word is {c}.", "Which word is special? {c}"),
    ("The password is {c}.", "What is the password? {c}"),
    ("The magic word is {c}.", "The magic word was {c}"),
)


class ProbeTask:
    """Pre-tokenized KEY/QUERY token lists for every (template, codeword) pair."""

    def __init__(self, tokenizer, codewords: list[str]):
        if len(set(codewords)) != len(codewords):
            raise ValueError("codewords must be unique")
        self.codewords = list(codewords)
        self.eos_id = tokenizer.eos_id
        self.n_target = [len(tokenizer.encode(" " + c)) for c in codewords]
        # A leading space makes each sentence tokenize as it would mid-story.
        self.keys = [[np.array(tokenizer.encode(" " + k.format(c=c)), dtype=np.int64) for c in codewords]
                     for k, _ in TEMPLATES]
        self.queries = [[np.array(tokenizer.encode(" " + q.format(c=c)), dtype=np.int64) for c in codewords]
                        for _, q in TEMPLATES]

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        """(KEY ids, QUERY ids, number of codeword tokens at the end of QUERY)."""
        c = int(rng.integers(len(self.codewords)))
        k = int(rng.integers(len(TEMPLATES)))
        return self.keys[k][c], self.queries[k][c], self.n_target[c]


@dataclass
class Sequence:
    """One training sequence of seq_len + 1 tokens, with what the loss ignores and where the probe targets are."""
    tokens: np.ndarray      # (seq_len + 1,) int64
    n_real: int             # tokens before the trailing EOS padding
    probe_targets: tuple[int, int] | None  # [start, end) in target (shifted) coordinates, or None


def plain_sequence(story: np.ndarray, length: int, eos: int, rng: np.random.Generator) -> Sequence:
    """A random contiguous crop of a long story, or the story right-padded with EOS."""
    if len(story) >= length:
        start = int(rng.integers(len(story) - length + 1))
        return Sequence(story[start:start + length].astype(np.int64), length, None)
    tokens = np.full(length, eos, dtype=np.int64)
    tokens[:len(story)] = story
    return Sequence(tokens, len(story), None)


def probe_sequence(story: np.ndarray, length: int, task: ProbeTask, gap: tuple[int, int],
                   rng: np.random.Generator) -> Sequence:
    """[story prefix p][KEY][g story tokens][QUERY][rest of the story][EOS pad]; falls back to plain when short."""
    key, query, n = task.sample(rng)
    g = int(rng.integers(gap[0], gap[1] + 1))
    budget = length - (len(key) + g + len(query))
    if budget < 10:
        return plain_sequence(story, length, task.eos_id, rng)
    p = int(rng.integers(2, max(3, budget // 3) + 1))
    gap_tokens = story[p:p + g]
    if len(gap_tokens) < g:  # a short story: EOS fills the gap
        gap_tokens = np.concatenate([gap_tokens, np.full(g - len(gap_tokens), task.eos_id)])
    parts = [story[:p], key, gap_tokens, query]
    q_end = sum(len(x) for x in parts)
    body = np.concatenate(parts + [story[p + g:]]).astype(np.int64)[:length]
    tokens = np.full(length, task.eos_id, dtype=np.int64)
    tokens[:len(body)] = body
    # The codeword tokens are QUERY's last n; token i is predicted at target position i - 1.
    return Sequence(tokens, len(body), (q_end - n - 1, q_end - 1))


def collate(seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> inputs (b, L), targets (b, L) with -100 on padding, probe mask (b, L) bool."""
    tokens = torch.from_numpy(np.stack([s.tokens for s in seqs]))
    x, y = tokens[:, :-1].clone(), tokens[:, 1:].clone()
    n_real = torch.tensor([s.n_real for s in seqs])
    pos = torch.arange(y.shape[1])
    y[pos[None, :] + 1 >= n_real[:, None]] = -100  # a target that is padding is not scored
    mask = torch.zeros_like(y, dtype=torch.bool)
    for i, s in enumerate(seqs):
        if s.probe_targets is not None:
            mask[i, s.probe_targets[0]:s.probe_targets[1]] = True
    return x, y, mask


@dataclass
class EvalSet:
    inputs: torch.Tensor    # (n, seq_len) int64, EOS-padded
    targets: torch.Tensor   # (n, seq_len) int64, -100 except at the codeword positions
    lengths: torch.Tensor   # (n,) real length, so batches can be cut to their longest example
    gap: tuple[int, int]
    seed: int


def build_eval_set(task: ProbeTask, n: int, gap: tuple[int, int], seed: int, seq_len: int,
                   filler_ids: np.ndarray) -> EvalSet:
    """[filler prefix of 2..10][KEY][g filler][QUERY][EOS pad] with filler drawn uniformly from filler_ids."""
    rng = np.random.default_rng(seed)
    inputs = torch.full((n, seq_len), task.eos_id, dtype=torch.int64)
    targets = torch.full((n, seq_len), -100, dtype=torch.int64)
    lengths = torch.zeros(n, dtype=torch.int64)
    for i in range(n):
        key, query, n_tgt = task.sample(rng)
        g = int(rng.integers(gap[0], gap[1] + 1))
        prefix = rng.choice(filler_ids, size=int(rng.integers(2, 11)))
        seq = np.concatenate([prefix, key, rng.choice(filler_ids, size=g), query])
        if len(seq) > seq_len:
            raise ValueError(f"probe eval sequence of {len(seq)} tokens does not fit seq_len={seq_len}; "
                             f"lower gap_ood_max")
        inputs[i, :len(seq)] = torch.from_numpy(seq)
        # The last n_tgt tokens (the codeword) are predicted from the positions just before them.
        targets[i, len(seq) - n_tgt - 1:len(seq) - 1] = inputs[i, len(seq) - n_tgt:len(seq)]
        lengths[i] = len(seq)
    # Stored shortest first: evaluation cuts each batch to its longest example, so similar lengths share a batch.
    order = torch.argsort(lengths, stable=True)
    return EvalSet(inputs[order], targets[order], lengths[order], gap, seed)


@torch.no_grad()
def probe_accuracy(model, evalset: EvalSet, device, batch_size: int = 128, autocast=None) -> tuple[float, float]:
    """(exact-match accuracy, mean NLL per codeword token). Only scored positions go through the head."""
    correct, nll_sum, n_tokens = 0, 0.0, 0
    for start in range(0, len(evalset.inputs), batch_size):
        sl = slice(start, start + batch_size)
        t = int(evalset.lengths[sl].max())  # causal: cutting trailing padding changes nothing
        x = evalset.inputs[sl, :t].to(device)
        y = evalset.targets[sl, :t].to(device)
        with autocast() if autocast else contextlib.nullcontext():
            h = model.hidden(x)
        mask = y != -100
        logits = model.lm_head(h[mask].float()).float()
        tgt = y[mask]
        nll_sum += F.cross_entropy(logits, tgt, reduction="sum").item()
        n_tokens += int(mask.sum())
        hit = torch.zeros_like(y, dtype=torch.bool)
        hit[mask] = logits.argmax(-1) == tgt
        # exact match: every scored position of the example is right
        correct += int(((hit | ~mask).all(dim=1)).sum())
    return correct / len(evalset.inputs), nll_sum / max(1, n_tokens)
