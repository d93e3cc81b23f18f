"""The paper's tokenizer (GPT-2 BPE through tiktoken), offline: known ids, the special token, the vocabulary size,
the probe codewords of PROTOCOL section 2 on the real vocabulary, and the order in which its files are looked up.

Needs tiktoken's cached gpt2 files or the ranks file from `make tokenizer`; without them these tests skip, unless
DRIFT_REQUIRE_GPT2=1 (CI), where they fail.

Run: make tokenizer && DRIFT_REQUIRE_GPT2=1 python -m pytest tests/test_tokenizer_gpt2.py
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from drift import bootstrap
from drift.data.tokenizer import EOS_TEXT, Gpt2Tokenizer, select_codewords, tokenizer_fingerprint

ROOT = Path(__file__).resolve().parent.parent


def test_known_strings_encode_to_gpt2_ids(gpt2_tokenizer):
    tok = gpt2_tokenizer
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode("Once upon a time") == [7454, 2402, 257, 640]
    assert tok.encode(" the") == [262]
    text = "Lily saw a big dog.\nIt wagged its tail! 123"
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode_batch(["Hello world", " the"]) == [[15496, 995], [262]]


def test_vocabulary_and_eos(gpt2_tokenizer):
    tok = gpt2_tokenizer
    assert tok.vocab_size == 50257 and tok.eos_id == 50256
    assert tok.id_to_piece(50256) == EOS_TEXT and tok.decode([50256]) == EOS_TEXT
    assert tok.encode(EOS_TEXT) != [50256]  # encoded as plain text: no special tokens are added (PROTOCOL 2)
    assert tok.id_to_piece(262) == "Ġthe"


CODEWORDS = ("import json; from drift.data.tokenizer import Gpt2Tokenizer, select_codewords; "
             "print(json.dumps(select_codewords(Gpt2Tokenizer(), n=512)))")


def test_codewords_on_the_real_vocabulary(gpt2_tokenizer):
    """512 distinct bare uppercase words, each one token after a space; the same list in processes with different
    hash seeds (so no set or dict order leaks into it) and in this one."""
    words = select_codewords(gpt2_tokenizer, n=512)
    assert len(words) == len(set(words)) == 512
    for w in words:
        assert re.fullmatch(r"[A-Z]{3,}", w), w
        assert len(gpt2_tokenizer.encode(" " + w)) == 1, w
    # GPT-2 has fewer than 512 such words of >= 4 letters, so PROTOCOL's second tier (3 letters) is reached.
    assert any(len(w) == 3 for w in words) and any(len(w) >= 4 for w in words)
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", CODEWORDS], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0]) == words


def test_fingerprint_is_stable(gpt2_tokenizer):
    assert tokenizer_fingerprint(gpt2_tokenizer) == tokenizer_fingerprint(Gpt2Tokenizer())


def test_broken_tiktoken_cache_falls_back_to_the_ranks_file(gpt2_tokenizer, tmp_path, monkeypatch):
    """Files under tiktoken's gpt2 cache names whose hashes are wrong: tiktoken would refetch them; without
    network the ranks file is used instead, and the ids are the same."""
    import hashlib

    import tiktoken.load
    import tiktoken.registry
    from drift.data import tokenizer as tk
    if bootstrap.find_gpt2_ranks() is None:
        pytest.skip("only tiktoken's own cache is present here")
    for url in tk._TIKTOKEN_GPT2_URLS:
        (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_text("not the real file")

    def no_network(url):
        raise ConnectionError(f"network disabled in this test: {url}")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    tok = Gpt2Tokenizer()
    assert tok.source == "drift cache ranks file"
    assert tok.encode("Hello world") == [15496, 995] == gpt2_tokenizer.encode("Hello world")


def test_ranks_file_with_another_hash_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for path in bootstrap.gpt2_ranks_paths():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"IQ== 0\n")  # a valid-looking ranks file that is not GPT-2's
    assert len(bootstrap.gpt2_ranks_paths()) == 2 and bootstrap.find_gpt2_ranks() is None
