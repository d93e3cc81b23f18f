"""Checkpoint integrity (drift/run/integrity.py): flipped bytes inside a stored tensor, which torch.load accepts
silently, stop every reader with the file's name; untouched files pass; checkpoints written before digests
existed are read with one warning.

Run: pytest tests/test_integrity.py
"""
import json
import shlex
import warnings

import numpy as np
import pytest
import torch

import backbone_update_analysis
import train as train_script
import trajectory_pca_uncentered as pca_script
from drift.run import checkpoint as ck
from drift.run import digests, integrity
from drift.analysis import gram_stream
from drift.run.params import scope_keys

KEY = "blocks.0.mlp.w_up.weight"


def _flip_16_bytes(path, key=KEY):
    """XOR 16 bytes in the middle of `key`'s stored data, leaving the zip structure (and file size) intact."""
    state = ck.load_checkpoint_file(path, mmap=True, verify=False)["model"]
    offset = gram_stream.tensor_offsets(path, state)[key] + state[key].numel() * state[key].element_size() // 2
    with open(path, "r+b") as f:
        f.seek(offset)
        data = bytes(b ^ 0xFF for b in f.read(16))
        f.seek(offset)
        f.write(data)


def _strip_digests(run_dir):
    """Rewrite every checkpoint in the format used before digests existed."""
    for step in ck.list_steps(run_dir):
        path = ck.ckpt_path(run_dir, step)
        ckpt = torch.load(path, weights_only=True)
        del ckpt[digests.FIELD]
        torch.save(ckpt, path)


def test_save_stores_a_digest_per_tensor(tiny_run):
    ckpt = ck.load_checkpoint(tiny_run, 10)
    assert digests.FIELD == "xxh3_128" and "sha256" not in ckpt
    assert set(ckpt[digests.FIELD]) == set(ckpt["model"])
    raw = ckpt["model"][KEY].numpy().tobytes()
    import xxhash
    assert ckpt[digests.FIELD][KEY] == xxhash.xxh3_128_hexdigest(raw)


def _to_sha256(run_dir):
    """Rewrite every checkpoint as the project wrote them before XXH3: sha256 digests under "sha256"."""
    import hashlib
    for step in ck.list_steps(run_dir):
        path = ck.ckpt_path(run_dir, step)
        ckpt = torch.load(path, weights_only=True)
        del ckpt[digests.FIELD]
        ckpt["sha256"] = {k: hashlib.sha256(digests.tensor_bytes(t)).hexdigest() for k, t in ckpt["model"].items()}
        torch.save(ckpt, path)


