"""Story corpora (TinyStories from the hub or local files, or an offline generated corpus) and token caches.

Sources, all returning a list of story strings (`load_stories`):
  * "hub":      roneneldan/TinyStories through `datasets` (splits "train" / "validation"); needs network or the
                local HF cache with HF_HUB_OFFLINE=1.
  * a path:     a TinyStories text dump (stories separated by <|endoftext|>; a single file holds no split, so
                every 20th story is validation and the rest training, see split_description), a directory holding
                TinyStories-train.txt / TinyStories-valid.txt (or *train* / *valid* .parquet/.jsonl/.json files,
                as in a snapshot of the hub repository), or a single .jsonl/.json/.parquet file with a "text" column.
  * "embedded": simple children's stories from a fixed grammar (data/stories.py); works anywhere, offline.

Token caches: `cached_tokens` tokenizes a source once into <cache>/<key>.tokens.npy (all stories concatenated,
no separators) + <key>.offsets.npy (story boundaries) and memory-maps them afterwards (`TokenCache`).

Usage:
    tok = get_embedded_tokenizer()   # drift.data.tokenizer
    train = cached_tokens("embedded", "train", 60_000, tok, default_cache_dir())
    train.story(0)   # np.ndarray of token ids
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Iterator, Sequence
from urllib.parse import urlparse

import numpy as np

from drift.atomic import atomic_path
from drift.bootstrap import default_cache_dir
from drift.data.stories import GRAMMAR_VERSION, SPLIT_INDEX, embedded_seed, generate_stories
from drift.data.tokenizer import Tokenizer, tokenizer_fingerprint

HUB_DATASET = "roneneldan/TinyStories"
STORY_SEPARATOR = "<|endoftext|>"

_FETCH_HINT = ("download TinyStories on a machine with internet and pass data_source=/path/to/TinyStories, "
               "or use data_source=embedded")


class DataUnavailableError(RuntimeError):
    """A story source cannot be read (no network for the hub, a missing path, an unreadable file)."""


# --------------------------------------------------------------------------------------------------------------
# Story sources
# --------------------------------------------------------------------------------------------------------------

def load_stories(source: str, split: str, n: int, min_chars: int = 40, seed: int = 0) -> list[str]:
    """The first n stories of `split` ("train" | "validation") from `source` ("embedded" | "hub" | a local path),
    with stories shorter than min_chars dropped afterwards (so the result may hold fewer than n). `seed` only
    matters for the embedded corpus."""
    if split not in SPLIT_INDEX:
        raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
    if source == "embedded":
        stories = generate_stories(n, embedded_seed(split, seed))
    elif source == "hub":
        stories = _load_hub(split, n)
    else:
        stories = _load_local(Path(source).expanduser(), split, n)
    return [s for s in stories if len(s) >= min_chars]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout: float = 5.0) -> bool:
    """One quick TCP connection, because datasets retries a dead network for about half a minute per call."""
    from huggingface_hub import constants
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hub(split: str, n: int) -> list[str]:
    """Streams the first n stories (a small slice of the split) unless offline mode asks for the local HF cache."""
    try:
        import datasets
    except ImportError as exc:
        raise DataUnavailableError(
            f"source 'hub' needs the datasets package (pip install datasets), or {_FETCH_HINT}") from exc
    offline = _env_flag("HF_HUB_OFFLINE") or _env_flag("HF_DATASETS_OFFLINE")
    if not offline and not _hub_reachable():
        raise DataUnavailableError(f"source 'hub' ({HUB_DATASET}): cannot reach the Hugging Face hub; {_FETCH_HINT}")
    try:
        if offline:
            ds = datasets.load_dataset(HUB_DATASET, split=split)
            rows = ds.select(range(min(n, len(ds))))
        else:
            rows = datasets.load_dataset(HUB_DATASET, split=split, streaming=True).take(n)
        return [row["text"] for row in rows]
    except Exception as exc:  # datasets raises many types (connection, file-not-found, offline-mode errors)
        raise DataUnavailableError(
            f"source 'hub' ({HUB_DATASET}, split {split}) failed with {type(exc).__name__}; {_FETCH_HINT}") from exc


_DIR_TEXT_FILES = {"train": "TinyStories-train.txt", "validation": "TinyStories-valid.txt"}
_DIR_SPLIT_WORDS = {"train": "train", "validation": "valid"}  # hub snapshots name shards train-*/validation-*
_TABLE_SUFFIXES = (".parquet", ".jsonl", ".json")


# A single file holds no split: story i goes to validation when i % SINGLE_FILE_VAL_EVERY == VAL_EVERY - 1, else to
# train, so the two sets are disjoint (the first validation stories are not the first training stories).
SINGLE_FILE_VAL_EVERY = 20


def split_description(source: str) -> str:
    """How the train and validation stories of `source` are kept apart (recorded in run.json and the log)."""
    if source == "embedded":
        return "embedded: train and validation stories come from separate generator streams"
    if source == "hub":
        return f"hub: the train and validation splits of {HUB_DATASET}"
    path = Path(source).expanduser()
    if path.is_file():
        k = SINGLE_FILE_VAL_EVERY
        return (f"single file {path.name}: every {k}th story (index i with i % {k} == {k - 1}) is validation, "
                f"the others are training; the two sets are disjoint")
    return f"directory {path}: its train and validation files"


def _single_file_split(path: Path, split: str, n: int) -> list[str]:
    """The first n stories of one split of a single file, under the every-20th rule."""
    k = SINGLE_FILE_VAL_EVERY
    keep = (lambda i: i % k == k - 1) if split == "validation" else (lambda i: i % k != k - 1)
    if path.suffix in _TABLE_SUFFIXES:
        # enough rows for n stories of this split (the ratio is k-1 : 1)
        need = n * k if split == "validation" else n + n // (k - 1) + 1
        rows = _read_tables([path], need)
        return [t for i, t in enumerate(rows) if keep(i)][:n]
    out = []
    for i, story in enumerate(_iter_text_dump(path)):
        if len(out) >= n:
            break
        if keep(i):
            out.append(story)
    return out


def _load_local(path: Path, split: str, n: int) -> list[str]:
    if not path.exists():
        raise DataUnavailableError(f"data source {str(path)!r} does not exist; {_FETCH_HINT}")
    if path.is_file():
        return _single_file_split(path, split, n)
    text_file = path / _DIR_TEXT_FILES[split]
    if text_file.is_file():
        return _read_text_dump(text_file, n)
    for suffix in _TABLE_SUFFIXES:  # one format only: datasets builds from files of a single type
        tables = sorted(glob.glob(str(path / "**" / f"*{_DIR_SPLIT_WORDS[split]}*{suffix}"), recursive=True))
        if tables:
            return _read_tables([Path(t) for t in tables], n)
    raise DataUnavailableError(
        f"data source {str(path)!r} has neither {_DIR_TEXT_FILES[split]} nor *{_DIR_SPLIT_WORDS[split]}* "
        f".parquet/.jsonl/.json files; {_FETCH_HINT}")


def _iter_text_dump(path: Path, chunk_chars: int = 1 << 20) -> Iterator[str]:
    """Stories of a <|endoftext|>-separated dump, read piecewise so that n stories of a 2 GB file are cheap."""
    pending = ""
    with open(path, encoding="utf-8", errors="replace") as f:
        while chunk := f.read(chunk_chars):
            pending += chunk
            *complete, pending = pending.split(STORY_SEPARATOR)
            for story in complete:
                if story.strip():
                    yield story.strip()
    if pending.strip():
        yield pending.strip()


def _read_text_dump(path: Path, n: int) -> list[str]:
    stories = []
    for story in _iter_text_dump(path):
        if len(stories) >= n:
            break
        stories.append(story)
    return stories


def _read_tables(files: Sequence[Path], n: int) -> list[str]:
    """.jsonl/.json/.parquet files with a "text" column, through datasets' local builders."""
    try:
        import datasets
    except ImportError as exc:
        raise DataUnavailableError(f"reading {files[0]} needs the datasets package: pip install datasets") from exc
    builder = "parquet" if files[0].suffix == ".parquet" else "json"
    try:
        ds = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train")
    except Exception as exc:
        raise DataUnavailableError(f"could not read {files[0]} ({type(exc).__name__}: {exc}); {_FETCH_HINT}") from exc
    if "text" not in ds.column_names:
        raise DataUnavailableError(f"{files[0]} has no 'text' column (columns: {ds.column_names})")
    return list(ds.select(range(min(n, len(ds))))["text"])


