"""Tests for drift.analysis.backbone, drift.analysis.gram_cache and trajectory_pca_uncentered.py: planted answers on a
synthetic run, the Gram cache, directions.pt, the streaming Gram against a dense product, and the script's error
paths.

Run: pytest tests/test_backbone.py
"""
import json
import math
import os

import numpy as np
import pytest
import torch

import trajectory_pca_uncentered as script
from drift.analysis import backbone as bb
from drift.analysis import gram_cache
from drift.run import checkpoint as ck
from drift.analysis import gram_stream
from drift.config import resolve
from drift.run.params import scope_keys
from drift.run.info import load_run
from helpers import dense
from helpers.runs import rewrite_checkpoint

TOP_KEYS = {"setup", "trunk", "blocks", "rolling", "phases", "power_laws", "correlations", "switching", "series"}
SHAPES = {"attn.qkv.weight": (24, 8), "attn.out_proj.weight": (8, 8), "mlp.w_up.weight": (16, 8),
          "mlp.w_down.weight": (8, 16), "ln1.weight": (8,), "ln1.bias": (8,), "ln2.weight": (8,), "ln2.bias": (8,)}
STEPS = [0, 1] + list(range(10, 201, 10))
PEAK, TROUGH, BUMP = 60, 80, 0.07


def _unit(x):
    return x / np.linalg.norm(x)


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """200 steps, checkpoints every 10, switch at 80. theta_t = theta_1 + (t/200)^2 v + tiny noise along a fixed
    unit v over the trunk matrices, plus a transverse bump BUMP * u (u in block 0, u _|_ v) at the p_ood peak
    (step 60); p_ood has one peak (60) and one trough (80)."""
    run_dir = tmp_path_factory.mktemp("runs") / "synthetic"
    run_dir.mkdir()
    cfg = resolve("tiny", overrides=dict(n_layer=2, d_model=8, n_head=2, d_ff=16, total_steps=200, ckpt_every=10,
                                         eval_every=10, lambda_switch_step=80))
    ck.atomic_write_json({"config": cfg.to_dict(), "status": "finished"}, run_dir / "run.json")
    keys = sorted(f"blocks.{l}.{k}" for l in range(2) for k in SHAPES)
    sizes = [int(np.prod(SHAPES[k.split(".", 2)[2]])) for k in keys]
    trunk = np.concatenate([np.full(n, k.endswith("weight") and ".ln" not in k) for k, n in zip(keys, sizes)])
    block0 = np.concatenate([np.full(n, k.startswith("blocks.0.") and ".ln" not in k) for k, n in zip(keys, sizes)])
    rng = np.random.default_rng(0)
    v = _unit(rng.standard_normal(trunk.size) * trunk)
    u = rng.standard_normal(trunk.size) * block0
    u = _unit(u - (u @ v) * v)
    theta1 = rng.standard_normal(trunk.size) * 0.02
    for step in STEPS:
        x = (step / 200) ** 2 * v + (BUMP * u if step == PEAK else 0) + 1e-5 * rng.standard_normal(trunk.size)
        flat = theta1 + (x if step > 1 else 0)
        parts = np.split(flat, np.cumsum(sizes)[:-1])
        state = {k: torch.tensor(p.reshape(SHAPES[k.split(".", 2)[2]]), dtype=torch.float32)
                 for k, p in zip(keys, parts)}
        ck.save_checkpoint(run_dir, step, state, cfg.to_dict())
    p_ood = {s: 0.5 if s == PEAK else 0.05 if s == TROUGH else 0.2 for s in STEPS if s >= 1}
    with open(run_dir / "metrics.jsonl", "w") as f:
        for s, p in p_ood.items():
            f.write(json.dumps({"step": s, "val_loss": 5.0 - s / 100, "p_in": 0.5, "p_ood": p}) + "\n")
    return {"run_dir": run_dir, "v": v, "u": u, "block0": block0, "trunk": trunk}


@pytest.fixture(scope="module")
def synthetic_results(synthetic_run):
    return bb.analyze_run(load_run(synthetic_run["run_dir"]), progress=False)


