"""Everything a run needs besides the model and optimizer: device, tokenizer, token caches, codewords, training
batches, validation crops and the two probe eval sets. Built the same way by the trainer and by the analyses that
need fresh batches (gradients, Fisher), so both see one data pipeline.

    ctx = build_context(cfg, run_dir)     # writes codewords.json into run_dir on first use
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from drift.bootstrap import default_cache_dir
from drift.run import checkpoint as ck
from drift.data.batches import TrainBatches, validation_batches
from drift.config import Config, ConfigError, ModelConfig
from drift.data.corpus import cached_tokens
from drift.data.probe import EvalSet, ProbeTask, build_eval_set
from drift.data.tokenizer import get_tokenizer, select_codewords


@dataclass
class RunContext:
    cfg: Config
    run_dir: Path | None
    device: torch.device
    autocast: Callable
    tokenizer: object
    model_cfg: ModelConfig
    task: ProbeTask
    train_stories: object
    train_batches: TrainBatches
    val_batches: list
    eval_in: EvalSet
    eval_ood: EvalSet


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        if name == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device=cuda requested but CUDA is not available; use device=auto or device=cpu")
        if name == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("device=mps requested but MPS is not available; use device=auto or device=cpu")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_for(device: torch.device, amp: str) -> Callable:
    use_bf16 = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    if use_bf16:
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def cache_dir(cfg: Config) -> Path:
    """The config's cache_dir, else the cache root (drift.bootstrap.default_cache_dir: $DRIFT_CACHE or ~/.cache/drift)."""
    return Path(cfg.train.cache_dir) if cfg.train.cache_dir else default_cache_dir()


def filler_ids(tokenizer, exclude: set[int]) -> np.ndarray:
    """Random-filler pool of the probe eval sets. GPT-2: ids 100..5000 as in the paper. Other tokenizers: their
    ordinary lowercase word pieces (the paper's range would be byte tokens there). EOS and codeword ids are
    excluded, so filler never contains a codeword."""
    if tokenizer.name == "gpt2":
        ids = range(100, min(5000, tokenizer.vocab_size))
    else:
        ids = [i for i in range(tokenizer.vocab_size)
               if (w := tokenizer.id_to_piece(i).lstrip("\u0120")).isalpha() and w.islower() and len(w) > 1]
    return np.array([i for i in ids if i not in exclude], dtype=np.int64)


def eval_filler_ids(tokenizer, task: ProbeTask) -> np.ndarray:
    """The filler pool every probe eval set of a run draws from: without EOS and the codewords' last ids."""
    return filler_ids(tokenizer, {tokenizer.eos_id} | {int(q[-1]) for q in task.queries[0]})


def codewords_for(tokenizer, cfg: Config, run_dir: Path | None, words: list[str] | None = None) -> list[str]:
    words = words if words is not None else select_codewords(tokenizer, cfg.train.n_codewords)
    if run_dir is not None:
        path = run_dir / "codewords.json"
        if path.exists():
            saved = ck.read_json(path)["codewords"]
            if saved != words:
                raise ck.RunError(f"{path} differs from the codewords this tokenizer gives; the run was made with "
                                  f"another tokenizer or vocabulary")
        else:
            ck.atomic_write_json({"tokenizer": tokenizer.name, "codewords": words}, path)
    return words


def check_probe_fits(task: ProbeTask, cfg: Config) -> None:
    """The longest probe eval item (filler prefix of up to 10, KEY, gap_ood_max filler, QUERY) must fit seq_len;
    it depends on the tokenizer, so config.validate cannot check it."""
    longest = (10 + max(len(k) for ks in task.keys for k in ks) + cfg.train.gap_ood_max
               + max(len(q) for qs in task.queries for q in qs))
    if longest > cfg.model.seq_len:
        raise ConfigError(f"seq_len={cfg.model.seq_len} is too short for the longest probe eval item ({longest} "
                          f"tokens with gap_ood_max={cfg.train.gap_ood_max}); raise seq_len to at least {longest} "
                          f"or lower gap_ood_max")


def build_context(cfg: Config, run_dir=None, stream: int = 0) -> RunContext:
    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    np.random.seed(t.seed % 2**32)
    device = pick_device(t.device)
    cache = cache_dir(cfg)
    tokenizer = get_tokenizer(t.tokenizer, cache_dir=cache)
    common = dict(tokenizer=tokenizer, cache_dir=cache, min_chars=t.min_story_chars)
    train_stories = cached_tokens(t.data_source, "train", t.n_train_stories, **common)
    val_stories = cached_tokens(t.data_source, "validation", t.n_val_stories, **common)
    run_dir = Path(run_dir) if run_dir is not None else None
    task = ProbeTask(tokenizer, select_codewords(tokenizer, t.n_codewords))
    check_probe_fits(task, cfg)  # before codewords.json is written
    codewords_for(tokenizer, cfg, run_dir, task.codewords)
    cfg.model.vocab_size = tokenizer.vocab_size  # recorded in run.json and every checkpoint
    pool = eval_filler_ids(tokenizer, task)
    L = cfg.model.seq_len
    return RunContext(
        cfg=cfg, run_dir=run_dir, device=device, autocast=autocast_for(device, t.amp), tokenizer=tokenizer,
        model_cfg=cfg.model, task=task, train_stories=train_stories,
        train_batches=TrainBatches(train_stories, task, t, L, stream=stream),
        val_batches=validation_batches(val_stories, t, L, tokenizer.eos_id),
        eval_in=build_eval_set(task, t.n_probe_eval, (t.gap_in_min, t.gap_in_max), t.seed + 100, L, pool),
        eval_ood=build_eval_set(task, t.n_probe_eval, (t.gap_ood_min, t.gap_ood_max), t.seed + 200, L, pool),
    )