# --------------------------------------------------------------------------------------------------------------
# Token caches
# --------------------------------------------------------------------------------------------------------------

class TokenCache:
    """Stories as one flat token array plus offsets (story i = tokens[offsets[i]:offsets[i+1]])."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        if offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != len(tokens):
            raise ValueError("offsets must start at 0 and end at len(tokens)")
        self.tokens = tokens
        self.offsets = offsets

    @staticmethod
    def paths(path_prefix: str | os.PathLike) -> tuple[Path, Path]:
        prefix = str(path_prefix)
        return Path(prefix + ".tokens.npy"), Path(prefix + ".offsets.npy")

    @classmethod
    def exists(cls, path_prefix: str | os.PathLike) -> bool:
        return all(p.is_file() for p in cls.paths(path_prefix))

    @classmethod
    def open(cls, path_prefix: str | os.PathLike) -> "TokenCache":
        """Memory-mapped, read-only."""
        tokens_path, offsets_path = cls.paths(path_prefix)
        return cls(np.load(tokens_path, mmap_mode="r"), np.load(offsets_path, mmap_mode="r"))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    def story(self, i: int) -> np.ndarray:
        return self.tokens[int(self.offsets[i]):int(self.offsets[i + 1])]


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.save appends no ".npy" to the name
        np.save(f, array)


def build_token_cache(stories: Sequence[str], tokenizer: Tokenizer, path_prefix: str | os.PathLike) -> TokenCache:
    """Tokenizes the stories (no separators) and writes <prefix>.tokens.npy and <prefix>.offsets.npy atomically;
    offsets are written last, so a cache whose two files both exist is complete."""
    encoded = tokenizer.encode_batch(list(stories))
    dtype = np.uint16 if tokenizer.vocab_size < 2 ** 16 else np.uint32
    lengths = np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.fromiter((i for ids in encoded for i in ids), dtype=dtype, count=int(offsets[-1]))
    tokens_path, offsets_path = TokenCache.paths(path_prefix)
    tokens_path.parent.mkdir(parents=True, exist_ok=True)
    if offsets_path.exists():  # never leave new tokens next to stale offsets
        offsets_path.unlink()
    _save_npy_atomic(tokens_path, tokens)
    _save_npy_atomic(offsets_path, offsets)
    return TokenCache.open(path_prefix)


def _local_signature(path: Path) -> list:
    """(name, size, mtime) of the local files, so that edited or replaced files invalidate the cache."""
    if not path.exists():
        return []
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [(str(p.relative_to(path)) if p != path else p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in files]


def token_cache_key(source: str, split: str, n: int, tokenizer: Tokenizer, min_chars: int = 40,
                    seed: int = 0) -> str:
    """File-name-safe key naming everything the cached tokens depend on."""
    files = None
    if source not in ("embedded", "hub"):
        source = str(Path(source).expanduser().resolve())
        files = _local_signature(Path(source))
    spec = {"source": source, "split": split, "n": n, "min_chars": min_chars, "seed": seed,
            "tokenizer": tokenizer.name, "vocab": tokenizer_fingerprint(tokenizer),
            "grammar": GRAMMAR_VERSION if source == "embedded" else None, "files": files}
    if files is not None and Path(source).is_file():  # token caches made before the disjoint split must not be reused
        spec["single_file_val_every"] = SINGLE_FILE_VAL_EVERY
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    label = source if source in ("embedded", "hub") else Path(source).name or "local"
    label = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40]
    return f"{label}_{split}_{n}_{tokenizer.name}_{digest}"


def cached_tokens(source: str, split: str, n: int, tokenizer: Tokenizer, cache_dir: str | os.PathLike | None,
                  min_chars: int = 40, seed: int = 0) -> TokenCache:
    """The token cache of load_stories(source, split, n, min_chars, seed), built on first use, then reused."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    prefix = cache_dir / "tokens" / token_cache_key(source, split, n, tokenizer, min_chars, seed)
    if TokenCache.exists(prefix):
        return TokenCache.open(prefix)
    stories = load_stories(source, split, n, min_chars=min_chars, seed=seed)
    if not stories:
        raise DataUnavailableError(f"data source {source!r} ({split}) gave no stories of >= {min_chars} chars")
    return build_token_cache(stories, tokenizer, prefix)
