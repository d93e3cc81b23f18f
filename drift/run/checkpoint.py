"""The run-directory contract (DESIGN.md): atomic writes, step discovery, checked loading.

    runs/<name>/run.json  metrics.jsonl  codewords.json  ckpt_000000.pt ...  resume.pt  analysis/  figures/

Every file is written to a temporary name and renamed, so a crash never leaves half a file. Steps are found from
file names; a checkpoint holds {"step", "model", "config", "run_id", digests} and is loaded with a clear error when
it is missing or corrupt, or when it is not the file its place says it is (below).

Provenance. run.json's "run_id" (a uuid4 hex) is written once, when the run is created, and never changes (resume
keeps it; --restart, which deletes every checkpoint, draws a new one). Every checkpoint records the run_id and its
step, and every load checks both: the step against the file name (a checkpoint renamed to another step's name is
refused) and the run_id against the run directory's run.json (a checkpoint copied in from another run is refused),
each with a ForeignCheckpointError naming the file. run.json is read once per run directory and version of the file
(one stat per checkpoint, not one read), so a trajectory of T checkpoints costs what it did.
Legacy runs, whose run.json has no run_id (written before run ids existed): the run_id check is skipped; instead the
checkpoint's config must agree with run.json's on every field both know that changes the experiment (a seed-4
checkpoint in a seed-3 run is refused; a copy from a run with the same config is not caught). A checkpoint with a
run_id in a legacy run is refused. A file with no run.json beside it is checked for its step only.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import uuid
import warnings
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import torch

from drift.atomic import atomic_path
from drift.config import SAME_EXPERIMENT, Config, ConfigError, validate
from drift.run import digests

CKPT_RE = re.compile(r"^ckpt_(\d{6,})\.pt$")
RUN_ID = "run_id"  # run.json's and every checkpoint's key: which run the file belongs to


class RunError(RuntimeError):
    """A run directory, checkpoint or metrics file that cannot be used as asked; the message says what to do."""


class ForeignCheckpointError(RunError):
    """A readable checkpoint that is not the file its place says: another run's, or another step's."""


def ckpt_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / f"ckpt_{step:06d}.pt"


def write_error(path: Path, e: BaseException) -> RunError:
    """One line naming the file and the cause. torch.save reports a full disk as an opaque
    '[enforce fail ...] unexpected pos' RuntimeError, so the free space is looked at to name it."""
    if isinstance(e, OSError) and e.errno:
        cause = os.strerror(e.errno)
    else:
        try:
            st = os.statvfs(path.parent)
            full = st.f_bavail * st.f_frsize < (1 << 20)
        except OSError:
            full = False
        cause = os.strerror(errno.ENOSPC) if full else f"{type(e).__name__}: {str(e)[:80]}"
    return RunError(f"cannot write {path}: {cause}")


def _atomic(path: Path):
    """drift.atomic's temporary name for `path`, renamed on success; a failed write raises a RunError naming the
    file and its cause (a full disk named as such)."""
    def as_run_error(e: BaseException) -> RunError | None:
        failed_write = isinstance(e, (OSError, RuntimeError)) and not isinstance(e, RunError)
        return write_error(path, e) if failed_write else None
    return atomic_path(path, error=as_run_error)


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    path = Path(path)
    with _atomic(path) as tmp:
        torch.save(obj, tmp)


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _clean(o):
    """NaN/inf are not JSON; write them as null so every reader (LaTeX generators included) can parse the file."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    path = Path(path)
    with _atomic(path) as tmp:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)


def atomic_write_json(obj, path: str | os.PathLike) -> None:
    atomic_write_text(json.dumps(_clean(json.loads(json.dumps(obj, default=_json_default))), indent=1) + "\n", path)


class MissingKeyError(RunError, KeyError):
    """A key a file lacks: a RunError (one line naming the file), and a KeyError for code that expects one."""
    __str__ = RunError.__str__  # KeyError's would quote the message


