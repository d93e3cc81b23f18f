"""Derived artefacts record the identity of their inputs and are checked when read (drift/run/provenance.py): the
Gram cache is recomputed when damaged or when its checkpoints changed, a damaged or out-of-date directions.pt is
refused in one line naming the command that remakes it, and the report refuses analysis JSON that no longer
describes its run. Each damage case of the reliability review has a test here.

Run: pytest tests/test_artefacts.py
"""
import json
import os
import shutil

import numpy as np
import pytest
import torch

import backbone_fisher_analysis
import make_report
import trajectory_pca_uncentered
from drift.analysis import gram_cache, gram_stream
from drift.run import checkpoint as ck
from helpers.runs import one_line_error, rewrite_checkpoint, set_info

FISHER = ["--steps", "5", "30", "--m", "4", "--k", "3", "--no-progress"]


@pytest.fixture(scope="module")
def analysed(tiny_run, tmp_path_factory):
    """The tiny run with trajectory_pca.json, its Gram cache and directions.pt. Copy it before changing it."""
    run = tmp_path_factory.mktemp("analysed") / "tiny_s1"
    shutil.copytree(tiny_run, run)
    assert trajectory_pca_uncentered.main([str(run), "--window", "3", "--no-figures", "--no-progress",
                                           "--save-directions"]) == 0
    return run


@pytest.fixture
def run(analysed, tmp_path):
    """A fresh copy of `analysed` per test."""
    return shutil.copytree(analysed, tmp_path / "tiny_s1")


def _pc1(run_dir) -> float:
    return json.loads((run_dir / "analysis" / "trajectory_pca.json").read_text())["results"]["trunk"]["pc1_raw_full"]


def _notes(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]


# ------------------------------------------------------------------------------------------------------------------
# drift/run/provenance.py
# ------------------------------------------------------------------------------------------------------------------

def test_checkpoint_id_comes_from_the_stored_digests_not_the_bytes(run):
    from drift.run import provenance
    path = ck.ckpt_path(run, 10)
    first = provenance.checkpoint_id(path)
    assert first.startswith("xxh3_128:") and len(first.split(":")[1]) == 16
    shutil.copy(path, run / "copy.pt")  # another file, another mtime, the same content: the same id
    assert provenance.checkpoint_id(run / "copy.pt") == first
    raw = bytearray(path.read_bytes())  # bytes of a tensor flipped in place: the id reads only the digest table
    state = ck.load_checkpoint(run, 10)["model"]
    i = raw.find(state["blocks.0.attn.qkv.weight"].numpy().tobytes()[:64])
    raw[i:i + 16] = bytes(b ^ 0xFF for b in raw[i:i + 16])
    path.write_bytes(bytes(raw))
    assert provenance.checkpoint_id(path) == first  # (the damage is the checkpoint reader's to catch)
    with pytest.raises(ck.RunError, match="is corrupt"):
        ck.load_checkpoint(run, 10)
    rewrite_checkpoint(run, 15)
    assert provenance.checkpoint_id(ck.ckpt_path(run, 15)) not in (None, provenance.checkpoint_id(run / "copy.pt"))
    assert provenance.checkpoint_id(run / "absent.pt") is None


def test_checkpoint_without_digests_falls_back_to_size_and_mtime_and_says_so(run):
    from drift.run import provenance
    from drift.run.digests import FIELD
    path = ck.ckpt_path(run, 5)
    old = ck.load_checkpoint(run, 5)
    ck.atomic_torch_save({k: v for k, v in old.items() if k != FIELD}, path)
    st = path.stat()
    assert provenance.checkpoint_id(path) == f"size-mtime:{st.st_size}:{st.st_mtime_ns}"
    rec = provenance.record(run, [1, 5])
    assert rec["checkpoints"]["5"].startswith("size-mtime:") and rec["checkpoints"]["1"].startswith("xxh3_128:")
    assert "drift.run.integrity" in rec["note"] and "--add" in rec["note"]
    assert "note" not in provenance.record(run, [1, 10])


