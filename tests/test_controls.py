"""Optimizer controls, beta2 sweep and reheating: the configs equal PROTOCOL E2-E4 (paper) and scale by the
documented rule (cpu/tiny); the early-stop rule and the matched-loss search on crafted metrics; every script end
to end on the tiny preset, including a forced divergence and a refused mismatched comparison."""
import csv
import json
import math
import shutil

import numpy as np
import pytest

from drift.run import checkpoint as ck
from drift.config import resolve
from drift.paper import PAPER_MAX_VAL
from drift.train.control_runs import (Scale, beta2_config, beta2_run_name, control_config, early_stop_decision,
                                early_stop_max_val, ensure_run, reheat_config, vocab_size_of)
from drift.analysis.controls import load_controls
from drift.analysis.matched import centred_windows, match_val_loss
from drift.train.optim import lambda_at, lr_at
from drift.train.trainer import LoopState, _early_stop, ckpt_schedule, eval_schedule
from helpers import dense
from helpers.runs import set_info

PAPER_CKPTS = [1, 200, 400] + list(range(600, 2001, 50)) + list(range(2100, 4001, 100))
# Cheaper evals, and one thread: on a shared 2-core machine two threads per run thrash far more than they help.
SMALL = ["n_probe_eval=16", "val_batches=1", "threads=1"]
PNG = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.usefixtures("restore_torch_threads")   # the runs set torch's thread count


# ------------------------------------------------------------------------------------------------- configs

@pytest.mark.parametrize("run, opt, lr, wd, mom", [("A", "adamw", 1e-3, 0.5, None), ("B", "sgd", 1e-3, 0.5, None),
                                                   ("C", "sgd_momentum", 1e-2, 0.05, 0.9)])
def test_paper_controls_equal_protocol_e2(run, opt, lr, wd, mom):
    cfg = control_config("paper", 42, run)
    t = cfg.train
    assert (t.optimizer, t.lr, t.weight_decay) == (opt, lr, wd)
    if mom is not None:
        assert t.momentum == mom
    assert (t.total_steps, t.schedule_steps, t.warmup_steps, t.eval_every) == (4000, 4000, 1500, 200)
    assert ckpt_schedule(cfg) == [0] + PAPER_CKPTS and len(PAPER_CKPTS) == 52
    assert eval_schedule(cfg) == [1] + list(range(200, 4001, 200))
    assert lambda_at(3999, t) == 2.0 and lambda_at(4000, t) == 4.0  # lambda = 4 on the final step only
    assert lr_at(1500, t) == pytest.approx(1e-3 if opt == "adamw" or opt == "sgd" else 1e-2)
    assert lr_at(4000, t) == pytest.approx(0.1 * lr)
    assert t.early_stop_step == 0 and (t.beta2, t.p_probe, t.grad_clip, t.micro_batch, t.grad_accum) == \
        (0.95, 0.10, 1.0, 64, 2)
    assert cfg.model == resolve("paper").model


def test_paper_nesterov_run_and_its_rule():
    cfg = control_config("paper", 42, "C_prime")
    t, a = cfg.train, control_config("paper", 42, "A").train
    assert (t.optimizer, t.lr, t.momentum, t.weight_decay) == ("nesterov_sgdw", 1e-2, 0.9, 0.5)
    assert (t.total_steps, t.schedule_steps, t.early_stop_step) == (2000, 4000, 2000)
    assert (t.early_stop_max_val, t.early_stop_min_p_ood) == (5.1, 0.02)
    assert ckpt_schedule(cfg) == [0] + [s for s in PAPER_CKPTS if s <= 2000]
    assert all(lr_at(s, t) / 1e-2 == pytest.approx(lr_at(s, a) / 1e-3) for s in (1, 1500, 1800, 2000))
    assert early_stop_max_val(50_257) == PAPER_MAX_VAL