class FileObject(dict):
    """A JSON object read from a file. A missing key raises MissingKeyError naming the file, so a damaged or foreign
    file is reported as such wherever its reader looks, not as a KeyError deep in that reader."""
    __slots__ = ("source",)

    def __missing__(self, key):
        raise MissingKeyError(f"{self.source} has no {key!r} where one is expected; the file is damaged or was "
                              f"written by other code: regenerate it")


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# What field() checks a value read back from a file against, and how the refusal names it.
KINDS = {"int": (_whole, "a whole number"),
         "ints": (lambda v: isinstance(v, list) and all(map(_whole, v)), "a list of whole numbers")}


def field(obj: dict, key: str, kind: str, default=..., at_least: int | None = None):
    """obj[key] (obj.get(key, default) when a default is given), checked to be of `kind` (KINDS), each number
    >= at_least, before it is fed back into a computation; anything else is a RunError naming the file (a
    FileObject's source)."""
    value = obj[key] if default is ... else obj.get(key, default)
    if default is not ... and value is default:
        return value
    ok, what = KINDS[kind]
    if not ok(value) or (at_least is not None and min(value if isinstance(value, list) else [value],
                                                      default=at_least) < at_least):
        bound = "" if at_least is None else f" >= {at_least}"
        raise RunError(f"{getattr(obj, 'source', 'a file')} holds {key}={repr(value)[:40]}, not {what}{bound}; the "
                       f"file is damaged: regenerate it")
    return value