def test_stale_reason_names_new_steps_changed_and_gone_inputs(run, tmp_path):
    from drift.run import provenance
    steps = ck.list_steps(run)
    rec = provenance.record(run, [1, 10, 20], run_steps=steps[:-2])  # made when the run had reached step 20
    assert rec["run_steps"] == [0, 1, 5, 10, 15, 20] and set(rec["checkpoints"]) == {"1", "10", "20"}
    assert provenance.stale_reason(rec, run) == (f"it was made when {run} had 6 checkpoint(s) up to step 20; the "
                                                 f"run now has 8 up to step 30")
    rec = provenance.record(run, [1, 10, 20])
    assert provenance.stale_reason(rec, run) is None
    rewrite_checkpoint(run, 5)  # not an input of this record
    assert provenance.stale_reason(rec, run) is None
    rewrite_checkpoint(run, 10)
    assert provenance.stale_reason(rec, run) == f"its input checkpoint {ck.ckpt_path(run, 10)} changed since it was made"
    rec = provenance.record(run, [1, 10, 20])
    ck.ckpt_path(run, 20).unlink()
    assert provenance.stale_reason(rec, run) == f"its input checkpoint {ck.ckpt_path(run, 20)} is gone or unreadable"
    results_copy = tmp_path / "copy"  # a results copy (no checkpoints at all): nothing to compare with
    results_copy.mkdir()
    shutil.copy(run / "run.json", results_copy / "run.json")
    assert provenance.stale_reason(rec, results_copy) is None


def test_record_of_a_directory_of_runs_checks_each_run(run, tmp_path):
    from drift.run import provenance
    root = tmp_path / "ctrl"
    root.mkdir()
    shutil.copytree(run, root / "A", ignore=shutil.ignore_patterns("analysis"))
    rec = provenance.record_runs(root)
    assert list(rec["runs"]) == ["A"] and rec["runs"]["A"]["run_steps"] == ck.list_steps(run)
    assert provenance.stale_reason(rec, root) is None
    rewrite_checkpoint(root / "A", 30)
    assert provenance.stale_reason(rec, root).endswith("ckpt_000030.pt changed since it was made")


def test_content_digest_sees_every_part():
    from drift.run import provenance
    a = np.arange(6, dtype=np.float64)
    base = provenance.content_digest(a, {"steps": [1, 2]}, b"x")
    assert base == provenance.content_digest(a.copy(), {"steps": [1, 2]}, b"x")
    assert base != provenance.content_digest(a.reshape(2, 3), {"steps": [1, 2]}, b"x")  # shape counts
    assert base != provenance.content_digest(a.astype(np.float32), {"steps": [1, 2]}, b"x")
    b = a.copy()
    b[3] = np.nextafter(b[3], 10)
    assert base != provenance.content_digest(b, {"steps": [1, 2]}, b"x")
    assert base != provenance.content_digest(a, {"steps": [1, 3]}, b"x")


def test_analysis_digest_is_of_the_numbers_not_of_when_and_where(tmp_path):
    from drift.run import provenance
    doc = {"analysis": "x", "run_dir": "runs/a", "created": "2026-01-01T00:00:00", "params": {"window": 3},
           "results": {"pc1": 0.5}}
    ck.atomic_write_json(doc, tmp_path / "a.json")
    ck.atomic_write_json({**doc, "run_dir": "runs/b", "created": "2027-01-01T00:00:00"}, tmp_path / "b.json")
    ck.atomic_write_json({**doc, "results": {"pc1": 0.5000001}}, tmp_path / "c.json")
    a, b, c = (provenance.analysis_digest(tmp_path / f"{n}.json") for n in "abc")
    assert a == b != c and provenance.analysis_digest(tmp_path / "absent.json") is None


