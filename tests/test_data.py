"""Tests for the story corpora, the tokenizers, the codeword selection and the token caches.

Run: python -m pytest tests/test_data.py -q
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from drift.data import corpus
from drift.run import checkpoint as ck
from drift.data.corpus import (SINGLE_FILE_VAL_EVERY, DataUnavailableError, TokenCache, build_token_cache, cached_tokens,
                               load_stories, split_description)
from drift.data.stories import generate_stories
from drift.data.tokenizer import (EOS_TEXT, FALLBACK_CODEWORDS, EmbeddedTokenizer, Gpt2Tokenizer, Tokenizer,
                                  TokenizerUnavailableError, get_embedded_tokenizer, get_tokenizer, select_codewords)

VOCAB_STORIES = 2000


@pytest.fixture(scope="module")
def tok() -> EmbeddedTokenizer:
    return EmbeddedTokenizer.build(generate_stories(VOCAB_STORIES, 0))


# --- the embedded corpus ------------------------------------------------------------------------------------

def test_generate_stories_is_deterministic_and_prefix_stable():
    a = generate_stories(300, seed=5)
    assert a == generate_stories(300, seed=5)
    assert generate_stories(40, seed=5) == a[:40]
    assert generate_stories(300, seed=6) != a
    assert len(set(a)) == len(a)


def test_generated_stories_look_like_simple_stories():
    stories = generate_stories(500, seed=1)
    lengths = [len(s) for s in stories]
    assert min(lengths) >= 40 and max(lengths) < 2000
    text = " ".join(stories)
    # No all-caps words of >= 4 letters: those are reserved for the probe's codewords.
    assert not re.findall(r"\b[A-Z]{4,}\b", text)
    assert '"' in text and " because " in text and " so " in text
    words = re.findall(r"[A-Za-z]+", text)
    lowercase = sum(w.islower() for w in words) / len(words)
    assert lowercase > 0.8
    # The hero's name comes back later in the story (long-range consistency, not word salad).
    for story in stories[:50]:
        first_name = re.search(r"named ([A-Z][a-z]+)|called ([A-Z][a-z]+)|name was ([A-Z][a-z]+)", story)
        if first_name:
            name = next(g for g in first_name.groups() if g)
            assert story.count(name) >= 2, story


def test_embedded_train_and_validation_differ():
    train = load_stories("embedded", "train", 200)
    val = load_stories("embedded", "validation", 200)
    assert len(train) == len(val) == 200
    assert not set(train) & set(val)
    assert load_stories("embedded", "train", 200, seed=1) != train
    with pytest.raises(ValueError):
        load_stories("embedded", "test", 10)


# --- the embedded tokenizer ---------------------------------------------------------------------------------

def test_embedded_tokenizer_round_trips_any_text(tok):
    assert isinstance(tok, Tokenizer)
    for story in generate_stories(50, seed=3):
        ids = tok.encode(story)
        assert tok.decode(ids) == story
        assert len(ids) < len(story) / 3  # word-level, not characters
    odd = 'Hi  there!\n\n\tsnake_case 123 "quote" xyzzyq — café 日本 <|endoftext|> \r\n  '
    assert tok.decode(tok.encode(odd)) == odd
    assert tok.encode("") == [] and tok.decode([]) == ""
    assert EOS_TEXT not in [tok.id_to_piece(i) for i in tok.encode(EOS_TEXT)]  # no special tokens from text


def test_embedded_tokenizer_pieces(tok):
    assert tok.eos_id == 0 and tok.id_to_piece(0) == EOS_TEXT
    assert 2000 < tok.vocab_size <= 4096
    assert tok.encode(" cat") == [tok.encode(" cat")[0]] and tok.id_to_piece(tok.encode(" cat")[0]) == "Ġcat"
    reserved = [p for p in map(tok.id_to_piece, range(tok.vocab_size)) if re.fullmatch(r"Ġ[A-Z]{4,}", p)]
    assert len(reserved) >= 600
    assert EmbeddedTokenizer.build(generate_stories(200, 0), vocab_size=1000).vocab_size == 1000


def test_embedded_tokenizer_is_deterministic_and_serializable(tok, tmp_path):
    again = EmbeddedTokenizer.build(generate_stories(VOCAB_STORIES, 0))
    pieces = [tok.id_to_piece(i) for i in range(tok.vocab_size)]
    assert [again.id_to_piece(i) for i in range(again.vocab_size)] == pieces
    tok.save(tmp_path / "tok.json")
    loaded = EmbeddedTokenizer.load(tmp_path / "tok.json")
    assert [loaded.id_to_piece(i) for i in range(loaded.vocab_size)] == pieces
    story = generate_stories(1, seed=9)[0]
    assert loaded.encode(story) == tok.encode(story)


def test_get_embedded_tokenizer_is_cached(tmp_path):
    first = get_embedded_tokenizer(tmp_path, n_stories=300, seed=0)
    files = list(tmp_path.glob("embedded_tokenizer_*.json"))
    assert len(files) == 1
    second = get_embedded_tokenizer(tmp_path, n_stories=300, seed=0)
    assert second.encode("Lily had a red ball.") == first.encode("Lily had a red ball.")
    assert get_tokenizer("embedded", cache_dir=tmp_path, corpus_texts=None).vocab_size > 0
    with pytest.raises(ValueError):
        get_tokenizer("bert")


# --- codewords ----------------------------------------------------------------------------------------------

def test_select_codewords_gives_512_single_token_words(tok):
    words = select_codewords(tok, n=512)
    assert len(words) == 512 == len(set(words))
    for w in words:
        assert re.fullmatch(r"[A-Z]{4,}", w)
        assert len(tok.encode(" " + w)) == 1
    other = EmbeddedTokenizer.build(generate_stories(300, 0))
    assert select_codewords(other, n=512) == words  # the reserved block does not depend on the corpus
    assert select_codewords(tok, n=100) == words[:100]


def test_select_codewords_ignores_hash_seed():
    code = ("from drift.data.stories import generate_stories; from drift.data.tokenizer import EmbeddedTokenizer, "
            "select_codewords; print(','.join(select_codewords(EmbeddedTokenizer.build(generate_stories(100, 0)))))")
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outputs.add(out.stdout)
    assert len(outputs) == 1


class _StubTokenizer:
    """A whole-word vocabulary: a string is one token if it is a piece, else one token per character."""
    name, eos_id = "stub", 0

    def __init__(self, words: list[str]):
        self.pieces = ["<eos>"] + [chr(c) for c in range(32, 127)] + words
        self.vocab_size = len(self.pieces)
        self._ids = {p.replace("Ġ", " "): i for i, p in enumerate(self.pieces)}

    def encode(self, text):
        if text in self._ids:
            return [self._ids[text]]
        if text[:1] == " " and text[1:] in self._ids:
            return [self._ids[" "], self._ids[text[1:]]]
        return [self._ids[c] for c in text]

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]

    def decode(self, ids):
        return "".join(self.pieces[i].replace("Ġ", " ") for i in ids)

    def id_to_piece(self, i):
        return self.pieces[i]


def test_select_codewords_fallbacks():
    # Tier 1: " W" is one token and W has >= 4 capitals (QUIZ, ALPHA, BETA; the duplicate QUIZ counts once).
    # " ZOOM" and " ZEBRA" are two tokens. Tier 2 adds 3-letter words (CAT, DOG); "AB" is too short.
    # Tier 3 adds fixed-list words of <= 2 tokens: ZEBRA, but not ZOOM, which is not on the list.
    stub = _StubTokenizer(["ĠQUIZ", "ĠQUIZ", "ZOOM", "ZEBRA", "ĠCAT", "ĠDOG", "ĠAB", "Ġmixed", "ĠMiXED",
                           "ĠALPHA", "ĠBETA"])
    assert sorted(select_codewords(stub, n=3)) == ["ALPHA", "BETA", "QUIZ"]
    assert sorted(select_codewords(stub, n=5)) == ["ALPHA", "BETA", "CAT", "DOG", "QUIZ"]
    words = select_codewords(stub, n=8)
    assert sorted(words) == ["ALPHA", "BETA", "CAT", "DOG", "QUIZ", "ZEBRA"]
    assert "ZEBRA" in FALLBACK_CODEWORDS and select_codewords(stub, n=8) == words


# --- GPT-2 ---------------------------------------------------------------------------------------------------

def test_gpt2_tokenizer_either_works_or_explains():
    try:
        gpt2 = Gpt2Tokenizer()
    except TokenizerUnavailableError as exc:
        message = str(exc)
        assert "\n" not in message and "tokenizer=embedded" in message
        assert "TIKTOKEN_CACHE_DIR" in message and "make tokenizer" in message  # both ways to provide the files
        return
    assert gpt2.vocab_size == 50257 and gpt2.eos_id == 50256
    assert gpt2.id_to_piece(50256) == EOS_TEXT
    assert gpt2.decode(gpt2.encode(" Once upon a time")) == " Once upon a time"
    assert gpt2.id_to_piece(gpt2.encode(" the")[0]) == "Ġthe"


def test_gpt2_tokenizer_unavailable_without_files(tmp_path, monkeypatch):
    import tiktoken.load
    import tiktoken.registry

    def no_network(url):
        raise ConnectionError(f"network disabled in this test: {url}")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # empty: nothing cached
    monkeypatch.setenv("DRIFT_CACHE", str(tmp_path / "drift"))  # no ranks file in either drift cache
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    with pytest.raises(TokenizerUnavailableError, match="make tokenizer.*TIKTOKEN_CACHE_DIR"):
        get_tokenizer("gpt2")


# --- sources ---------------------------------------------------------------------------------------------------

STORIES = ["Lily had a red ball. She loved it very much, and she played with it every day.",
           "Short one.",
           "Tom went to the park.\nHe saw a big dog, and the dog wanted to play with him."]


def test_local_text_dump(tmp_path):
    dump = tmp_path / "stories.txt"
    dump.write_text(f"\n{corpus.STORY_SEPARATOR}\n".join(STORIES) + f"\n{corpus.STORY_SEPARATOR}\n")
    assert load_stories(str(dump), "train", 10) == [STORIES[0], STORIES[2]]  # the short one is dropped
    assert load_stories(str(dump), "train", 10, min_chars=1) == STORIES
    assert load_stories(str(dump), "train", 2, min_chars=1) == STORIES[:2]
    # Separators split across read chunks are still found.
    assert list(corpus._iter_text_dump(dump, chunk_chars=5)) == STORIES


def test_local_directory_of_dumps(tmp_path):
    (tmp_path / "TinyStories-train.txt").write_text(corpus.STORY_SEPARATOR.join(STORIES))
    (tmp_path / "TinyStories-valid.txt").write_text(STORIES[2])
    assert load_stories(str(tmp_path), "train", 5) == [STORIES[0], STORIES[2]]
    assert load_stories(str(tmp_path), "validation", 5) == [STORIES[2]]


def test_local_jsonl_file_and_shards(tmp_path):
    lines = "\n".join(json.dumps({"text": s, "id": i}) for i, s in enumerate(STORIES))
    (tmp_path / "stories.jsonl").write_text(lines)
    assert load_stories(str(tmp_path / "stories.jsonl"), "train", 10) == [STORIES[0], STORIES[2]]
    shards = tmp_path / "snapshot" / "data"
    shards.mkdir(parents=True)
    (shards / "train-00000.jsonl").write_text(lines)
    (shards / "validation-00000.jsonl").write_text(json.dumps({"text": STORIES[0]}))
    assert load_stories(str(tmp_path / "snapshot"), "validation", 10) == [STORIES[0]]
    assert load_stories(str(tmp_path / "snapshot"), "train", 1) == [STORIES[0]]


def test_unavailable_sources_raise_actionable_errors(tmp_path, monkeypatch):
    with pytest.raises(DataUnavailableError, match="data_source=embedded") as missing:
        load_stories(str(tmp_path / "nowhere"), "train", 10)
    assert "nowhere" in str(missing.value) and "\n" not in str(missing.value)
    with pytest.raises(DataUnavailableError, match="TinyStories-train.txt"):
        load_stories(str(tmp_path), "train", 10)  # a directory without story files
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(corpus, "_hub_reachable", lambda timeout=5.0: False)
    with pytest.raises(DataUnavailableError, match="hub.*data_source=/path/to/TinyStories"):
        load_stories("hub", "validation", 10)


# --- token caches ----------------------------------------------------------------------------------------------

def test_token_cache_round_trip(tok, tmp_path):
    stories = generate_stories(120, seed=2)
    cache = build_token_cache(stories, tok, tmp_path / "c")
    assert (tmp_path / "c.tokens.npy").is_file() and (tmp_path / "c.offsets.npy").is_file()
    assert not list(tmp_path.glob("*.tmp*"))
    opened = TokenCache.open(tmp_path / "c")
    assert isinstance(opened.tokens, np.memmap) and opened.tokens.dtype == np.uint16
    assert opened.offsets.dtype == np.int64 and len(opened.offsets) == len(stories) + 1
    assert len(opened) == len(cache) == 120
    direct = tok.encode_batch(stories)
    assert opened.n_tokens == sum(len(ids) for ids in direct)
    for i in (0, 1, 57, 119):
        assert opened.story(i).tolist() == direct[i]


def test_cached_tokens_builds_once_and_keys_on_inputs(tok, tmp_path, monkeypatch):
    first = cached_tokens("embedded", "validation", 60, tok, tmp_path)
    files = sorted(p.name for p in (tmp_path / "tokens").iterdir())
    assert len(files) == 2

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have been reused")

    with monkeypatch.context() as m:
        m.setattr(corpus, "load_stories", fail)
        second = cached_tokens("embedded", "validation", 60, tok, tmp_path)
    assert np.array_equal(first.tokens, second.tokens) and np.array_equal(first.offsets, second.offsets)
    assert second.story(3).tolist() == tok.encode(load_stories("embedded", "validation", 60)[3])
    cached_tokens("embedded", "validation", 60, tok, tmp_path, seed=1)
    cached_tokens("embedded", "validation", 60, tok, tmp_path, min_chars=41)
    cached_tokens("embedded", "train", 60, tok, tmp_path)
    smaller = EmbeddedTokenizer.build(generate_stories(100, 0), vocab_size=1500)
    cached_tokens("embedded", "validation", 60, smaller, tmp_path)
    assert len(list((tmp_path / "tokens").iterdir())) == 2 * 5


def test_cached_tokens_of_a_local_file_follow_its_contents(tok, tmp_path):
    dump = tmp_path / "stories.txt"
    dump.write_text(corpus.STORY_SEPARATOR.join(STORIES))
    before = cached_tokens(str(dump), "train", 10, tok, tmp_path / "cache")
    assert len(before) == 2 and before.story(0).tolist() == tok.encode(STORIES[0])
    dump.write_text(STORIES[2] + " And then they went home together.")
    after = cached_tokens(str(dump), "train", 10, tok, tmp_path / "cache")
    assert len(after) == 1 and after.story(0).tolist() == tok.encode(STORIES[2] + " And then they went home together.")


# ---------------------------------------------------------------------------------------------------------------
# A single-file corpus is split into disjoint train and validation sets
# ---------------------------------------------------------------------------------------------------------------

def test_single_file_split_is_disjoint_and_recorded(tmp_path, tiny_run):
    stories = [f"Story number {i} is about a cat who finds a red ball in the garden." for i in range(100)]
    path = tmp_path / "stories.txt"
    path.write_text("<|endoftext|>".join(stories))
    train_part = load_stories(str(path), "train", 1000)
    val_part = load_stories(str(path), "validation", 1000)
    assert not set(train_part) & set(val_part)
    assert len(val_part) == 100 // SINGLE_FILE_VAL_EVERY and len(train_part) + len(val_part) == 100
    assert val_part[0] == stories[SINGLE_FILE_VAL_EVERY - 1] and train_part[:3] == stories[:3]
    assert "every 20th story" in split_description(str(path))
    assert "separate generator streams" in ck.read_json(tiny_run / "run.json")["data_split"]