def test_cpu_small_controls_follow_the_scaling_rule():
    main = resolve("cpu_small", 42)
    cfg = control_config("cpu_small", 42, "A")
    t = cfg.train
    assert Scale.of_main(main).factor == 0.1 == Scale.of_control(cfg).factor
    assert (t.total_steps, t.schedule_steps, t.warmup_steps, t.eval_every) == (400, 400, main.train.warmup_steps, 20)
    assert t.dense_ckpt == "60:200:5,200:400:10" and t.lambda_switch_step == 400
    assert ckpt_schedule(cfg) == [0] + [Scale(0.1).step(s) for s in PAPER_CKPTS]
    cp = control_config("cpu_small", 42, "C_prime", ["early_stop_max_val=4.5"])
    assert (cp.train.total_steps, cp.train.early_stop_step, cp.train.schedule_steps) == (200, 200, 400)
    assert cp.train.early_stop_max_val == 4.5  # an explicit option, recorded in the config
    default = control_config("cpu_small", 42, "C_prime").train.early_stop_max_val
    # the paper's 5.1 nats is the same fraction of ln(vocab) as 5.1 is of ln(50,257): 0.4711 ln(vocab)
    vocab = vocab_size_of(main)
    assert vocab < 50_257 and default == round(5.1 * math.log(vocab) / math.log(50_257), 3)


def test_beta2_and_reheat_configs():
    b = beta2_config("cpu_small", 42, 0.8, p_probe=0.2)
    assert (b.train.beta2, b.train.p_probe, b.train.optimizer, b.train.total_steps) == (0.8, 0.2, "adamw", 400)
    assert beta2_run_name(0.0) == "b0.0" and beta2_run_name(0.95, 0.2, 0.1) == "b0.95_p0.20"
    assert beta2_run_name(0.9, 0.1, 0.1) == "b0.9"
    r = reheat_config(resolve("paper", 42), 6e-4).train
    assert (r.lr, r.warmup_steps, r.total_steps, r.eval_every, r.ckpt_every) == (6e-4, 200, 2000, 100, 100)
    assert all(lambda_at(s, r) == 4.0 for s in (1, 1000, 2000)) and r.min_lr_frac == 0.1
    c = reheat_config(resolve("cpu_small", 42), 1e-3).train
    assert (c.warmup_steps, c.total_steps, c.eval_every) == (20, 200, 10)


def test_cpu_p40_controls_scale_by_an_eighth():
    cfg = control_config("cpu_p40", 42, "A").train
    assert Scale.of_main(resolve("cpu_p40", 42)).factor == 0.125 == Scale.of_control(control_config("cpu_p40", 42,
                                                                                                    "A")).factor
    # paper windows 600:2000 every 50 and 2000:4000 every 100, times 1/8 (half-way values round up)
    assert (cfg.total_steps, cfg.schedule_steps, cfg.dense_ckpt) == (500, 500, "75:250:6,250:500:13")
    assert control_config("cpu_p40", 42, "C_prime").train.total_steps == 250
    r = reheat_config(resolve("cpu_p40", 42), 1e-3).train
    assert (r.warmup_steps, r.total_steps, r.eval_every, r.ckpt_every) == (25, 250, 13, 13)


def test_cpu_controls_scale_by_four_tenths():
    cfg = control_config("cpu", 42, "A").train
    assert Scale.of_main(resolve("cpu", 42)).factor == 0.4 == Scale.of_control(control_config("cpu", 42, "A")).factor
    assert (cfg.total_steps, cfg.schedule_steps, cfg.dense_ckpt) == (1600, 1600, "240:800:20,800:1600:40")
    assert control_config("cpu", 42, "C_prime").train.total_steps == 800
    r = reheat_config(resolve("cpu", 42), 1e-3).train
    assert (r.warmup_steps, r.total_steps, r.eval_every, r.ckpt_every) == (80, 800, 40, 40)


# ------------------------------------------------------------------------------------------------- pure rules

def _metrics(pairs):
    return [{"step": s, "val_loss": v, "p_ood": p} for s, v, p in pairs]


def test_early_stop_rule_on_crafted_metrics():
    stuck = _metrics([(1, 10.8, 0.0), (1000, 6.0, 0.01), (2000, 5.25, 0.013)])
    assert early_stop_decision(stuck, 2000, 5.1, 0.02)["fires"] is True
    learning = _metrics([(1, 10.8, 0.0), (1000, 6.0, 0.01), (2000, 5.0, 0.013)])
    assert early_stop_decision(learning, 2000, 5.1, 0.02)["fires"] is False
    probed = _metrics([(1, 10.8, 0.0), (1000, 6.0, 0.05), (2000, 5.3, 0.0)])  # an earlier p_ood counts
    assert early_stop_decision(probed, 2000, 5.1, 0.02)["fires"] is False
    later = stuck + _metrics([(2200, 5.3, 0.5)])  # evals after the stop step do not count
    assert early_stop_decision(later, 2000, 5.1, 0.02)["best_p_ood"] == 0.013
    assert early_stop_decision(stuck, 1500, 5.1, 0.02)["fires"] is None  # no eval there
    cfg = control_config("paper", 42, "C_prime")  # the trainer's own check agrees
    for metrics, fires in ((stuck, True), (learning, False), (probed, False)):
        best = max(r["p_ood"] for r in metrics)
        assert (_early_stop(metrics[-1], LoopState(best_p_ood=best), cfg) is not None) == fires


