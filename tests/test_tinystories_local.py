"""TinyStories as distributed (TinyStories-train.txt / TinyStories-valid.txt, stories separated by <|endoftext|>
lines), end to end with the paper's GPT-2 tokenizer: a generated pair of files in exactly that format, read,
tokenized, cached, and trained on at the tiny scale.

Needs the GPT-2 files (`make tokenizer`); skipped without them unless DRIFT_REQUIRE_GPT2=1.
Run: DRIFT_REQUIRE_GPT2=1 python -m pytest tests/test_tinystories_local.py
"""
import json
import math

import numpy as np

from drift.run import checkpoint as ck
from drift.config import resolve
from drift.data.corpus import STORY_SEPARATOR, cached_tokens, load_stories
from drift.data.stories import generate_stories
from drift.train.trainer import train

# Paragraph breaks, curly quotes and a non-ASCII name, as in the real files; one story too short to keep.
EXTRA = ["Mia found a shell.\n\n“Look!” she said. “It’s so shiny.” Her mom smiled and said it was pretty.",
         "Zoë ran.", "The end of the day came, and Ben went home to sleep in his warm bed with his bear."]


def write_tinystories(root, n_train: int = 300, n_valid: int = 60) -> tuple[list[str], list[str]]:
    """Both files in the distributed layout: each story followed by a line holding only <|endoftext|>."""
    train_stories = EXTRA + generate_stories(n_train, seed=11)
    valid_stories = generate_stories(n_valid, seed=12)
    for name, stories in (("TinyStories-train.txt", train_stories), ("TinyStories-valid.txt", valid_stories)):
        (root / name).write_text("".join(f"{s}\n{STORY_SEPARATOR}\n" for s in stories), encoding="utf-8")
    return train_stories, valid_stories


def test_local_tinystories_end_to_end_with_gpt2(gpt2_tokenizer, tmp_path):
    data = tmp_path / "TinyStories"
    data.mkdir()
    train_stories, valid_stories = write_tinystories(data)
    kept = [s for s in train_stories if len(s) >= 40]
    assert load_stories(str(data), "train", 10_000) == kept and len(kept) == len(train_stories) - 1
    assert load_stories(str(data), "validation", 10_000) == valid_stories

    cache = tmp_path / "cache"
    tokens = cached_tokens(str(data), "train", 10_000, gpt2_tokenizer, cache)
    assert len(tokens) == len(kept)
    assert gpt2_tokenizer.decode(tokens.story(0).tolist()) == EXTRA[0]  # exact round trip, unicode included
    assert np.array_equal(tokens.story(1), gpt2_tokenizer.encode(EXTRA[2]))
    val = cached_tokens(str(data), "validation", 10_000, gpt2_tokenizer, cache)
    assert gpt2_tokenizer.decode(val.story(0).tolist()) == valid_stories[0]

    run = tmp_path / "run"
    cfg = resolve("tiny", seed=3, overrides={"data_source": str(data), "tokenizer": "gpt2", "cache_dir": str(cache),
                                             "total_steps": 10, "eval_every": 5, "ckpt_every": 5,
                                             "lambda_switch_step": 5, "n_train_stories": 10_000,
                                             "n_val_stories": 10_000,
                                             # 50,257-way logits dominate the tiny model's cost: keep batches small
                                             "micro_batch": 4, "grad_accum": 1, "n_probe_eval": 16,
                                             "val_batches": 1})
    info = train(cfg, run, progress=False)
    assert info["status"] == "finished"
    assert info["config"]["train"]["data_source"] == str(data) and info["config"]["model"]["vocab_size"] == 50257
    assert ck.list_steps(run) == [0, 1, 5, 10]
    metrics = ck.read_metrics(run)
    assert all(math.isfinite(r["val_loss"]) for r in metrics) and metrics[-1]["val_loss"] < metrics[0]["val_loss"]
    words = json.loads((run / "codewords.json").read_text())
    assert words["tokenizer"] == "gpt2" and len(words["codewords"]) == 512