def _json_kind(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def read_json(path: str | os.PathLike, what: str = "file", hint: str = "") -> dict:
    """A JSON object from a file, or a one-line RunError naming the file: missing, unreadable, not UTF-8, not JSON,
    not an object. Its objects are FileObjects: a key the file lacks is reported the same way."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path} not found{': ' + hint if hint else ''}")

    def hook(pairs: dict) -> FileObject:
        obj = FileObject(pairs)
        obj.source = path
        return obj
    try:
        data = json.loads(path.read_bytes().decode("utf-8"), object_hook=hook)
    except UnicodeDecodeError as e:
        raise RunError(f"{what} {path} is not UTF-8 text (a bad byte at offset {e.start}); it is damaged: "
                       f"regenerate it") from None
    except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
        raise RunError(f"{what} {path} is not valid JSON ({' '.join(str(e).split())[:120]}); regenerate it") from None
    except OSError as e:
        raise RunError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise RunError(f"{what} {path} holds a JSON {_json_kind(data)}, not an object; it is damaged: regenerate it")
    return data


def run_config(info: dict, path: str | os.PathLike) -> Config:
    """The Config recorded in a run.json (`info`, read from `path`), checked as drift.config checks a new one: a
    field of another type, an unknown field or a value outside the rules is a RunError naming the file. A field
    added after the run was made reads as its default."""
    cfg = info.get("config")
    parts = cfg if isinstance(cfg, dict) else {}
    if not all(isinstance(parts.get(k), dict) for k in ("model", "train")):
        raise RunError(f"run file {path} has no config (\"config\": {{\"model\": ..., \"train\": ...}}); it is "
                       f"damaged: regenerate it by training the run again")
    try:
        config = Config.from_dict(cfg)
    except TypeError as e:  # an unknown field
        raise RunError(f"run file {path}: its config does not fit this code ({e}); it is damaged or from another "
                       f"version") from None
    try:
        validate(config)
    except ConfigError as e:
        raise RunError(f"run file {path}: its config is invalid ({e}); it is damaged or was edited") from None
    return config


def read_config(run_dir) -> Config:
    """The checked Config of a run directory's run.json (run_config)."""
    path = Path(run_dir) / "run.json"
    return run_config(read_json(path, "run file", f"{run_dir} is not a training run directory"), path)


def list_steps(run_dir: str | os.PathLike) -> list[int]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run directory {run_dir} does not exist; train it first (python train.py --out {run_dir})")
    return sorted(int(m.group(1)) for p in run_dir.iterdir() if (m := CKPT_RE.match(p.name)))


def new_run_id() -> str:
    return uuid.uuid4().hex


def save_checkpoint(run_dir, step: int, model_state: dict, config: dict, run_id: str | None = None) -> Path:
    """ckpt_<step>.pt; `run_id` is the run's (run.json), None only for runs created before run ids existed."""
    path = ckpt_path(run_dir, step)
    state = {k: v.detach().to("cpu") for k, v in model_state.items()}
    ckpt = {"step": step, "model": state, "config": config, digests.FIELD: digests.state_digests(state)}
    if run_id is not None:
        ckpt[RUN_ID] = run_id
    atomic_torch_save(ckpt, path)
    return path


# run.json path -> (its inode, size and mtime, {"run_id", "config"}): the identity check reads it once per version
_RUN_RECORDS: dict[Path, tuple[tuple[int, int, int], dict]] = {}


def run_identity(run_dir) -> dict | None:
    """{"run_id" (None for a legacy run), "config"} of run_dir's run.json, or None when there is none. Cached per
    version of the file (run.json is only ever replaced by a rename, which changes its inode)."""
    path = Path(run_dir) / "run.json"
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    version = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _RUN_RECORDS.get(path)
    if hit is not None and hit[0] == version:
        return hit[1]
    info = read_json(path, "run file")
    record = {RUN_ID: info.get(RUN_ID), "config": info.get("config") or {}}
    _RUN_RECORDS[path] = (version, record)
    return record


def _config_differences(saved: dict, held: dict) -> list[str]:
    """Fields a legacy checkpoint's config and its run.json disagree on, among those both know (later code adds
    fields) and that change the experiment (config.SAME_EXPERIMENT aside)."""
    out = []
    for part in ("model", "train"):
        a, b = saved.get(part) or {}, held.get(part) or {}
        out += [f"{part}.{k} {b[k]!r} (run.json: {a[k]!r})" for k in sorted(a.keys() & b.keys())
                if k not in SAME_EXPERIMENT and a[k] != b[k]]
    return out


def check_provenance(path: Path, ckpt: dict, step: int | None = None) -> None:
    """Refuse a checkpoint that is not the file its name and run directory say (module docstring): its step must
    be the name's (or `step`), its run_id run.json's (legacy run: its config must agree)."""
    named = step
    if named is None and (match := CKPT_RE.match(path.name)):
        named = int(match.group(1))
    held = ckpt.get("step")
    if named is not None and held != named:
        _refuse(path, f"holds step {held}, not step {named} as its name says (a renamed or misplaced file)")
    record = run_identity(path.parent)
    if record is None:
        return
    expected, found = record[RUN_ID], ckpt.get(RUN_ID)
    if expected is not None:
        if found != expected:
            whose = f"run {found}" if found else "no recorded run (a file written before run ids existed)"
            _refuse(path, f"belongs to {whose}, not to the run of {path.parent} (run {expected}): it was copied in "
                          f"from another run")
    elif found is not None:
        _refuse(path, f"belongs to run {found}, but {path.parent}/run.json records no run id (a run made before run "
                      f"ids existed): it was copied in from another run")
    elif diffs := _config_differences(record["config"], ckpt.get("config") or {}):
        _refuse(path, f"was written with {', '.join(diffs[:2])}{' ...' if len(diffs) > 2 else ''}: it comes from "
                      f"another run")


def _refuse(path: Path, why: str):
    raise ForeignCheckpointError(f"checkpoint {path} {why}; delete it (or put back this run's own file) and "
                                 f"{_ckpt_hint(path)}")


def _ckpt_hint(path: Path) -> str:
    """What works for any analysis script and any run state (a finished run has nothing left to resume)."""
    return (f"rerun the analysis with --allow-missing (the step is left out and the steps used are recorded), "
            f"or retrain the run with `python train.py --restart {path.parent}`")


def load_checkpoint_file(path, step: int | None = None, mmap: bool = False, verify: bool = True) -> dict:
    """Load a checkpoint file to CPU, checking it is one of ours, that it belongs where it lies (its step and run,
    check_provenance) and (verify=True) that every tensor matches the digests stored at save (drift/run/digests.py;
    this reads every byte, also with mmap=True). mmap=True maps the file so only the tensors touched are read."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"checkpoint {path} is missing; {_ckpt_hint(path)}")
    try:
        with warnings.catch_warnings(record=True) as said:  # a garbled file also makes torch warn (pickle protocol)
            warnings.simplefilter("always")
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # torch raises several types for truncated or garbled files
        raise RunError(f"checkpoint {path} is corrupt ({type(e).__name__}: {' '.join(str(e).split())[:80]}); "
                       f"delete it and {_ckpt_hint(path)}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict) or \
            not all(isinstance(t, torch.Tensor) for t in ckpt["model"].values()):
        raise RunError(f"checkpoint {path} does not hold a model written by this project")
    check_provenance(path, ckpt, step)
    found = digests.stored(ckpt)
    # Names are checked on every read (verify=False too: the streaming reader hashes the bytes itself), so a
    # damaged tensor name is reported here and not as a missing key deep in a reader.
    names = set(found[1]) if found is not None and isinstance(found[1], dict) else None
    if found is not None and names != set(ckpt["model"]):
        odd = sorted(map(str, (names or set()) ^ set(ckpt["model"])))
        raise RunError(digests.corrupt_message(path, odd[0] if odd else "(the digest table)"))
    if verify:
        if found is None:
            digests.warn_unverified(path)
        elif (bad := digests.first_mismatch(ckpt["model"], found[1], algo=found[0])) is not None:
            raise RunError(digests.corrupt_message(path, bad))
    for w in said:  # the file passed every check: what torch had to say about it is not about damage
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ckpt


def check_same_tensors(paths: list[Path], states: list[dict]) -> None:
    """Every checkpoint of a trajectory holds the same tensor names; the odd one out (against the names most of
    them hold) is named. A damaged name passes the digests: torch's pickle stores a repeated string once, so the
    digest table's key is damaged with it."""
    names = [frozenset(s) for s in states]
    usual = Counter(names).most_common(1)[0][0] if names else frozenset()
    for path, have in zip(paths, names):
        if have != usual:
            odd = sorted(map(repr, have ^ usual))
            raise RunError(f"checkpoint {path} holds other tensors than the rest of the run ({', '.join(odd[:2])}): "
                           f"it is damaged or from another model; list every damaged checkpoint with: "
                           f"python -m drift.run.integrity {path.parent}")


def load_checkpoint(run_dir, step: int, mmap: bool = False, verify: bool = True) -> dict:
    return load_checkpoint_file(ckpt_path(run_dir, step), step, mmap, verify)


def iter_checkpoints(run_dir, steps: Iterable[int], mmap: bool = True,
                     verify: bool = True) -> Iterator[tuple[int, dict]]:
    """Yield (step, state_dict) one checkpoint at a time, so memory stays near one checkpoint; each holds the first
    one's tensor names (check_same_tensors)."""
    first = None
    for step in steps:
        state = load_checkpoint(run_dir, step, mmap=mmap, verify=verify)["model"]
        first = first or (ckpt_path(run_dir, step), dict.fromkeys(state))
        check_same_tensors([first[0], ckpt_path(run_dir, step)], [first[1], state])
        yield step, state


def read_run(run_dir) -> dict:
    """run.json of a run directory (resolved config, schedule, provenance)."""
    list_steps(run_dir)  # existence check with the actionable message
    return read_json(Path(run_dir) / "run.json", "run file",
                     f"{run_dir} is not a training run directory (no run.json); train it with train.py")


def read_metrics(run_dir) -> list[dict]:
    """Eval records in step order; a torn last line (crash mid-write) is ignored, and so is any line that is not a
    JSON object with an integer step."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise RunError(f"{path} not found; the run has not evaluated yet")
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()  # a damaged byte spoils its line
    except OSError as e:
        raise RunError(f"cannot read {path}: {e.strerror or e}") from None
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and not isinstance(record["step"], bool):
            records.append(record)
    return sorted(records, key=lambda r: r["step"])


def append_jsonl(path, record: dict) -> None:
    try:
        with open(path, "a") as f:
            f.write(json.dumps(_clean(record)) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise write_error(Path(path), e) from None