def test_analyze_synthetic_planted_answers(synthetic_run, synthetic_results):
    r = synthetic_results
    assert set(r) == TOP_KEYS
    json.dumps(r)  # JSON-ready as returned
    setup = r["setup"]
    assert setup["row_steps"] == STEPS[2:] and setup["split_step"] == 80 and setup["row_steps_stride2"][:2] == [20, 40]
    assert r["trunk"]["pc1_raw_full"] > 0.99 and r["trunk"]["pc2_rownorm_full"] < 0.1
    assert min(r["blocks"]["pc1"]["block"] + r["blocks"]["pc1"]["block+ln"]) > 0.99
    t = np.array(r["series"]["steps"], dtype=float)
    # a(t) = the planted drift; the bump row tilts the row-normalized v_b by ~0.02 rad.
    np.testing.assert_allclose(r["series"]["a"], (t / 200) ** 2, rtol=3e-2)
    assert r["series"]["r_norm"][STEPS[2:].index(PEAK)] == pytest.approx(BUMP, rel=5e-2)
    # gamma = 2 in every window; the paper's windows scaled to 200 steps.
    assert [(w["lo"], w["hi"]) for w in r["power_laws"]["windows"]] == \
        [(0, 40), (40, 80), (80, 120), (120, 200), (0, 80), (80, 200)]
    for fit in r["power_laws"]["a"]:
        assert fit["gamma"] == pytest.approx(2.0, abs=0.01) and fit["r2"] > 0.999
    assert [(w["lo"], w["hi"]) for w in r["correlations"]["windows"]] == [(0, 200), (0, 80), (80, 200), (120, 200)]
    corr = [c["r"] for c in r["correlations"]["p_ood_vs_r_norm"]]
    assert corr[0] > 0.5 and corr[1] > 0.5  # the p_ood peak is the ||r|| peak
    assert all(math.isnan(c) or abs(c) < 1e-6 for c in corr[2:])  # p_ood is constant after the trough
    assert r["rolling"]["trunk"]["rho_mean"] > 0.95 and len(r["series"]["rho"]) == 20 - 10
    assert r["rolling"]["blocks_summary"]["block"]["rho_min"] > 0.99  # global reference: always along v
    assert r["phases"]["abs_cos"] > 0.9 and len(r["phases"]["A_E"]) == len(r["series"]["centers"]) == 11


def test_switching_planted_geometry(synthetic_run, synthetic_results):
    sw = synthetic_results["switching"]
    assert (sw["peaks"], sw["troughs"], sw["first_pair"]) == ([PEAK], [TROUGH], [PEAK, TROUGH])
    da = (TROUGH / 200) ** 2 - (PEAK / 200) ** 2
    assert sw["first"]["trunk"]["c"] == pytest.approx(da / math.hypot(da, BUMP), abs=5e-3)
    n0 = np.linalg.norm(synthetic_run["v"][synthetic_run["block0"]])  # share of v in block 0
    by_scope = sw["first"]["by_scope"]
    for scope in ("block0", "block0+ln"):
        assert by_scope[scope]["c"] == pytest.approx(da * n0 / math.hypot(da * n0, BUMP), abs=1e-2)
    assert by_scope["block1"]["c"] > 0.99  # no bump in block 1
    assert sw["first"]["summary"]["block"]["c_max"] == pytest.approx(by_scope["block1"]["c"])
    assert sw["dimension"]["effective_dim"] == 1