def test_matched_loss_search_on_crafted_metrics():
    adamw = _metrics([(1, 10.8, 0), (200, 4.33, 0), (400, 3.5, 0), (600, 3.0, 0)])
    m = match_val_loss(adamw, 5.1, rel_tol=0.02)
    assert (m["step"], m["within_tol"], m["crossing"], m["steps_within_tol"]) == (200, False, [1, 200], [])
    sgd = _metrics([(1, 10.8, 0), (2000, 5.3, 0), (2200, 5.13, 0), (2400, 5.11, 0), (4000, 5.10, 0)])
    m = match_val_loss(sgd, 5.1, rel_tol=0.02)
    # the paper's case: the first eval within 2% of C's own final loss, not the final eval (the closest)
    assert m["step"] == 2200 and m["within_tol"] and m["steps_within_tol"] == [2200, 2400, 4000]
    assert m["closest_step"] == 4000 and m["val_loss"] == 5.13
    assert match_val_loss(sgd, 5.1, ckpt_steps=[1, 2000, 2200])["step"] == 2200  # only checkpointed evals
    tie = _metrics([(10, 5.0, 0), (20, 5.2, 0)])
    assert match_val_loss(tie, 5.1)["step"] == 10  # ties go to the earlier step
    assert match_val_loss([], 5.1)["step"] is None
    # the C16 variant: only evals after the warmup count; an AdamW run that passes the target inside its warmup
    # and never comes back has no match there
    fast = _metrics([(1, 10.8, 0), (75, 5.12, 0), (150, 4.1, 0), (300, 3.2, 0)])
    assert match_val_loss(fast, 5.1)["step"] == 75
    late = match_val_loss(fast, 5.1, after_step=150)
    assert late["step"] == 300 and not late["within_tol"]
    assert match_val_loss(sgd, 5.1, after_step=2200)["step"] == 2400


def test_centred_windows_snap_to_step_one_and_drop_missing():
    have = [0, 1, 200, 400, 600, 800]
    w = centred_windows(200, 200, have)
    assert list(w.values()) == [[1, 200, 400], [1, 200, 400, 600]]
    assert list(centred_windows(800, 200, have).values()) == [[600, 800], [400, 600, 800]]


# ------------------------------------------------------------------------------------------------- end to end