def test_sha256_checkpoints_are_still_checked(tiny_run_copy):
    """Checkpoints written with sha256 digests load verified (no warning) by every reader, and a flipped byte in
    one is caught by sha256, by the loader, the streaming Gram and the integrity command alike."""
    _to_sha256(tiny_run_copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", digests.UnverifiedCheckpointWarning)
        ck.load_checkpoint(tiny_run_copy, 10)
        gram_stream.gram_matrices(tiny_run_copy, ck.list_steps(tiny_run_copy), ["block0"], progress=False)
    assert integrity.check_run(tiny_run_copy)[1:] == ([], [], [])
    _flip_16_bytes(ck.ckpt_path(tiny_run_copy, 10))
    with pytest.raises(ck.RunError, match="ckpt_000010.pt is corrupt: tensor blocks.0.mlp.w_up.weight"):
        ck.load_checkpoint(tiny_run_copy, 10)
    with pytest.raises(ck.RunError, match="ckpt_000010.pt is corrupt"):
        gram_stream.gram_matrices(tiny_run_copy, ck.list_steps(tiny_run_copy), ["block0"], progress=False)
    assert integrity.check_run(tiny_run_copy)[1] == ["ckpt_000010.pt"]


def test_flipped_bytes_load_silently_without_the_check(tiny_run_copy):
    """The failure the check exists for: torch does not notice, and the numbers change."""
    before = ck.load_checkpoint(tiny_run_copy, 10)["model"][KEY].clone()
    path = ck.ckpt_path(tiny_run_copy, 10)
    _flip_16_bytes(path)
    after = ck.load_checkpoint_file(path, 10, verify=False)["model"][KEY]
    assert not torch.equal(before, after) and path.stat().st_size == len(path.read_bytes())


def test_flipped_bytes_stop_every_reader_naming_the_file(tiny_run_copy, capsys):
    _flip_16_bytes(ck.ckpt_path(tiny_run_copy, 10))
    steps = ck.list_steps(tiny_run_copy)
    assert KEY in scope_keys(ck.load_checkpoint(tiny_run_copy, 5)["model"], "trunk")
    with pytest.raises(ck.RunError, match=r"ckpt_000010\.pt is corrupt: tensor blocks\.0\.mlp\.w_up\.weight"):
        ck.load_checkpoint(tiny_run_copy, 10)
    with pytest.raises(ck.RunError, match=r"ckpt_000010\.pt is corrupt"):  # the mapped load reads every byte too
        ck.load_checkpoint(tiny_run_copy, 10, mmap=True)
    with pytest.raises(ck.RunError, match=r"ckpt_000010\.pt is corrupt"):  # streaming positioned reads
        gram_stream.gram_matrices(tiny_run_copy, steps, ["trunk"], progress=False)
    with pytest.raises(ck.RunError, match=r"ckpt_000010\.pt is corrupt"):  # streaming fallback (mapped tensors)
        orig = gram_stream.tensor_offsets
        gram_stream.tensor_offsets = lambda *a: None
        try:
            gram_stream.gram_matrices(tiny_run_copy, steps, ["block0"], progress=False)
        finally:
            gram_stream.tensor_offsets = orig
    with pytest.raises(ck.RunError, match=r"ckpt_000010\.pt is corrupt"):  # direction materialization
        gram_stream.materialize(tiny_run_copy, steps, {"v": ("trunk", np.ones(len(steps)))}, progress=False)
    # Both analyses of the issue refuse with one line naming the file and a command to run.
    for script, name in [(pca_script, "trajectory_pca_uncentered.py"),
                         (backbone_update_analysis, "backbone_update_analysis.py")]:
        assert script.main([str(tiny_run_copy), "--no-progress"] if script is pca_script
                           else [str(tiny_run_copy)]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]  # after any progress bar
        assert err.startswith(f"{name}: error: checkpoint") and "ckpt_000010.pt is corrupt" in err
        assert err.endswith(f"python -m drift.run.integrity {tiny_run_copy}")


def test_hint_command_finds_the_file_and_its_retrain_command_restores_it(tiny_run_copy, tmp_path, capsys):
    info = json.loads((tiny_run_copy / "run.json").read_text())
    info["argv"] = ["train.py", "--preset", "tiny", "--seed", "1", "--out", "runs/tiny_s1", "--no-progress"]
    (tiny_run_copy / "run.json").write_text(json.dumps(info))
    stored = ck.load_checkpoint(tiny_run_copy, 10)[digests.FIELD]
    _flip_16_bytes(ck.ckpt_path(tiny_run_copy, 10))
    assert integrity.main([str(tiny_run_copy)]) == 1
    out = capsys.readouterr().out
    assert f"corrupt: {ck.ckpt_path(tiny_run_copy, 10)}" in out and "0 without digests" in out
    cmd = shlex.split(out.strip().splitlines()[-1].split(": ", 1)[1])
    assert cmd[:2] == ["python", "train.py"] and cmd[cmd.index("--out") + 1] == f"{tiny_run_copy}_retrained"
    cmd[cmd.index("--out") + 1] = str(tmp_path / "retrained")  # keep the test's files inside tmp_path
    assert train_script.main(cmd[2:]) == 0
    assert ck.load_checkpoint(tmp_path / "retrained", 10)[digests.FIELD] == stored  # bit-exact replacement


def test_untouched_run_passes_without_warnings(tiny_run):
    steps = ck.list_steps(tiny_run)
    with warnings.catch_warnings():
        warnings.simplefilter("error", digests.UnverifiedCheckpointWarning)
        grams = gram_stream.gram_matrices(tiny_run, steps, ["trunk"], progress=False)
        ck.load_checkpoint(tiny_run, steps[-1])
    assert np.isfinite(grams["trunk"]).all()
    assert integrity.check_run(tiny_run) == ([ck.ckpt_path(tiny_run, s).name for s in steps], [], [], [])


def test_old_format_warns_once_then_add_stores_digests(tiny_run, tiny_run_copy, capsys):
    steps = ck.list_steps(tiny_run_copy)
    reference = gram_stream.gram_matrices(tiny_run, steps, ["trunk"], progress=False)["trunk"]
    _strip_digests(tiny_run_copy)
    with pytest.warns(digests.UnverifiedCheckpointWarning, match="python -m drift.run.integrity") as record:
        grams = gram_stream.gram_matrices(tiny_run_copy, steps, ["trunk"], progress=False)
        for s in steps:
            ck.load_checkpoint(tiny_run_copy, s)
    assert len([w for w in record if w.category is digests.UnverifiedCheckpointWarning]) == 1
    np.testing.assert_array_equal(grams["trunk"], reference)
    assert integrity.main([str(tiny_run_copy), "--add"]) == 0
    assert f"{len(steps)} without digests (digests added)" in capsys.readouterr().out
    assert integrity.check_run(tiny_run_copy)[0] == [ck.ckpt_path(tiny_run_copy, s).name for s in steps]
    _flip_16_bytes(ck.ckpt_path(tiny_run_copy, 20))
    with pytest.raises(ck.RunError, match=r"ckpt_000020\.pt is corrupt"):
        gram_stream.gram_matrices(tiny_run_copy, steps, ["trunk"], progress=False)


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        integrity.main(["--help"])
    assert e.value.code == 0 and "--add" in capsys.readouterr().out
    assert integrity.main(["/no/such/run"]) == 2
    assert "does not exist" in capsys.readouterr().err