# ------------------------------------------------------------------------------------------------------------------
# Case 2: the Gram cache is recomputed (one note) when damaged or when its inputs changed, never reused
# ------------------------------------------------------------------------------------------------------------------

def _cache(run_dir):
    return run_dir / "analysis" / gram_cache.GRAM_CACHE


def _damage_cache(path, how: str):
    raw = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif how == "flipped":  # inside the Gram array: the zip CRC of the member catches it
        i = len(raw) // 2
        raw[i:i + 16] = bytes(b ^ 0xFF for b in raw[i:i + 16])
        path.write_bytes(bytes(raw))
    else:  # rewritten consistently (valid zip) with other Grams: only the stored digest catches it
        with np.load(path) as z:
            cache = {k: z[k] for k in z.files}
        cache["grams"] = cache["grams"] * 1.5
        with open(path, "wb") as f:
            np.savez(f, **cache)


@pytest.mark.parametrize("how", ["truncated", "flipped", "rewritten"])
def test_damaged_gram_cache_is_recomputed_with_one_note(run, capsys, how):
    expected = _pc1(run)
    _damage_cache(_cache(run), how)
    capsys.readouterr()
    assert trajectory_pca_uncentered.main([str(run), "--window", "3", "--no-figures", "--no-progress"]) == 0
    notes = _notes(capsys)
    assert len(notes) == 1 and str(_cache(run)) in notes[0] and "is damaged" in notes[0]
    assert notes[0].endswith("recomputing it")
    assert _pc1(run) == pytest.approx(expected, rel=1e-12)
    assert trajectory_pca_uncentered.main([str(run), "--window", "3", "--no-figures", "--no-progress"]) == 0
    assert _notes(capsys) == []  # the rewritten cache is whole again