def test_control_scripts_end_to_end(tmp_path, capsys):
    import sgd_control, sgd_control_analysis, sgd_matched_valloss, sgd_nesterov_run
    root = tmp_path / "ctrl"
    common = ["--preset", "tiny", "--seed", "3", "--out", str(root), "--no-progress", *SMALL]
    assert sgd_control.main([*common, "--runs", "A", "C"]) == 0
    assert sgd_nesterov_run.main([*common, "early_stop_max_val=100"]) == 0  # the rule cannot fire
    assert "did not fire" in capsys.readouterr().out
    assert ck.read_json(root / "C_prime" / "run.json")["status"] == "finished"
    assert sgd_control.main([*common, "--runs", "A"]) == 0  # finished: skipped, not retrained
    assert "skipped" in capsys.readouterr().out
    assert sgd_control_analysis.main([str(root)]) == 0
    table = json.loads((root / "analysis" / "sgd_control.json").read_text())["results"]
    rows = {r["run"]: r for r in table["rows"]}
    assert set(rows) == {"A", "C", "C_prime"} and rows["A"]["window"] == [2, 6]
    # Table 4's window geometry against numpy: drifts theta_s - theta_2 for s = 3..6, row-normalized
    theta = dense.thetas(root / "C", range(2, 7))
    fr = dense.shares(theta[1:] - theta[0], normalize=True)
    c_pc1 = 100 * fr[0]
    assert rows["C"]["pc1"] == pytest.approx(c_pc1, rel=1e-9) and rows["C"]["k95"] == dense.k_for(fr, 0.95)
    assert rows["C"]["drift"] == pytest.approx(np.linalg.norm(theta[-1] - theta[0]), rel=1e-9)
    assert rows["C_prime"]["early_stop"]["fires"] is False
    with open(root / "analysis" / "sgd_control.csv", newline="") as f:
        csv_rows = {r["run"]: r for r in csv.DictReader(f)}
    assert list(csv_rows) == ["A", "C", "C_prime"] and csv_rows["C"]["pc1"] == f"{c_pc1:.6g}"
    assert (root / "figures" / "sgd_control.png").read_bytes()[:8] == PNG
    assert sgd_matched_valloss.main([str(root)]) == 0
    matched = json.loads((root / "analysis" / "sgd_matched_valloss.json").read_text())["results"]
    c_evals = ck.read_metrics(root / "C")
    assert matched["target"] == [r["val_loss"] for r in c_evals if "val_loss" in r][-1]   # C's final val loss
    c_row = next(r for r in matched["rows"] if r["run"] == "C")
    first = next(r for r in c_evals if "val_loss" in r and abs(r["val_loss"] - matched["target"])
                 <= 0.02 * abs(matched["target"]))
    assert c_row["match"]["within_tol"] and c_row["match"]["step"] == first["step"]  # where C first reaches it
    assert c_row["match"]["closest_step"] == c_evals[-1]["step"] or c_evals[-1].get("val_loss") is None
    import trajectory_nulls
    assert trajectory_nulls.main([str(root), "--controls", "--draws", "20"]) == 0
    nulls = json.loads((root / "analysis" / "nulls.json").read_text())["results"]
    std = nulls["rows"]["C"]["standard"]["statistics"]["pc1"]
    assert std["observed"] == pytest.approx(c_pc1, rel=1e-9) and std["N1"]["n"] == 20


def test_nesterov_rule_fires_and_mismatch_is_refused(tmp_path, capsys):
    import sgd_control_analysis, sgd_nesterov_run
    root = tmp_path / "ctrl"
    assert sgd_nesterov_run.main(["--preset", "tiny", "--seed", "3", "--out", str(root), "--no-progress",
                                  *SMALL, "early_stop_max_val=0.5", "early_stop_min_p_ood=1.01"]) == 0
    assert "fired" in capsys.readouterr().out
    assert ck.read_json(root / "C_prime" / "run.json")["status"] == "early_stopped"
    # A run with another model under the same root: the comparison is refused.
    other = root / "A"
    other.mkdir()
    info = ck.read_json(root / "C_prime" / "run.json")
    info["config"]["model"]["d_model"] *= 2
    ck.atomic_write_json(info, other / "run.json")
    for f in ("ckpt_000000.pt", "ckpt_000001.pt", "metrics.jsonl"):
        (other / f).write_bytes((root / "C_prime" / f).read_bytes())
    with pytest.raises(ck.RunError, match="d_model"):
        load_controls(root)
    assert sgd_control_analysis.main([str(root)]) == 2
    assert "sgd_control_analysis.py: error:" in capsys.readouterr().err
    with pytest.raises(ck.RunError, match="different config"):  # ensure_run never mixes configs in one dir
        ensure_run(control_config("tiny", 3, "C_prime", SMALL), root / "C_prime", progress=False)


