"""Training mini-batches and the fixed validation crops.

A training micro-batch is a pure function of (seed, step, micro-batch index): the story order is a per-epoch
permutation drawn from a torch generator seeded with the run seed (drop-last batching, as a shuffling DataLoader
with 0 workers would give), and crops and probe injection use a numpy generator seeded with (seed, step, micro).
So resuming needs no loader state, and a resumed run sees exactly the batches an uninterrupted one would.

    batches = TrainBatches(train_cache, task, cfg.train, seq_len)
    x, y, probe_mask = batches.get(step, micro)
"""
from __future__ import annotations

import numpy as np
import torch

from drift.config import TrainConfig
from drift.data.probe import ProbeTask, collate, plain_sequence, probe_sequence


class TrainBatches:
    def __init__(self, stories, task: ProbeTask, t: TrainConfig, seq_len: int, stream: int = 0):
        """`stories` is a TokenCache (len() and .story(i)); `stream` separates independent batch streams
        (0 = training; analyses use other streams for "fresh" batches)."""
        self.stories, self.task, self.t, self.length = stories, task, t, seq_len + 1
        self.per_epoch = len(stories) // t.micro_batch
        if self.per_epoch == 0:
            raise ValueError(f"{len(stories)} stories cannot fill one micro-batch of {t.micro_batch}")
        self.stream = stream
        self._perm_epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            gen = torch.Generator().manual_seed(self.t.seed * 1_000_003 + epoch * 7919 + self.stream)
            self._perm, self._perm_epoch = torch.randperm(len(self.stories), generator=gen), epoch
        return self._perm

    def story_ids(self, step: int, micro: int) -> torch.Tensor:
        index = (step - 1) * self.t.grad_accum + micro  # global micro-batch number, 0-based
        epoch, pos = divmod(index, self.per_epoch)
        return self._permutation(epoch)[pos * self.t.micro_batch:(pos + 1) * self.t.micro_batch]

    def get(self, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.t.seed, self.stream, step, micro])
        gap = (self.t.gap_in_min, self.t.gap_in_max)
        seqs = []
        for i in self.story_ids(step, micro).tolist():
            story = np.asarray(self.stories.story(i))
            if rng.random() < self.t.p_probe:
                seqs.append(probe_sequence(story, self.length, self.task, gap, rng))
            else:
                seqs.append(plain_sequence(story, self.length, self.task.eos_id, rng))
        return collate(seqs)


def validation_batches(stories, t: TrainConfig, seq_len: int, eos_id: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed crops of the first val_batches * val_batch_size validation stories, drawn once from seed + 300, so
    the validation loss carries no crop noise between evals."""
    rng = np.random.default_rng(t.seed + 300)
    n = min(len(stories), t.val_batches * t.val_batch_size)
    seqs = [plain_sequence(np.asarray(stories.story(i)), seq_len + 1, eos_id, rng) for i in range(n)]
    out = []
    for start in range(0, n, t.val_batch_size):
        x, y, _ = collate(seqs[start:start + t.val_batch_size])
        out.append((x, y))
    return out
