"""Reading checkpoint series written by other trainers, for `python -m drift.inspect` (issue #28).

Layouts (`discover`; the step of every checkpoint comes from its name):
  hf     CKPT_DIR/checkpoint-<step>/ (Hugging Face Trainer) or any sub-folder holding save_pretrained weights:
         model.safetensors, sharded model-0000x-of-0000y.safetensors with model.safetensors.index.json, or
         pytorch_model.bin (sharded: pytorch_model.bin.index.json). Step: the folder name's number, else
         trainer_state.json's global_step (when both exist they must agree). Weights at CKPT_DIR's top level (the
         Trainer's final save) have no step and are listed as ignored.
  torch  CKPT_DIR/*.pt|*.pth|*.bin|*.safetensors, one file per step, the step the number in the file name
         (ckpt_000200.pt, model_step500.pt); each a state dict or a dict holding one under "model", "state_dict" or
         "model_state_dict" (nanoGPT's {"model", "optimizer", "model_args", "iter_num", ...}). Files without a
         number (nanoGPT's ckpt.pt, resume.pt) are listed as ignored.
  drift  this project's run directory (run.json + ckpt_XXXXXX.pt); drift.inspect reads it through
         drift.trajectory, which also checks every tensor's stored sha256.
A prefix every key of a checkpoint shares, "_orig_mod." (torch.compile) or "module." (DDP), is stripped.

Untrusted input. .pt/.pth/.bin files are only ever loaded with torch.load(weights_only=True, mmap=True): a pickle
that would run code on load is refused, not run. safetensors files hold no code; they are opened with the
safetensors library (safe_open, memory-mapped) and read tensor by tensor.

Memory. `open_series` reads headers only (safetensors) or maps the file without touching its tensors (torch).
`gram_matrices` then takes one tensor name at a time: it opens that tensor in every checkpoint (a safetensors
slice, or a numpy map of exactly the tensor's bytes located by drift.trajectory.tensor_offsets), reads it in
row chunks of a few MB across the T checkpoints, adds the chunk's anchored T x T product to that tensor's Gram
and closes the maps before the next name, so the pages leave the process with the tensor. Peak memory is one
chunk block plus T copies of the largest tensor's pages, never T x D.

    series = discover("out/checkpoints")                     # Series(format="hf", ckpts=[Ckpt(step, path, files)])
    readers = open_series(series.ckpts)                       # checks names, shapes and dtypes agree
    scopes, layers, _, _ = trunk_scopes(readers[0].meta, "gpt2", readers[0].label)   # drift/inspect/scopes.py
    grams = gram_matrices(readers, scopes)    # drift/inspect/gram.py: {scope: anchored float64 T x T Gram}
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from drift.run import checkpoint as ck
from drift.analysis.gram_stream import tensor_offsets


class InspectError(ck.RunError):
    """An input drift.inspect cannot use; the message is one line naming the file."""


TORCH_EXTS = (".pt", ".pth", ".bin")
TENSOR_EXTS = TORCH_EXTS + (".safetensors",)
HF_WEIGHTS = (("model.safetensors.index.json", "safetensors"), ("model.safetensors", "safetensors"),
              ("pytorch_model.bin.index.json", "torch"), ("pytorch_model.bin", "torch"))  # transformers' order
HF_SHARD = re.compile(r"^(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)$")
STATE_KEYS = ("model", "state_dict", "model_state_dict")
STRIP_PREFIXES = ("_orig_mod.", "module.")
_STEP_WORD = re.compile(r"(?:step|iter|checkpoint|ckpt)[-_]?(\d+)", re.IGNORECASE)
_SAFE_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}
FLOAT_DTYPES = set(_SAFE_DTYPES.values())
# Buffers that sit inside a block but are not trained (causal masks, rotary frequencies): kept out of block+ln.
@dataclass
class Ckpt:
    step: int
    path: Path                  # the folder or file that names the step (used in messages)
    files: list[Path]           # its weight files (several for a sharded save)
    kind: str                   # "safetensors" | "torch"


@dataclass
class Series:
    root: Path
    format: str                 # "hf" | "torch" | "drift"
    ckpts: list[Ckpt]           # sorted by step
    ignored: list[str] = field(default_factory=list)   # "name (why)"


# --------------------------------------------------------------------------------------------------------------
# Discovery: which files, which steps
# --------------------------------------------------------------------------------------------------------------

def step_from_name(name: str) -> int | None:
    """The step a file or folder name carries: its only number, else the number after step/iter/checkpoint/ckpt;
    None when there is no number or the name is ambiguous."""
    numbers = re.findall(r"\d+", name)
    if len(numbers) == 1:
        return int(numbers[0])
    words = _STEP_WORD.findall(name)
    return int(words[-1]) if words else None


def _hf_checkpoint(folder: Path) -> Ckpt | None:
    """The save_pretrained weights of one folder, or None if it holds none."""
    for name, kind in HF_WEIGHTS:
        path = folder / name
        if not path.is_file():
            continue
        files = [path]
        if name.endswith(".index.json"):
            try:
                weight_map = json.loads(path.read_text())["weight_map"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise InspectError(f"{path}: unreadable shard index ({type(e).__name__}: {str(e)[:80]})") from None
            files = [folder / f for f in sorted(set(weight_map.values()))]
            for f in files:
                if not f.is_file():
                    raise InspectError(f"{f}: shard listed in {path.name} is missing")
        return Ckpt(-1, folder, files, kind)
    return None


def _hf_step(folder: Path) -> int:
    named = step_from_name(folder.name)
    state = folder / "trainer_state.json"
    recorded = None
    if state.is_file():
        try:
            recorded = int(json.loads(state.read_text())["global_step"])
        except (OSError, ValueError, KeyError, TypeError):
            recorded = None
    if named is not None and recorded is not None and named != recorded:
        raise InspectError(f"{state}: global_step {recorded} disagrees with the folder name's step {named}")
    if named is None and recorded is None:
        raise InspectError(f"{folder}: cannot tell its step (no number in the name, no trainer_state.json)")
    return named if named is not None else recorded


def _loose_files(root: Path, skip=frozenset()) -> tuple[list[Ckpt], list[str]]:
    """Numbered tensor files at the top of root, and the ignored ones."""
    ckpts, ignored = [], []
    for p in sorted(root.iterdir()):
        if not p.is_file() or p.suffix not in TENSOR_EXTS or p.name in skip:
            continue
        step = None if HF_SHARD.match(p.name) else step_from_name(p.stem)
        if step is None:
            ignored.append(f"{p.name} (no step in its name)")
            continue
        ckpts.append(Ckpt(step, p, [p], "safetensors" if p.suffix == ".safetensors" else "torch"))
    return ckpts, ignored


def _check_series(ckpts: list[Ckpt]) -> list[Ckpt]:
    """Sorted by step; refuses a duplicate step and a series that mixes safetensors with torch pickles."""
    ckpts = sorted(ckpts, key=lambda c: c.step)
    for a, b in zip(ckpts, ckpts[1:]):
        if a.step == b.step:
            raise InspectError(f"{b.path}: duplicate step {b.step} (also {a.path.name}); keep one of them")
    kinds = {c.kind: c for c in ckpts}
    if len(kinds) > 1:
        raise InspectError(f"{kinds['torch'].files[0]}: mixed formats in one series (torch pickle here, "
                           f"safetensors in {kinds['safetensors'].files[0]}); convert them to one format")
    return ckpts


def discover(root, fmt: str = "auto") -> Series:
    """The checkpoint series under root (module docstring); fmt "auto" picks the one layout present and refuses
    a directory holding two."""
    root = Path(root)
    if not root.is_dir():
        raise InspectError(f"{root}: not a directory")
    found: dict[str, tuple[list[Ckpt], list[str]]] = {}
    if (root / "run.json").is_file() and ck.list_steps(root):
        found["drift"] = ([Ckpt(s, ck.ckpt_path(root, s), [ck.ckpt_path(root, s)], "torch")
                           for s in ck.list_steps(root)], [])
    hf = [(d, c) for d in sorted(root.iterdir()) if d.is_dir() and (c := _hf_checkpoint(d)) is not None]
    if hf:
        for d, c in hf:
            c.step = _hf_step(d)
        top = [name for name, _ in HF_WEIGHTS if (root / name).is_file()]
        found["hf"] = ([c for _, c in hf], [f"{n} (top-level weights: no step)" for n in top])
    # a run directory's own checkpoints are not loose files, unless --format torch asks to read them as such
    skip = {ck.ckpt_path(root, s).name for s in ck.list_steps(root)} if "drift" in found and fmt != "torch" else set()
    loose, ignored = _loose_files(root, skip)
    if loose:
        found["torch"] = (loose, ignored)
    if fmt != "auto":
        if fmt not in found:
            raise InspectError(f"{root}: no {fmt} checkpoints found ({_seen(found)})")
        found = {fmt: found[fmt]}
    if not found:
        raise InspectError(f"{root}: no checkpoints found (looked for checkpoint-*/ folders with save_pretrained "
                           f"weights, numbered *.pt/*.pth/*.bin/*.safetensors files, run.json + ckpt_*.pt)")
    if len(found) > 1:
        examples = "; ".join(f"{k}: {v[0][0].path}" for k, v in found.items())
        raise InspectError(f"{root}: mixed formats ({examples}); pass --format or keep one series per directory")
    name, (ckpts, ignored) = next(iter(found.items()))
    return Series(root, name, _check_series(ckpts), ignored)


def _seen(found: dict) -> str:
    return ", ".join(f"{k}: {len(v[0])}" for k, v in found.items()) or "nothing recognised"


def missing_cadence_steps(steps: list[int]) -> tuple[int, list[int]]:
    """(cadence, steps that look missing): where most intervals between checkpoints equal one cadence d, an
    interval of k*d (k >= 2) means k-1 checkpoints are absent. Step 0 and the last interval (a final save off the
    cadence) are left out; irregular series (log-spaced, dense windows) report nothing."""
    inner = [s for s in steps if s > 0]
    diffs = np.diff(inner[:-1]) if len(inner) > 2 else np.array([], dtype=int)
    if diffs.size < 3:
        return 0, []
    d, count = Counter(diffs.tolist()).most_common(1)[0]
    if count < 0.5 * diffs.size or d <= 0:
        return int(d), []
    holes = [int(a + j * d) for a, b in zip(inner[:-2], inner[1:-1]) if (b - a) % d == 0 and b - a > d
             for j in range(1, (b - a) // d)]
    return int(d), holes


# --------------------------------------------------------------------------------------------------------------
# Readers: names, shapes and dtypes from the headers; values chunk by chunk
# --------------------------------------------------------------------------------------------------------------

def _all_tensors(obj, out: dict, prefix: str = "") -> dict:
    """Every tensor in a loaded object (for locating tensors in the file: every storage must be accounted for)."""
    if isinstance(obj, torch.Tensor):
        out[prefix or "_"] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _all_tensors(v, out, f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _all_tensors(v, out, f"{prefix}/{i}")
    return out


def load_torch(path: Path):
    """torch.load with weights_only=True and mmap=True, each failure as one line naming the file."""
    try:
        open(path, "rb").close()
    except OSError as e:
        raise InspectError(f"{path}: unreadable ({e.strerror})") from None
    if not zipfile.is_zipfile(path):
        raise InspectError(f"{path}: unreadable: not a torch zip checkpoint (torch.save since 1.6), so it cannot be "
                           f"read memory-mapped; if it is a legacy torch file, load and re-save it with torch.save")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        what = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        raise InspectError(f"{path}: refused: unpickling it would call {what.group(1) if what else 'code'}, which "
                           f"torch.load(weights_only=True) does not allow; only plain tensor files are read") from None
    except Exception as e:  # torch raises several types for truncated or garbled files
        raise InspectError(f"{path}: unreadable ({type(e).__name__}: {_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0][:100]


def state_dict_of(obj, path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a loaded torch file: the object itself, or its "model" / "state_dict" /
    "model_state_dict" entry; non-tensor entries are dropped."""
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)} \
        if isinstance(obj, dict) else {}
    if not tensors:
        shown = list(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
        raise InspectError(f"{path}: holds no state dict (top level: {shown}); expected tensors, or a dict with "
                           f"one of {', '.join(STATE_KEYS)}")
    return tensors


class _Rows:
    """One tensor of one checkpoint, read in chunks of rows (its first dimension) as flat float64 arrays."""

    def __init__(self, shape: tuple, read):
        self.rows = shape[0] if shape else 1
        self.row_size = math.prod(shape[1:]) if shape else 1
        self._read = read

    def read(self, lo: int, hi: int) -> np.ndarray:
        return self._read(lo, hi)


def _from_torch(t: torch.Tensor) -> np.ndarray:
    return t.reshape(-1).to(torch.float64).numpy()


class Reader:
    """One checkpoint: `meta` {name: (shape, dtype)} from its headers, `rows(name)` to read a tensor in chunks."""

    def __init__(self, c: Ckpt):
        self.ckpt = c
        self.label = str(c.path)
        self.meta: dict[str, tuple[tuple[int, ...], str]] = {}
        self._where: dict[str, tuple[Path, str]] = {}           # name -> (file, name stored in the file)
        self._torch: dict[Path, tuple[dict, dict | None]] = {}  # file -> (mapped state dict, byte offsets)
        self.stripped = ""
        for f in c.files:
            if c.kind == "safetensors":
                self._scan_safetensors(f)
            else:
                self._scan_torch(f)
        self._strip_prefix()

    def _add(self, f: Path, name: str, shape, dtype: str) -> None:
        if name in self._where:
            raise InspectError(f"{f}: tensor {name} is also in {self._where[name][0].name}")
        self.meta[name] = (tuple(int(x) for x in shape), dtype)
        self._where[name] = (f, name)

    def _scan_safetensors(self, f: Path) -> None:
        from safetensors import SafetensorError, safe_open
        try:
            with safe_open(f, framework="pt") as h:
                for name in h.keys():
                    sl = h.get_slice(name)
                    self._add(f, name, sl.get_shape(), _SAFE_DTYPES.get(sl.get_dtype(), sl.get_dtype()))
        except (SafetensorError, OSError) as e:
            raise InspectError(f"{f}: unreadable safetensors file ({_first_line(e)})") from None

    def _scan_torch(self, f: Path) -> None:
        obj = load_torch(f)
        state = state_dict_of(obj, f)
        try:
            offsets = tensor_offsets(f, _all_tensors(obj, dict(state)))
        except (OSError, ValueError):
            offsets = None
        # tensor_offsets names tensors by the keys it was given; the state dict's are its own keys
        self._torch[f] = (state, offsets)
        for name, t in state.items():
            self._add(f, name, t.shape, str(t.dtype).replace("torch.", ""))

    def _strip_prefix(self) -> None:
        for prefix in STRIP_PREFIXES:
            if self.meta and all(k.startswith(prefix) for k in self.meta):
                self.stripped += prefix
                n = len(prefix)
                self.meta = {k[n:]: v for k, v in self.meta.items()}
                self._where = {k[n:]: v for k, v in self._where.items()}

    @contextlib.contextmanager
    def rows(self, name: str):
        """A _Rows over `name`; its maps close on exit."""
        f, stored = self._where[name]
        shape, dtype = self.meta[name]
        if self.ckpt.kind == "safetensors":
            from safetensors import safe_open
            with safe_open(f, framework="pt") as h:
                sl = h.get_slice(stored)
                yield _Rows(shape, (lambda lo, hi: _from_torch(sl[lo:hi])) if shape
                            else (lambda lo, hi: _from_torch(h.get_tensor(stored))))
            return
        state, offsets = self._torch[f]
        t = state[stored]
        if offsets is not None and stored in offsets and shape and t.numel() > 0:
            yield self._mapped_rows(f, offsets[stored], t, shape)
        else:  # the mapped tensor itself (its pages stay mapped until the reader goes)
            yield _Rows(shape, (lambda lo, hi: _from_torch(t[lo:hi])) if shape else (lambda lo, hi: _from_torch(t)))

    def _mapped_rows(self, f: Path, offset: int, t: torch.Tensor, shape) -> _Rows:
        size = t.element_size()
        nbytes = t.numel() * size
        if offset + nbytes > os.path.getsize(f):
            raise InspectError(f"{f}: truncated (tensor data runs past the end of the file)")
        raw = np.memmap(f, np.uint8, "r", offset, (nbytes,))
        row = math.prod(shape[1:])
        dtype = t.dtype

        def read(lo: int, hi: int) -> np.ndarray:
            chunk = raw[lo * row * size:hi * row * size]
            if dtype in (torch.float32, torch.float64, torch.float16):
                return chunk.view({torch.float32: np.float32, torch.float64: np.float64,
                                   torch.float16: np.float16}[dtype]).astype(np.float64)
            return torch.from_numpy(chunk.copy()).view(dtype).to(torch.float64).numpy()
        return _Rows(shape, read)


def _quiet(progress: bool) -> bool | None:
    """tqdm's disable: off when asked, else shown only on a terminal (None), so a piped stderr keeps the one-line
    error."""
    return True if not progress else None


def open_series(ckpts: list[Ckpt], progress: bool = True) -> list[Reader]:
    """A Reader per checkpoint (headers only), checking that every checkpoint has the first one's parameter
    names and shapes."""
    readers = []
    for c in tqdm(ckpts, desc="checkpoints", unit="ckpt", disable=_quiet(progress), dynamic_ncols=True):
        r = Reader(c)
        if readers:
            _check_same(readers[0], r)
        readers.append(r)
    return readers


def _check_same(first: Reader, r: Reader) -> None:
    missing, extra = sorted(set(first.meta) - set(r.meta)), sorted(set(r.meta) - set(first.meta))
    if missing or extra:
        raise InspectError(f"{r.label}: its parameters differ from {first.label}'s (missing {missing[:3]}, extra "
                           f"{extra[:3]}); every checkpoint must hold the same parameters")
    for name, (shape, _) in first.meta.items():
        if r.meta[name][0] != shape:
            raise InspectError(f"{r.label}: parameter {name} has shape {list(r.meta[name][0])} here and "
                               f"{list(shape)} in {first.label}")


# --------------------------------------------------------------------------------------------------------------