def test_beta2_sweep_records_a_divergence(tmp_path, tiny_beta2_sweep):
    """The session sweep's b0.9 and diverged b0.0 (same config as asked here): skipped, not retrained, and tabulated."""
    import beta2_sweep
    out = tmp_path / "beta2"
    for name in ("b0.9", "b0.0"):
        shutil.copytree(tiny_beta2_sweep / name, out / name)
    assert beta2_sweep.main(["--preset", "tiny", "--seed", "3", "--out", str(out), "--beta2", "0.9", "0.0",
                             "--no-progress", "--no-figure", *SMALL]) == 0
    rows = {r["name"]: r for r in json.loads((out / "analysis" / "beta2_sweep.json").read_text())["results"]["rows"]}
    assert rows["b0.0"]["status"] == "diverged" and rows["b0.0"]["marker"] == "diverged at step 9"
    # measured up to the last good checkpoint: rows 5..8 from step 1, against numpy
    assert rows["b0.0"]["last_step"] == 8
    theta = dense.thetas(out / "b0.0", [1, 5, 6, 7, 8])
    assert rows["b0.0"]["pc1"] == pytest.approx(100 * dense.shares(theta[1:] - theta[0], normalize=True)[0], rel=1e-9)
    # a diverged run writes no final timers: the wall time is the sum of the last eval record's
    last_timers = [r["timers"] for r in ck.read_metrics(out / "b0.0") if "timers" in r][-1]
    assert rows["b0.0"]["wall_s"] == pytest.approx(sum(last_timers.values()), rel=1e-12)
    assert rows["b0.9"]["common_last_step"] == 8 and rows["b0.9"]["pc1_common"] != rows["b0.9"]["pc1"]
    # the after-warmup span (warmup 5 .. step 8) holds one regular checkpoint: not measured, and said so
    assert rows["b0.9"]["pc1_span"] is None and "need >= 3" in rows["b0.9"]["note_span"]
    ok = rows["b0.9"]
    assert ok["status"] == "finished" and ok["marker"] == ""
    # A13 against numpy: rows 5..12 from step 1; |C| of the lag-1 updates (paper lag 200 at this scale) with the
    # row-normalized PC1
    theta = dense.thetas(out / "b0.9", range(1, 13))
    X = theta[4:] - theta[0]
    rn = dense.shares(X, normalize=True)
    assert (ok["pc1"], ok["pc2"], ok["raw_pc1"]) == pytest.approx((100 * rn[0], 100 * rn[1], 100 * dense.shares(X)[0]),
                                                                   rel=1e-9)
    assert ok["drift"] == pytest.approx(np.linalg.norm(theta[-1] - theta[0]), rel=1e-9)
    U = np.diff(theta, axis=0)
    abs_cos = np.abs(U @ dense.pc1(X, normalize=True)) / np.linalg.norm(U, axis=1)
    assert ok["mean_abs_cos"] == pytest.approx(abs_cos.mean(), rel=1e-9)
    assert [f["hi"] for f in ok["gamma_a"]] == [6, 12, 12]
    assert (out / "analysis" / "beta2_sweep.csv").read_text().count("\n") == 3


def _table_rows(out):
    return {r["name"]: r for r in json.loads((out / "analysis" / "beta2_sweep.json").read_text())["results"]["rows"]}


def test_beta2_sweep_copies_control_a_instead_of_training_it(tmp_path, tiny_control_set, capsys):
    """--reuse: the sweep's run at A's beta2 is copied from the finished control A (run.json says so), the other
    beta2 trains; and the copy is what training that config gives (a fresh sweep run: same metrics, same
    checkpoints, same table row)."""
    import torch

    import beta2_sweep
    a = tiny_control_set / "A"
    assert ck.read_json(a / "run.json")["config"]["train"]["beta2"] == 0.95
    common = ["--preset", "tiny", "--seed", "3", "--no-progress", "--no-figure", *SMALL]
    out, fresh = tmp_path / "beta2", tmp_path / "fresh"
    argv = [*common, "--out", str(out), "--beta2", "0.95", "0.5", "--reuse", str(a)]
    assert beta2_sweep.main(argv) == 0
    said = capsys.readouterr().out
    assert f"b0.95: copied from {a}, which trained this config, finished" in said
    assert "b0.5: not copied from --reuse:" in said and "beta2 0.95 there, 0.5 here" in said
    info, src = ck.read_json(out / "b0.95" / "run.json"), ck.read_json(a / "run.json")
    assert info["kind"] == "beta2" and info["run_id"] == src["run_id"] and info["argv"] == argv
    assert info["reused_from"] == {"run_dir": str(a.resolve()), "run_id": src["run_id"], "kind": "controls",
                                   "argv": src["argv"]}
    assert ck.read_json(out / "b0.5" / "run.json")["run_id"] != src["run_id"]   # trained, not copied
    steps = ck.list_steps(a)
    assert ck.list_steps(out / "b0.95") == steps and not (out / "b0.95" / "run.lock").exists()
    assert all(ck.ckpt_path(out / "b0.95", s).read_bytes() == ck.ckpt_path(a, s).read_bytes() for s in steps)
    # the premise: training the same config gives the same run
    assert beta2_sweep.main([*common, "--out", str(fresh), "--beta2", "0.95"]) == 0
    def untimed(run):  # every metric record but the wall-clock timers
        return [{k: v for k, v in r.items() if k != "timers"} for r in ck.read_metrics(run)]
    assert untimed(out / "b0.95") == untimed(fresh / "b0.95")
    last = steps[-1]
    mine, theirs = ck.load_checkpoint(out / "b0.95", last)["model"], ck.load_checkpoint(fresh / "b0.95", last)["model"]
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    copied_row, fresh_row = _table_rows(out)["b0.95"], _table_rows(fresh)["b0.95"]
    assert (copied_row["pc1"], copied_row["best_p_ood"]) == (fresh_row["pc1"], fresh_row["best_p_ood"])


