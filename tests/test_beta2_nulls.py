"""Tests for the beta2-sweep nulls (drift/nulls/beta2.py, trajectory_nulls.py --beta2) and the null verdicts of
C14, C17, C18 and C19.

Planted: three runs with the same update norms whose updates share a direction less and less as beta2 drops give a
fall of every trend statistic "beyond null"; the same runs as isotropic walks give "within null". Updates that
align with one direction more and more over time give gamma_a > 1 above the matched walk's band (C18 beyond null);
isotropic runs are within, and so is a fully coherent drift with step norms growing like t: its gamma_a is
superlinear, but a random walk with those norms grows faster along its own PC1. The net-fall arithmetic is checked on crafted draws. End to end on a tiny sweep: the
observed values equal the beta2 table's, the p_probe group of fewer than 3 runs is set aside, and the report shows
the verdicts and the table's band column.

Run: pytest tests/test_beta2_nulls.py
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil

import numpy as np
import pytest

from drift.nulls import beta2 as bn
from drift.run import checkpoint as ck
from drift.report import claims as cl, inputs as inp, null_verdicts as nv
from drift.nulls import trajectory as nulls
from drift.geometry.trajectory import Trajectory
from helpers import dense

STEPS = [1] + list(range(5, 121, 5))
D = 2000
BETA2 = (0.99, 0.9, 0.0)


def _walk(coherence, norms: np.ndarray, seed: int) -> Trajectory:
    """Updates of the given norms, update i along c_i * e + sqrt(1 - c_i^2) * (isotropic unit vector), |e| = 1
    (coherence: one c for all updates, or one per update)."""
    rng = np.random.default_rng(seed)
    e = np.zeros(D)
    e[0] = 1.0
    xi = rng.standard_normal((len(norms), D))
    xi /= np.linalg.norm(xi, axis=1, keepdims=True)
    c = np.broadcast_to(np.asarray(coherence, dtype=float), norms.shape)[:, None]
    dirs = c * e + np.sqrt(1 - c ** 2) * xi
    U = norms[:, None] * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    return Trajectory.from_dense(STEPS, np.vstack([np.zeros(D), np.cumsum(U, axis=0)]))


def _sweep(coherences, norms, n_draws: int = 60) -> dict:
    """A synthetic sweep (one p_probe group, BETA2 order) through run_null_bands and sweep_result, N1 only."""
    sp = bn.Spans(STEPS, STEPS[1:], STEPS, STEPS[1:], list(range(30, 91, 5)), total_steps=120, lag=10)
    runs = {}
    for i, (b, c) in enumerate(zip(BETA2, coherences)):
        traj = _walk(c, norms, seed=100 + i)
        runs[f"b{b}"] = {"beta2": b, "p_probe": 0.1,
                         **bn.run_null_bands(sp, traj, traj, D, n_draws, seed=0, kinds=("N1",), stream=i)}
    return bn.sweep_result(runs, n_draws, 0, kinds=("N1",), common_last_step=STEPS[-1])


def _verdicts(res: dict) -> dict[str, dict]:
    ev = inp.Evidence([], beta2_nulls=res)
    return {cid: nv.null_outcome(ev, cid) for cid in nv.BETA2_NULLS}


EQUAL = np.ones(len(STEPS) - 1)


def test_a_planted_trend_is_beyond_null_and_isotropic_walks_are_within():
    planted = _sweep((0.6, 0.3, 0.0), EQUAL)
    for stat in bn.TRENDS:
        e = planted["trends"]["0.1"][stat]
        assert (e["high"], e["low"]) == ("b0.99", "b0.0") and e["observed"] > e["N1"]["hi"], (stat, e)
    rows = _verdicts(planted)
    for cid in ("C14", "C17", "C19"):
        assert rows[cid]["null"] == nulls.BEYOND, (cid, rows[cid])
    flat = _verdicts(_sweep((0.0, 0.0, 0.0), EQUAL))
    for cid in ("C14", "C17", "C19"):
        assert flat[cid]["null"] == nulls.WITHIN, (cid, flat[cid])
    assert "net fall of pc1_common from beta2 0.99 to 0" in flat["C17"]["null_text"]


def test_c18_is_beyond_null_only_when_a_grows_faster_than_along_a_matched_walk():
    locking = np.minimum(1.0, np.array(STEPS[1:]) / 60)      # updates align with e more and more, equal norms
    ramp = _sweep([locking] * 3, EQUAL)
    for name, run in ramp["runs"].items():
        g = run["statistics"]["gamma_a"]
        assert g["observed"] > 1.0 and g["observed"] > g["N1"]["hi"], (name, g)
    assert _verdicts(ramp)["C18"]["null"] == nulls.BEYOND
    assert _verdicts(_sweep((0.0, 0.0, 0.0), EQUAL))["C18"]["null"] == nulls.WITHIN
    growing = np.array(STEPS[1:], dtype=float)                # coherent, step norms ~ t: |a| ~ t^2 at most
    coherent = _sweep((1.0, 1.0, 1.0), growing)
    for name, run in coherent["runs"].items():
        g = run["statistics"]["gamma_a"]
        assert 1.0 < g["observed"] < g["N1"]["lo"], (name, g)    # superlinear, yet below the walk's band
    assert _verdicts(coherent)["C18"]["null"] == nulls.WITHIN


def test_net_fall_pairs_draws_and_skips_runs_without_a_value():
    def run(beta2, obs, draws):
        stats = {s: {"observed": obs, "N1": nulls.band(draws)} for s in bn.STATISTICS}
        return {"beta2": beta2, "p_probe": 0.1, "statistics": stats, "draws": {"N1": {s: draws for s in bn.STATISTICS}}}
    runs = {"hi": run(0.99, 70.0, [60.0, 61.0, 62.0]), "mid": run(0.9, 65.0, [59.0, 60.0, 60.0]),
            "lo": run(0.0, math.nan, [50.0, 50.0, 50.0])}
    e = bn.trend_nulls({"0.1": ["hi", "mid", "lo"]}, runs, kinds=("N1",))["0.1"]["pc1_common"]
    assert (e["high"], e["low"], e["beta2"]) == ("hi", "mid", [0.99, 0.9])   # "lo" has no observed value
    assert e["observed"] == 5.0 and e["N1"]["n"] == 3 and e["N1"]["median"] == 1.0   # draw k minus draw k
    runs["mid"]["statistics"]["pc1_common"]["observed"] = math.nan
    assert "note" in bn.trend_nulls({"0.1": ["hi", "mid", "lo"]}, runs, kinds=("N1",))["0.1"]["pc1_common"]


def test_runs_are_drawn_independently_and_reproducibly():
    sp = bn.Spans(STEPS, STEPS[1:], STEPS, STEPS[1:], list(range(30, 91, 5)), total_steps=120, lag=10)
    traj = _walk(0.3, EQUAL, seed=1)
    one, again, other = (bn.run_null_bands(sp, traj, traj, D, 5, 0, ("N2",), stream=s) for s in (7, 7, 8))
    assert one["draws"] == again["draws"] and one["draws"] != other["draws"]
    assert one["statistics"]["pc1_common"]["observed"] == other["statistics"]["pc1_common"]["observed"]


def test_a_small_p_probe_group_is_set_aside():
    res = _sweep((0.6, 0.3, 0.0), EQUAL, n_draws=20)
    extra = dict(res["runs"]["b0.9"], p_probe=0.2)
    runs = {**res["runs"], "b0.9_p0.20": extra}
    again = bn.sweep_result(runs, 20, 0, kinds=("N1",))
    assert again["groups"] == {"0.1": ["b0.99", "b0.9", "b0.0"]} and again["set_aside"] == ["b0.9_p0.20"]
    assert set(again["trends"]) == {"0.1"}
    assert _verdicts(dict(again, groups={}, trends={}))["C17"]["null"] == nulls.NO_NULL


# ---------------------------------------------------------------------------------------------------------------
# The script on a tiny sweep
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def tiny_sweep(tmp_path, tiny_beta2_sweep):
    """The session's three tiny beta2 runs (beta2 = 0 diverges at step 9) and the b0.9 run relabelled p_probe 0.20
    (a group of one), with the beta2 table written."""
    import beta2_sweep
    out = tmp_path / "beta2"
    shutil.copytree(tiny_beta2_sweep, out)
    shutil.copytree(out / "b0.9", out / "b0.9_p0.20")
    info = ck.read_json(out / "b0.9_p0.20" / "run.json")
    info["config"]["train"]["p_probe"] = 0.2
    ck.atomic_write_json(info, out / "b0.9_p0.20" / "run.json")
    assert beta2_sweep.main(["--out", str(out), "--analyze-only", "--no-figure"]) == 0
    return out


def test_trajectory_nulls_beta2_end_to_end(tiny_sweep, tmp_path, capsys):
    import trajectory_nulls
    from drift.report.tables import write_report
    assert trajectory_nulls.main([str(tiny_sweep), "--beta2", "--draws", "20"]) == 0
    assert "net fall" in capsys.readouterr().out
    res = json.loads((tiny_sweep / "analysis" / "nulls.json").read_text())["results"]
    table = {r["name"]: r for r in json.loads((tiny_sweep / "analysis" / "beta2_sweep.json").read_text())["results"]
             ["rows"]}
    assert res["groups"] == {"0.1": ["b0.9", "b0.5", "b0.0"]} and res["set_aside"] == ["b0.9_p0.20"]
    assert res["common_last_step"] == 8 and res["runs"]["b0.0"]["spans"]["common"] == [1, 8, 8]
    # every statistic, in the nulls and in the table, against numpy on the checkpoints (tests/helpers/dense.py):
    # the tiny sweep keeps every step (to 12; the diverged b0.0 to 8), PCA rows start at ckpt_every = 5 (from
    # step 1), the common span ends at 8, C14's window is steps 2..6 (anchored at 2), and at this scale the update
    # lag (paper 200) is 1 step and T/2 = 6, so gamma_a fits |a(t)| over t = 2..6
    want = {}
    for name, last in (("b0.9", 12), ("b0.5", 12), ("b0.0", 8)):
        th = dense.thetas(tiny_sweep / name, range(1, last + 1))
        v = dense.pc1(th[4:] - th[0], normalize=True)
        U = np.diff(th[:6], axis=0)
        a = (th[1:6] - th[0]) @ v
        want[name] = {"pc1_common": 100 * dense.shares(th[4:8] - th[0], normalize=True)[0],
                      "window_pc1": 100 * dense.shares(th[2:6] - th[1], normalize=True)[0],
                      "gamma_a": np.polyfit(np.log(np.arange(2, 7)), np.log(np.abs(a)), 1)[0],
                      "early_abs_cos": np.mean(np.abs(U @ v) / np.linalg.norm(U, axis=1))}
    want["b0.9_p0.20"] = want["b0.9"]
    for name, row in table.items():
        st = res["runs"][name]["statistics"]
        reported = {"pc1_common": row["pc1_common"], "window_pc1": row["window_pc1"],
                    "gamma_a": row["gamma_a"][0]["gamma"], "early_abs_cos": row["early_abs_cos"]}
        for stat, value in want[name].items():
            assert (st[stat]["observed"], reported[stat]) == pytest.approx((value, value), rel=1e-9), (name, stat)
            assert all(st[stat][k]["n"] == 20 for k in nulls.NULLS)
    # the relabelled copy has b0.9's Gram but draws of its own
    assert res["runs"]["b0.9_p0.20"]["draws"]["N1"]["gamma_a"] != res["runs"]["b0.9"]["draws"]["N1"]["gamma_a"]
    trends = res["trends"]["0.1"]
    for stat in ("pc1_common", "window_pc1", "early_abs_cos"):   # the net fall from beta2 0.9 to beta2 0
        assert trends[stat]["observed"] == pytest.approx(want["b0.9"][stat] - want["b0.0"][stat], rel=1e-9), stat
    # the verdicts read from this nulls.json: beyond iff above the N1 band (every run's own band for C18), and
    # the band's upper end itself is still within
    ev = inp.load_evidence([], beta2=tiny_sweep)
    rows = {r["id"]: r for r in cl.evaluate_claims(ev)}
    above = lambda e: e["observed"] > e["N1"]["hi"]     # noqa: E731
    for cid, stat in (("C14", "window_pc1"), ("C17", "pc1_common"), ("C19", "early_abs_cos")):
        assert rows[cid]["null"] == (nulls.BEYOND if above(trends[stat]) else nulls.WITHIN), (cid, rows[cid])
    gammas = [res["runs"][n]["statistics"]["gamma_a"] for n in res["groups"]["0.1"]]
    assert rows["C18"]["null"] == (nulls.BEYOND if all(map(above, gammas)) else nulls.WITHIN), rows["C18"]
    planted = copy.deepcopy(ev.beta2_nulls)
    e = planted["trends"]["0.1"]["pc1_common"]
    e["observed"] = e["N1"]["hi"]
    assert nv.null_outcome(dataclasses.replace(ev, beta2_nulls=planted), "C17")["null"] == nulls.WITHIN
    e["observed"] = np.nextafter(e["N1"]["hi"], np.inf)
    assert nv.null_outcome(dataclasses.replace(ev, beta2_nulls=planted), "C17")["null"] == nulls.BEYOND
    for n in res["groups"]["0.1"]:
        g = planted["runs"][n]["statistics"]["gamma_a"]
        g["observed"] = g["N1"]["hi"] + 0.1
    assert nv.null_outcome(dataclasses.replace(ev, beta2_nulls=planted), "C18")["null"] == nulls.BEYOND
    g["observed"] = g["N1"]["hi"]                           # the last run falls back onto its band's edge
    assert nv.null_outcome(dataclasses.replace(ev, beta2_nulls=planted), "C18")["null"] == nulls.WITHIN
    write_report(ev, tmp_path / "gen")
    tex = (tmp_path / "gen" / "beta2.tex").read_text()
    assert r"$\gamma_a$ N1 band" in tex and "Net falls at $p_{probe}$ 0.1" in tex
    assert r"0 (0.1)$^\dagger$" in tex and r"$^\dagger$ 0 (0.1) diverged at step 9." in tex
    assert "trajectory\\_nulls.py -{}-beta2" in tex


def test_trajectory_nulls_beta2_refuses_what_it_cannot_read(tmp_path, capsys):
    import trajectory_nulls
    (tmp_path / "empty").mkdir()
    assert trajectory_nulls.main([str(tmp_path / "empty"), "--beta2", "--draws", "20"]) == 2
    assert "holds no beta2 runs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        trajectory_nulls.main([str(tmp_path), "--beta2", "--controls"])
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err
    ev = inp.Evidence([], beta2_dir=tmp_path / "empty")
    assert "trajectory_nulls.py" in nv.null_outcome(ev, "C17")["null_text"]