def test_gram_cache_reused_and_invalidated(synthetic_run, tmp_path, monkeypatch):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run["run_dir"], run_dir)
    first = bb.analyze_run(run_dir, progress=False)
    assert (run_dir / "analysis" / gram_cache.GRAM_CACHE).exists()

    def no_reads(*a, **k):
        raise AssertionError("checkpoint read despite a valid cache")
    with monkeypatch.context() as m:
        m.setattr(gram_stream, "gram_matrices", no_reads)
        m.setattr(ck, "load_checkpoint", no_reads)
        again = bb.analyze_run(run_dir, progress=False)
        sub = gram_cache.trajectory_grams(run_dir, [20, 40, 60, 100], ["block1"], progress=False)
    assert again == first
    direct = gram_stream.gram_matrices(run_dir, [20, 40, 60, 100], ["block1"], progress=False)["block1"]
    np.testing.assert_allclose(sub["block1"], direct, rtol=1e-9, atol=1e-12 * np.abs(direct).max())

    calls = []
    real = gram_stream.gram_matrices
    monkeypatch.setattr(gram_stream, "gram_matrices", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    path = ck.ckpt_path(run_dir, 100)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    bb.analyze_run(run_dir, progress=False)
    assert calls == []  # a new mtime is not new content (a copy without preserved times keeps its cache)
    rewrite_checkpoint(run_dir, 100)
    bb.analyze_run(run_dir, progress=False)
    assert len(calls) == 1 and 100 in calls[0]


def test_directions_round_trip_and_signs(synthetic_run, tmp_path, monkeypatch):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run["run_dir"], run_dir)
    d = bb.load_directions(run_dir)  # computed on first use
    vec = d["vectors"]
    expected = {"trunk_rownorm_pc1", "trunk_raw_pc1", "trunk_raw_pc2", "trunk_switch"} | \
        {f"block{l}{s}_raw_pc1" for l in range(2) for s in ("", "+ln")}
    assert expected <= set(vec) and d["switch_pair"] == [PEAK, TROUGH] and d["ref_step"] == 1
    for name in expected - {"trunk_switch"}:
        theta = dense.thetas(run_dir, [1] + STEPS[2:], d["scopes"][name])
        assert vec[name].dtype == torch.float32 and vec[name].numel() == theta.shape[1]
        assert float(vec[name].norm()) == pytest.approx(1.0, abs=1e-5)
        if "pc1" in name:  # numpy's PC1 of the drifts from step 1, signed so that a(t_last) > 0
            want = dense.pc1(theta[1:] - theta[0], normalize="rownorm" in name)
            np.testing.assert_allclose(vec[name].double().numpy(), want, rtol=0, atol=1e-6, err_msg=name)
    v = torch.tensor(synthetic_run["v"][synthetic_run["trunk"]], dtype=torch.float32)
    assert float(vec["trunk_raw_pc1"] @ v) > 0.999
    peak, trough = (gram_stream.flat_vector(ck.load_checkpoint(run_dir, s)["model"], "trunk") for s in (PEAK, TROUGH))
    assert float(vec["trunk_switch"] @ (peak - trough) / (peak - trough).norm()) == pytest.approx(1.0, abs=1e-5)

    monkeypatch.setattr(gram_stream, "materialize", lambda *a, **k: pytest.fail("recomputed a fresh file"))
    again = bb.load_directions(run_dir, ["block0_raw_pc1"], compute_if_missing=False)
    assert list(again["vectors"]) == ["block0_raw_pc1"]
    assert torch.equal(again["vectors"]["block0_raw_pc1"], vec["block0_raw_pc1"])
    with pytest.raises(ck.RunError, match="not in"):
        bb.load_directions(run_dir, ["no_such_direction"])
    rewrite_checkpoint(run_dir, 30)
    with pytest.raises(ck.RunError, match="ckpt_000030.pt changed since it was made.*--save-directions"):
        bb.load_directions(run_dir)  # an input of other analyses is refused, not silently redone


def test_streaming_gram_equals_dense(tiny_run, monkeypatch):
    steps = ck.list_steps(tiny_run)
    scopes = ["trunk", "block0", "block1+ln"]
    grams = gram_stream.gram_matrices(tiny_run, steps, scopes, progress=False)
    states = [ck.load_checkpoint(tiny_run, s)["model"] for s in steps]
    for scope in scopes:
        X = torch.stack([torch.cat([st[k].reshape(-1).double() for k in scope_keys(st.keys(), scope)])
                         for st in states]).numpy()
        X = X - X[0]
        dense = X @ X.T
        np.testing.assert_allclose(grams[scope], dense, rtol=0, atol=1e-10 * np.abs(dense).max())
    # The float32 option: products rounded to float32 within a chunk, accumulated in float64 across chunks.
    grams32 = gram_stream.gram_matrices(tiny_run, steps, scopes, progress=False, float32=True, chunk=64)
    for scope in scopes:
        np.testing.assert_allclose(grams32[scope], grams[scope], rtol=0, atol=1e-6 * np.abs(grams[scope]).max())
        assert not np.array_equal(grams32[scope], grams[scope])  # it did take the float32 route
    # The fast path located every tensor in the file; the fallback (the mapped tensors) gives the same numbers.
    path = ck.ckpt_path(tiny_run, steps[-1])
    state = ck.load_checkpoint(tiny_run, steps[-1], mmap=True)["model"]
    offsets = gram_stream.tensor_offsets(path, state)
    raw = path.read_bytes()
    for key in scope_keys(state.keys(), "trunk"):
        t = state[key]
        assert raw[offsets[key]:offsets[key] + t.numel() * 4] == t.contiguous().numpy().tobytes()
    monkeypatch.setattr(gram_stream, "tensor_offsets", lambda *a: None)
    fallback = gram_stream.gram_matrices(tiny_run, steps, scopes, progress=False)
    for scope in scopes:
        np.testing.assert_array_equal(fallback[scope], grams[scope])