def test_reuse_refuses_an_unfinished_run_another_config_and_a_full_directory(tmp_path, tiny_control_set):
    from drift.train.control_runs import reuse_finished
    a = tmp_path / "A"
    shutil.copytree(tiny_control_set / "A", a)
    cfg = beta2_config("tiny", 3, 0.95, overrides=SMALL)
    target = tmp_path / "sweep" / "b0.95"
    set_info(a, status="running")
    assert "has not finished (status 'running')" in reuse_finished(a, cfg, target, "beta2")
    set_info(a, status="finished")
    assert "trained another config (threads 1 there, 2 here)" in reuse_finished(
        a, beta2_config("tiny", 3, 0.95, overrides=SMALL[:2] + ["threads=2"]), target, "beta2")
    assert reuse_finished(tmp_path / "nowhere", cfg, target, "beta2") == f"no run in {tmp_path / 'nowhere'}"
    target.mkdir(parents=True)
    (target / "note.txt").write_text("someone's file")
    assert reuse_finished(a, cfg, target, "beta2") == f"{target} is not empty"
    assert [p.name for p in target.iterdir()] == ["note.txt"] and not list(target.parent.glob(".*reuse*"))
    (target / "note.txt").unlink()
    assert reuse_finished(a, cfg, target, "beta2") is None   # an empty directory is filled
    assert ck.read_json(target / "run.json")["kind"] == "beta2"


def test_reheat_end_to_end(tmp_path, capsys):
    import reheat
    from drift.train.trainer import train
    main = tmp_path / "main"
    train(resolve("tiny", 3, SMALL + ["total_steps=20"]), main, progress=False)
    assert reheat.main([str(main), "--lrs", "1e-3", "--no-progress", "threads=1"]) == 0
    res = json.loads((main / "analysis" / "reheat.json").read_text())["results"]
    row = res["rows"][0]
    run_cfg = ck.read_json(main / "reheat" / "lr0.001" / "run.json")
    assert run_cfg["init_from"].endswith("ckpt_000020.pt") and run_cfg["config"]["train"]["total_steps"] == 4
    assert (run_cfg["kind"], run_cfg["init_from_step"]) == ("reheat", 20)
    assert run_cfg["init_from_run_id"] == ck.read_json(main / "run.json")["run_id"]  # which run it started from
    metrics = ck.read_metrics(main / "reheat" / "lr0.001")
    assert row["peak"] == max(r["p_ood"] for r in metrics) and row["end"] == metrics[-1]["p_ood"]
    assert [r["step"] for r in metrics] == [1, 2, 3, 4] and all(r["lam"] == 4.0 for r in metrics)
    # Reheating step 0 is the main run's last checkpoint: same coordinates against the main backbone.
    assert row["coords"]["step"][0] == 0
    # a and ||r|| against numpy: v_b = the main run's row-normalized PC1 of theta_s - theta_1 (s = 5..20), signed
    # so that the main run ends at positive a
    theta = dense.thetas(main, [1, 5, 10, 15, 20])
    x = theta[-1] - theta[0]
    a_end = x @ dense.pc1(theta[1:] - theta[0], normalize=True)
    assert (row["coords"]["a"][0], res["main_end_coords"]["a"][0]) == pytest.approx((a_end, a_end), rel=1e-6)
    assert row["coords"]["residual_norm"][0] == pytest.approx(math.sqrt(x @ x - a_end ** 2), rel=1e-5)
    assert (main / "figures" / "reheat.png").read_bytes()[:8] == PNG
    assert res["start_step"] == 20 and res["start_reason"]  # tiny never learns the probe: p_ood 0 <= 0.35, the last
    # the same reheating directory asked to start elsewhere is another experiment: refused before any training
    assert reheat.main([str(main), "--lrs", "1e-3", "--no-progress", "--from", "10", "threads=1"]) == 2
    assert "was reheated from ckpt_000020.pt, not ckpt_000010.pt" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["sgd_control", "sgd_nesterov_run", "sgd_control_analysis",
                                    "sgd_matched_valloss", "beta2_sweep", "reheat"])
