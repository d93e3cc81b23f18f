"""Probe injection layout, masks and the eval sets, on a toy tokenizer with known ids."""
import numpy as np
import torch

from drift.data.probe import ProbeTask, build_eval_set, collate, plain_sequence, probe_sequence


class ToyTokenizer:
    """Whitespace tokenizer over a fixed vocabulary; id 0 is EOS."""
    name, eos_id = "toy", 0

    def __init__(self, words):
        self.vocab = {w: i + 1 for i, w in enumerate(words)}
        self.vocab_size = len(words) + 1

    def encode(self, text):
        return [self.vocab[w] for w in text.replace(".", " .").replace("?", " ?").replace(":", " :").split()]


WORDS = ("the secret code is . what ? remember word was special which password magic "
         "ALPHA BRAVO a b c d e f g h").split()


def make_task():
    tok = ToyTokenizer([w.lower() if w not in ("ALPHA", "BRAVO") else w for w in WORDS] + ["The", "What",
                        "Remember", "Which", "is"])
    return tok, ProbeTask(tok, ["ALPHA", "BRAVO"])


def test_probe_sequence_layout_and_mask():
    tok, task = make_task()
    story = np.arange(100, 160)
    rng = np.random.default_rng(0)
    seq = probe_sequence(story, 65, task, (5, 8), rng)
    x, y, mask = collate([seq])
    assert x.shape == (1, 64) and mask.sum() == 1
    pos = int(mask[0].nonzero())
    codeword = int(y[0, pos])  # the target at the mask is the codeword that ends the query...
    assert codeword in (tok.vocab["ALPHA"], tok.vocab["BRAVO"])
    key_pos = [i for i in range(pos) if int(x[0, i]) == codeword]
    assert len(key_pos) == 1  # ...and it appeared exactly once before, in the KEY
    gap = pos - key_pos[0]
    assert gap > 5  # at least the g story tokens (plus the query template) separate key and query


def test_plain_sequence_pads_and_ignores():
    rng = np.random.default_rng(0)
    seq = plain_sequence(np.arange(1, 11), 17, eos=0, rng=rng)
    x, y, mask = collate([seq])
    assert (y[0, :9] == torch.arange(2, 11)).all() and (y[0, 9:] == -100).all() and not mask.any()
    long = plain_sequence(np.arange(1, 101), 17, eos=0, rng=rng)
    assert np.all(np.diff(long.tokens) == 1)  # a contiguous crop


def test_eval_set_targets_are_the_codeword():
    tok, task = make_task()
    filler = np.arange(100, 200)
    ev = build_eval_set(task, 50, (20, 30), seed=5, seq_len=64, filler_ids=filler)
    for i in range(50):
        tgt = ev.targets[i]
        pos = int((tgt != -100).nonzero())
        assert int(ev.inputs[i, pos + 1]) == int(tgt[pos]) and pos + 2 == int(ev.lengths[i])
    again = build_eval_set(task, 50, (20, 30), seed=5, seq_len=64, filler_ids=filler)
    assert torch.equal(ev.inputs, again.inputs)