def test_analyze_tiny_run_equals_a_dense_svd_of_its_checkpoints(tiny_run_copy):
    """Every A1-A5 number of the tiny run against numpy's SVD of the explicit checkpoint matrices (tests/helpers/
    dense.py): rows theta_s - theta_1 for s = 5 ... 30, windows of 3 rows, the phase split at step 10."""
    r = bb.analyze_run(tiny_run_copy, window=3, progress=False)
    assert set(r) == TOP_KEYS
    steps = [1, 5, 10, 15, 20, 25, 30]
    assert r["setup"]["row_steps"] == steps[1:] and r["setup"]["split_step"] == 10
    theta = dense.thetas(tiny_run_copy, steps)
    X = theta[1:] - theta[0]
    rn, raw = dense.shares(X, normalize=True), dense.shares(X)
    t = r["trunk"]
    close = dict(rel=1e-9)
    assert (t["pc1_rownorm_full"], t["pc2_rownorm_full"], t["pc1_raw_full"]) == pytest.approx((rn[0], rn[1], raw[0]),
                                                                                               **close)
    assert t["pc1_rownorm_top10"] == pytest.approx(rn[0], **close)       # 6 rows: the top 10 are all of them
    a = X @ dense.pc1(X, normalize=True)                                  # A3 on the row-normalized v_b
    f_b = a ** 2 / np.sum(X ** 2, axis=1)
    np.testing.assert_allclose(r["series"]["a"], a, rtol=1e-9)
    np.testing.assert_allclose(r["series"]["r_norm"], np.sqrt(np.sum(X ** 2, axis=1) - a ** 2), rtol=1e-6)
    assert (t["f_b_final"], t["f_b_mean"]) == pytest.approx((f_b[-1], f_b.mean()), **close)
    for l in range(2):
        for fam, suffix in (("block", ""), ("block+ln", "+ln")):
            B = dense.thetas(tiny_run_copy, steps, f"block{l}{suffix}")
            assert r["blocks"]["pc1"][fam][l] == pytest.approx(dense.shares(B[1:] - B[0])[0], **close), (fam, l)
    # A4: windows of 3 consecutive rows, drifts from the window's first, row-normalized; rho = adjacent |cos|
    dirs = [dense.pc1(theta[i + 2:i + 4] - theta[i + 1], normalize=True) for i in range(len(steps) - 3)]
    rho = [abs(dirs[i] @ dirs[i + 1]) for i in range(len(dirs) - 1)]
    np.testing.assert_allclose(r["series"]["rho"], rho, rtol=1e-9)
    assert r["rolling"]["trunk"]["rho_mean"] == pytest.approx(np.mean(rho), **close)
    # A5: v_E over (1, 10] from step 1, v_L over the later rows from step 10
    early, late = theta[1:3] - theta[0], theta[3:] - theta[2]
    ph = r["phases"]
    assert ph["abs_cos"] == pytest.approx(abs(dense.pc1(early, True) @ dense.pc1(late, True)), **close)
    assert (ph["early_pc1_full"], ph["late_pc1_full"]) == pytest.approx(
        (dense.shares(early, True)[0], dense.shares(late, True)[0]), **close)


def test_script_writes_json_and_figures(tiny_run_copy, capsys):
    assert script.main([str(tiny_run_copy), "--window", "3", "--no-progress"]) == 0
    doc = json.loads((tiny_run_copy / "analysis" / "trajectory_pca.json").read_text())
    assert doc["analysis"] == "trajectory_pca" and set(doc["results"]) == TOP_KEYS
    assert doc["inputs"]["steps"] == [1, 5, 10, 15, 20, 25, 30] and doc["params"]["window"] == 3
    for stem in ("explained_variance", "backbone_residual", "rho", "phase_alignment"):
        for ext in ("pdf", "png"):
            head = (tiny_run_copy / "figures" / f"trajectory_{stem}.{ext}").read_bytes()[:8]
            assert head.startswith(b"%PDF-" if ext == "pdf" else b"\x89PNG\r\n\x1a\n"), (stem, ext, head)
    assert "trunk PC1 row-norm" in capsys.readouterr().out


def test_script_help(capsys):
    with pytest.raises(SystemExit) as e:
        script.main(["--help"])
    assert e.value.code == 0 and "--ref-step" in capsys.readouterr().out


def test_script_corrupt_middle_checkpoint(tiny_run_copy, capsys):
    path = ck.ckpt_path(tiny_run_copy, 15)
    path.write_bytes(path.read_bytes()[:1000])
    assert script.main([str(tiny_run_copy), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trajectory_pca_uncentered.py: error:") and "ckpt_000015.pt" in err
    assert len(err.splitlines()) == 1


def test_script_bad_split_step(tiny_run_copy, capsys):
    assert script.main([str(tiny_run_copy), "--split-step", "12", "--no-progress"]) == 2
    assert "split step 12" in capsys.readouterr().err