def test_gram_cache_with_a_changed_checkpoint_is_never_reused(run, capsys, monkeypatch):
    """A checkpoint retrained in place with its old size and mtime (what a copy with preserved times can leave):
    size and mtime cannot tell, the stored digests can."""
    path = ck.ckpt_path(run, 20)
    st = path.stat()
    rewrite_checkpoint(run, 20, delta=0.5)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    before = _pc1(run)
    capsys.readouterr()
    calls = []
    real = gram_stream.gram_matrices
    monkeypatch.setattr(gram_stream, "gram_matrices", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    assert trajectory_pca_uncentered.main([str(run), "--window", "3", "--no-figures", "--no-progress"]) == 0
    notes = _notes(capsys)
    assert len(notes) == 1 and f"was computed from checkpoint {path}, which changed" in notes[0]
    assert len(calls) == 1 and 20 in calls[0]
    assert abs(_pc1(run) - before) > 1e-6  # the numbers follow the new checkpoint
    direct = real(run, [1, 5, 10, 15, 20, 25, 30], ["trunk"], progress=False)["trunk"]
    cached = gram_cache.trajectory_grams(run, [1, 5, 10, 15, 20, 25, 30], ["trunk"], progress=False)["trunk"]
    np.testing.assert_allclose(cached, direct, rtol=1e-12)


def test_gram_cache_of_the_old_format_is_recomputed_with_a_note(run, capsys):
    with np.load(_cache(run)) as z:
        old = {"steps": z["steps"], "scopes": z["scopes"], "grams": z["grams"]}
    stats = [[p.stat().st_size, p.stat().st_mtime_ns] for p in (ck.ckpt_path(run, s) for s in old["steps"])]
    with open(_cache(run), "wb") as f:
        np.savez(f, **old, stats=np.asarray(stats, dtype=np.int64))
    capsys.readouterr()
    gram_cache.trajectory_grams(run, [1, 10], ["trunk"], progress=False)
    notes = _notes(capsys)
    assert len(notes) == 1 and "written before the ids of its checkpoints were recorded" in notes[0]


# ------------------------------------------------------------------------------------------------------------------
# Cases 1 and 3: a damaged or out-of-date directions.pt is refused in one line naming the command that remakes it
# ------------------------------------------------------------------------------------------------------------------

def _remake(run_dir) -> str:
    return f"`python trajectory_pca_uncentered.py {run_dir} --save-directions`"


def test_flipped_bytes_in_directions_are_refused(run, capsys):
    assert backbone_fisher_analysis.main([str(run), *FISHER]) == 0
    doc = json.loads((run / "analysis" / "fisher.json").read_text())
    path = run / "analysis" / "directions.pt"
    payload = torch.load(path, weights_only=True)
    assert doc["provenance"]["artefacts"] == {"analysis/directions.pt": payload["digest"]}
    assert set(doc["provenance"]["checkpoints"]) == {str(s) for s in payload["steps"]} | {"5", "30"}
    raw = bytearray(path.read_bytes())
    i = raw.find(payload["vectors"]["trunk_raw_pc2"].numpy().tobytes()[:64])
    assert i > 0
    raw[i + 64:i + 80] = bytes(b ^ 0xFF for b in raw[i + 64:i + 80])  # 16 bytes of v_PC2
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    assert backbone_fisher_analysis.main([str(run), *FISHER]) == 2
    err = one_line_error(capsys, "backbone_fisher_analysis.py")
    assert f"{path} is damaged (vector trunk_raw_pc2 does not match" in err and err.endswith(_remake(run))


def test_truncated_directions_are_refused(run, capsys):
    path = run / "analysis" / "directions.pt"
    path.write_bytes(path.read_bytes()[:3000])
    assert backbone_fisher_analysis.main([str(run), *FISHER]) == 2
    err = one_line_error(capsys, "backbone_fisher_analysis.py")
    assert f"{path} is damaged (" in err and err.endswith(_remake(run))


def test_directions_from_changed_checkpoints_or_a_shorter_run_are_refused(run, capsys):
    rewrite_checkpoint(run, 25)
    assert backbone_fisher_analysis.main([str(run), *FISHER]) == 2
    err = one_line_error(capsys, "backbone_fisher_analysis.py")
    assert f"directions.pt is out of date: its input checkpoint {ck.ckpt_path(run, 25)} changed" in err
    assert err.endswith(_remake(run))
    assert trajectory_pca_uncentered.main([str(run), "--window", "3", "--no-figures", "--no-progress",
                                           "--save-directions"]) == 0  # the command named: the refusal is gone
    assert backbone_fisher_analysis.main([str(run), *FISHER]) == 0


def test_directions_of_the_old_format_are_refused(run, capsys):
    path = run / "analysis" / "directions.pt"
    payload = torch.load(path, weights_only=True)
    ck.atomic_torch_save({k: payload[k] for k in ("ref_step", "steps", "row_steps", "switch_pair", "scopes",
                                                  "vectors")}, path)
    assert backbone_fisher_analysis.main([str(run), *FISHER]) == 2
    assert "was written before the inputs of directions were recorded" in one_line_error(
        capsys, "backbone_fisher_analysis.py")


# ------------------------------------------------------------------------------------------------------------------
# Case 4: the report refuses analysis JSON that no longer describes its run
# ------------------------------------------------------------------------------------------------------------------

def _analyse_mid_training(run_dir, tmp_path):
    """trajectory_pca.json made with --allow-running while the run had reached step 20; then the run finishes."""
    held = tmp_path / "later"
    held.mkdir()
    for s in (25, 30):
        shutil.move(ck.ckpt_path(run_dir, s), held / ck.ckpt_path(run_dir, s).name)
    (run_dir / "analysis" / "gram_cache.npz").unlink()
    set_info(run_dir, status="running")
    assert trajectory_pca_uncentered.main([str(run_dir), "--window", "3", "--no-figures", "--no-progress",
                                           "--allow-running"]) == 0
    for p in held.iterdir():
        shutil.move(p, run_dir / p.name)
    set_info(run_dir, status="finished")


def test_report_refuses_an_analysis_made_before_the_run_ended(run, tmp_path, capsys):
    _analyse_mid_training(run, tmp_path)
    out = tmp_path / "generated"
    capsys.readouterr()
    assert make_report.main(["--runs", str(run), "--out", str(out), "--quiet"]) == 2
    err = one_line_error(capsys, "make_report.py")
    assert err == (f"make_report.py: error: {run}/analysis/trajectory_pca.json is out of date: it was made when {run} "
                   f"had 6 checkpoint(s) up to step 20; the run now has 8 up to step 30; refresh it with "
                   f"`python trajectory_pca_uncentered.py {run}`")
    assert not out.exists()
    assert trajectory_pca_uncentered.main([str(run), "--window", "3", "--no-figures", "--no-progress"]) == 0
    assert make_report.main(["--runs", str(run), "--out", str(out), "--quiet"]) == 0


def test_report_refuses_an_analysis_whose_checkpoints_changed(run, tmp_path, capsys):
    rewrite_checkpoint(run, 15)
    assert make_report.main(["--runs", str(run), "--out", str(tmp_path / "gen"), "--quiet"]) == 2
    err = one_line_error(capsys, "make_report.py")
    assert f"trajectory_pca.json is out of date: its input checkpoint {ck.ckpt_path(run, 15)} changed" in err
    assert err.endswith(f"refresh it with `python trajectory_pca_uncentered.py {run}`")


def test_report_reads_legacy_json_and_results_copies_unchecked(run, tmp_path, capsys):
    """JSON written before inputs were recorded has nothing to check (the committed results); a results copy
    without checkpoints has nothing to check against."""
    _analyse_mid_training(run, tmp_path)
    path = run / "analysis" / "trajectory_pca.json"
    doc = json.loads(path.read_text())
    copy = tmp_path / "copy" / run.name
    copy.mkdir(parents=True)
    for name in ("run.json", "metrics.jsonl", "codewords.json"):
        shutil.copy(run / name, copy / name)
    (copy / "analysis").mkdir()
    shutil.copy(path, copy / "analysis" / path.name)
    assert make_report.main(["--runs", str(copy), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    doc.pop("provenance")
    ck.atomic_write_json(doc, path)
    assert make_report.main(["--runs", str(run), "--out", str(tmp_path / "b"), "--quiet"]) == 0


def test_control_analysis_records_each_run_and_the_report_checks_them(run, tmp_path):
    """write_analysis on a directory of runs records every checkpoint of each; the report refuses the table once
    one of them changed, naming the control command."""
    from drift.report.inputs import load_evidence
    from drift.run.info import write_analysis
    root = tmp_path / "ctrl"
    root.mkdir()
    shutil.copytree(run, root / "A", ignore=shutil.ignore_patterns("analysis"))
    info = ck.read_json(root / "A" / "run.json")
    ck.atomic_write_json({**info, "kind": "controls"}, root / "A" / "run.json")  # a control run, as the trainer marks it
    write_analysis(root, "sgd_control", {"rows": []}, {}, {"A": str(root / "A"), "provenance": None})
    doc = json.loads((root / "analysis" / "sgd_control.json").read_text())
    assert "provenance" not in doc["inputs"] and list(doc["provenance"]["runs"]) == ["A"]
    assert set(doc["provenance"]["runs"]["A"]["checkpoints"]) == {str(s) for s in ck.list_steps(run)}
    assert load_evidence([run], controls=root).control("sgd_control") == {"rows": []}
    rewrite_checkpoint(root / "A", 30)
    with pytest.raises(ck.RunError) as e:
        load_evidence([run], controls=root)
    assert str(e.value) == (f"{root}/analysis/sgd_control.json is out of date: its input checkpoint "
                            f"{ck.ckpt_path(root / 'A', 30)} changed since it was made; refresh it with "
                            f"`python sgd_control_analysis.py {root}`")