def test_help(script, capsys):
    mod = __import__(script)
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0 and "Example" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------------
# Control runs are labelled from run.json; an interrupted one is continued, not skipped
# ---------------------------------------------------------------------------------------------------------------

def test_control_rows_are_labelled_from_run_json(tiny_run, tmp_path):
    root = tmp_path / "ctrl"
    shutil.copytree(tiny_run, root / "A")
    set_info(root / "A", kind="controls")  # a main run otherwise, refused as such (tests/test_provenance.py)
    from drift.analysis.controls import optimizer_label
    assert optimizer_label(load_controls(root)["A"]) == "AdamW"
    shutil.copytree(root / "A", root / "B")  # an AdamW run placed where the SGD control belongs
    with pytest.raises(ck.RunError, match="B holds a adamw run .* B is the sgd control"):
        load_controls(root)

def test_sweeps_continue_an_interrupted_run_instead_of_skipping_it(tiny_run_copy):
    from drift.train.control_runs import ensure_run
    set_info(tiny_run_copy, status="interrupted", error="KeyboardInterrupt: ")
    cfg = resolve("tiny", seed=1)
    res = ensure_run(cfg, tiny_run_copy, progress=False)
    assert res["action"] == "resumed" and ck.read_json(tiny_run_copy / "run.json")["status"] == "finished"
    assert ensure_run(cfg, tiny_run_copy, progress=False)["action"] == "skipped"


def test_span_geometry_on_a_planted_trajectory():
    """Checkpoints (0,0) -> (1,0) -> (1,1) at steps 10, 20, 30: the drifts from step 10, row-normalized, have
    uncentered PC1 share (1 + 1/sqrt 2) / 2; the two updates meet that PC1 at cos 22.5 and 67.5 degrees."""
    from drift.analysis.beta2 import span_geometry
    from drift.geometry.trajectory import Trajectory
    traj = Trajectory.from_dense([10, 20, 30], np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]))
    g = span_geometry(traj, [10, 20, 30])
    assert g["span"] == [10, 30]
    assert g["pc1_span"] == pytest.approx(100 * (1 + 2 ** -0.5) / 2, rel=1e-9)
    assert g["drift_span"] == pytest.approx(2 ** 0.5, rel=1e-9)
    assert g["abs_cos_span"] == pytest.approx((math.cos(math.pi / 8) + math.sin(math.pi / 8)) / 2, rel=1e-9)


def test_reheat_starts_from_the_late_low_p_ood_state():
    """C20's start: the last checkpoint when its p_ood <= 0.35, else the lowest p_ood after the peak; the rule
    forced with "last" or a step, and an unknown step refused."""
    from types import SimpleNamespace

    from drift.analysis.reheat import reheat_start

    def run(p_ood):
        steps = [0, 1] + [80 * (i + 1) for i in range(len(p_ood))]
        metrics = [{"step": s, "p_ood": p} for s, p in zip(steps[2:], p_ood)]
        return SimpleNamespace(steps=steps, last_step=steps[-1], metrics=metrics, run_dir="runs/x")

    low_end = run([0.1, 0.7, 0.3, 0.6, 0.2])
    assert reheat_start(low_end)[0] == 400 and "0.200 <= 0.35" in reheat_start(low_end)[1]
    high_end = run([0.1, 0.8, 0.3, 0.15, 0.5, 0.6])  # peak at 160, lowest after it 0.15 at 320
    step, why = reheat_start(high_end)
    assert step == 320 and "lowest p_ood (0.150) after the peak at 160" in why
    assert reheat_start(high_end, "last")[0] == 480 and reheat_start(high_end, "240")[0] == 240
    with pytest.raises(ck.RunError, match="no checkpoint there"):
        reheat_start(high_end, "250")
