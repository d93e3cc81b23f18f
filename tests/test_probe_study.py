"""The probe-scaling study: its verdicts on crafted probe curves, and one real (tiny) study run end to end."""
import json

import numpy as np
import pytest

from drift.studies import probe_study as ps
from drift.config import resolve


def _fake_run(path, p_in, p_ood, val, n_eval=1024, status="finished", seed=42):
    path.mkdir(parents=True)
    cfg = resolve("tiny", seed, [f"n_probe_eval={n_eval}", "p_probe=0.2"])
    (path / "run.json").write_text(json.dumps({"config": cfg.to_dict(), "status": status, "n_params": 1}))
    steps = np.arange(1, len(p_ood) + 1) * 10
    (path / "metrics.jsonl").write_text("".join(
        json.dumps({"step": int(s), "p_in": a, "p_ood": b, "val_loss": v}) + "\n"
        for s, a, b, v in zip(steps, p_in, p_ood, val)))
    return path


RISING_IN = [0.1, 0.3, 0.6, 0.92, 0.95, 0.96, 0.97, 0.97]
FALLING_VAL = [8.0, 6.0, 5.0, 4.2, 3.9, 3.7, 3.6, 3.5]


def test_oscillating_learned_run_meets_all(tmp_path):
    row = ps.summarize_run(_fake_run(tmp_path / "a", RISING_IN, [0.1, 0.3, 0.8, 0.5, 0.45, 0.7, 0.3, 0.2],
                                     FALLING_VAL))
    assert row["meets_all"] and row["best_p_ood"] == 0.8 and row["best_p_ood_step"] == 30
    assert row["p_in_learned_step"] == 40 and row["significant_drops"]
    assert row["seqs_per_step"] == pytest.approx(16 * 0.2)  # tiny: 8 x 2 sequences per step


def test_each_criterion_can_fail(tmp_path):
    flat = [0.1, 0.2, 0.3, 0.35, 0.36, 0.37, 0.38, 0.39]  # never above 0.4, no drop
    row = ps.summarize_run(_fake_run(tmp_path / "flat", RISING_IN, flat, FALLING_VAL))
    assert not row["criteria"]["rises"] and not row["criteria"]["drops"] and not row["meets_all"]
    # a 0.05 drop at p = 0.8 with 100 examples is within 3 binomial std (0.12): not significant
    small = ps.summarize_run(_fake_run(tmp_path / "small", RISING_IN, [0.1, 0.5, 0.8, 0.75, 0.78, 0.8, 0.79, 0.8],
                                       FALLING_VAL, n_eval=100))
    assert not small["criteria"]["drops"] and not small["criteria"]["eval_size"]
    unlearned = ps.summarize_run(_fake_run(tmp_path / "unl", [0.2] * 8, flat, FALLING_VAL))
    assert not unlearned["criteria"]["learned"]
    rising_val = ps.summarize_run(_fake_run(tmp_path / "val", RISING_IN, flat, FALLING_VAL[::-1]))
    assert not rising_val["criteria"]["val_falls"]


def test_config_verdict_needs_both_seeds():
    ok = {"config": "c", "status": "finished", "meets_all": True}
    assert ps.config_verdicts([dict(ok, seed=42)]) == {"c": "incomplete"}
    assert ps.config_verdicts([dict(ok, seed=42), dict(ok, seed=271)]) == {"c": "passes"}
    assert ps.config_verdicts([dict(ok, seed=42), dict(ok, seed=271, meets_all=False)]) == {"c": "fails"}


def test_grid_keeps_the_papers_structure():
    for spec in ps.STUDY:
        cfg = ps.config_for(spec, 42)
        t = cfg.train
        assert t.lambda_switch_step == round(0.4 * t.total_steps), spec.name
        assert t.n_probe_eval >= ps.MIN_EVAL and (t.beta1, t.beta2, t.weight_decay, t.grad_clip) == (0.9, 0.95, 0.5, 1.0)
        assert 40 <= t.total_steps / t.eval_every <= 60, spec.name
    assert len({s.name for s in ps.STUDY}) == len(ps.STUDY)


def test_tiny_study_run_trains_resumes_and_summarizes(tmp_path):
    spec = ps.StudyConfig("tiny_probe", ("total_steps=20", "n_probe_eval=32"), "test", base="tiny")
    run_dir = ps.train_one(spec, 3, tmp_path, progress=False)
    assert ps.run_status(run_dir) == "finished"
    first = (run_dir / "metrics.jsonl").read_text()
    assert ps.train_one(spec, 3, tmp_path, progress=False) == run_dir  # finished: skipped, nothing rewritten
    assert (run_dir / "metrics.jsonl").read_text() == first
    row = ps.summarize_run(run_dir)
    assert row["steps_done"] == 20 and row["wall_s"] > 0 and not row["criteria"]["eval_size"]


def _written_run(path, cfg, p_ood=(0.1, 0.5, 0.9, 0.3, 0.2)):
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"config": cfg.to_dict(), "status": "finished"}))
    (path / "metrics.jsonl").write_text("".join(
        json.dumps({"step": 10 * i, "p_in": 0.95, "p_ood": p, "val_loss": 5.0 - i,
                    "timers": {"data": 1.0, "compute": 10.0 * i}}) + "\n" for i, p in enumerate(p_ood, 1)))
    return path


def test_a_cpu_preset_run_is_adopted_as_its_study_config(tmp_path):
    main = _written_run(tmp_path / "cpu_s271", resolve("cpu", 271, ["threads=1"]))
    assert ps.matching_config(main) == (ps.find("p20_T4000_w150"), 271)
    old = _written_run(tmp_path / "cpu_p40_s271", resolve("cpu_p40", 271))
    assert ps.matching_config(old) == (ps.find("p40_T1250_w150"), 271)
    other = _written_run(tmp_path / "lr", resolve("cpu", 271, ["lr=3e-4"]))
    with pytest.raises(ValueError, match="trains no config of the study"):
        ps.matching_config(other)
    root = tmp_path / "study"
    _written_run(root / "p40_T1250_w150_s42", ps.config_for(ps.find("p40_T1250_w150"), 42))
    rows = ps.summarize(root, adopted=[old])
    assert [(r["config"], r["seed"], r["run"]) for r in rows] == [("p40_T1250_w150", 42, "p40_T1250_w150_s42"),
                                                                   ("p40_T1250_w150", 271, "cpu_p40_s271")]
    assert rows[1]["wall_s"] == 51.0  # the last record's loop timers
    assert "271 (run cpu_p40_s271)" in ps.table_markdown(rows)
    with pytest.raises(ValueError, match="already in the study"):
        ps.summarize(root, adopted=[_written_run(tmp_path / "cpu_p40_s42", resolve("cpu_p40", 42))])
    # seeds beyond the study's two (the regime's 137, 314, 1729, or any other) are listed too, after them
    extra = [_written_run(tmp_path / f"cpu_s{s}", resolve("cpu", s, ["threads=1"])) for s in (1729, 137, 5)]
    rows = ps.summarize(tmp_path / "empty", adopted=[main, *extra])
    assert [(r["config"], r["seed"]) for r in rows] == [("p20_T4000_w150", s) for s in (271, 137, 1729, 5)]


def test_checkpoint_cadence_changes_no_training_number(tmp_path):
    """The premise of adoption: ckpt_every (MECHANICAL) leaves every logged number of a run unchanged."""
    from drift.run.checkpoint import read_metrics
    from drift.train.trainer import train

    def logged(every):
        run_dir = tmp_path / f"every{every}"
        train(resolve("tiny", 5, ["total_steps=12", f"ckpt_every={every}", "eval_every=4"]), run_dir, progress=False)
        return [{k: v for k, v in r.items() if k != "timers"} for r in read_metrics(run_dir)]

    assert logged(2) == logged(12)


def test_rows_carry_their_curves_and_recorded_rows_survive_their_runs(tmp_path):
    live = ps.summarize_run(_fake_run(tmp_path / "a", RISING_IN, [0.1, 0.3, 0.8, 0.5, 0.45, 0.7, 0.3, 0.2],
                                      FALLING_VAL))
    assert live["curve"]["p_ood"][2] == 0.8 and live["curve"]["step"][-1] == 80
    live.update(config="p20_T1250_w150", seed=42)
    # an earlier results file: the same config and seed (superseded by the run on disk), another seed (kept),
    # a config no longer in the grid (dropped)
    recorded = [dict(live, best_p_ood=0.1), dict(live, seed=271), dict(live, config="gone")]
    merged = ps.merge_recorded([live], recorded)
    assert [(r["config"], r["seed"], r["best_p_ood"]) for r in merged] == \
        [("p20_T1250_w150", 42, 0.8), ("p20_T1250_w150", 271, 0.8)]
    np.testing.assert_array_equal(ps.row_curve(dict(live, path=str(tmp_path / "deleted")))["p_ood"],
                                  live["curve"]["p_ood"])
    old = {k: v for k, v in live.items() if k != "curve"}
    assert ps.row_curve(dict(old, path=str(tmp_path / "deleted"))) is None
    fig = ps.fig_probe_study([live, dict(old, seed=271, path=str(tmp_path / "deleted"))])
    assert any("curves not stored: p20_T1250_w150 s271" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_table_names_the_cpu_a_loop_time_was_measured_on(tmp_path):
    """Loop times from AVX2 and AVX512 machines differ by 2x: a row says which it was when the run recorded it."""
    run = _fake_run(tmp_path / "a", RISING_IN, [0.1, 0.3, 0.8, 0.5, 0.45, 0.7, 0.3, 0.2], FALLING_VAL)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(dict(info, cpu_capability="AVX512")))
    rows = (run / "metrics.jsonl").read_text().splitlines()
    rows[-1] = json.dumps(dict(json.loads(rows[-1]), timers={"compute": 100.0, "eval": 20.0}))
    (run / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    old = ps.summarize_run(_fake_run(tmp_path / "b", RISING_IN, [0.1, 0.3, 0.8, 0.5, 0.45, 0.7, 0.3, 0.2],
                                     FALLING_VAL, seed=271))
    rows = [dict(ps.summarize_run(run), config="p40_T1250_b32"), dict(old, config="p40_T1250_b32")]
    lines = ps.table_markdown(rows).splitlines()
    assert "| 2.0 (AVX512) |" in lines[2] and "(AVX" not in lines[3]


def test_largest_fall_is_the_deepest_drawdown():
    # the paper's seed-42 curve: 0.78 -> 0.34 (0.44) and then 0.71 -> 0.14; from the global peak 0.78 it is 0.64
    fall, i, j = ps.largest_fall([0.1, 0.78, 0.34, 0.71, 0.14, 0.17])
    assert (round(fall, 10), i, j) == (0.64, 1, 4)
    assert ps.largest_fall([0.1, 0.2, 0.3])[0] == 0.0  # a rising curve never falls
    assert ps.largest_fall([0.5, 0.9, 0.1, 0.95, 0.8])[0] == pytest.approx(0.8)  # a later, lower trough counts


def test_phase_criteria_each_way(tmp_path):
    steps = np.arange(1, 9) * 100.0
    m = {"step": steps, "p_in": np.full(8, 0.95), "val_loss": np.linspace(6, 1, 8),
         "p_ood": np.array([0.05, 0.4, 0.7, 0.5, 0.65, 0.3, 0.2, 0.15])}
    assert ps.phase_criteria(m, 0.2, fresh_fall=0.45) == {"phase_learned": True, "phase_peak": True,
                                                        "phase_fall": True, "phase_end": True, "phase_rate": True}
    assert ps.phase_criteria(m, 0.2, fresh_fall=None)["phase_fall"] is None  # undecided until the fresh set is scored
    assert ps.phase_criteria(m, 0.2, fresh_fall=0.25)["phase_fall"] is False
    assert ps.phase_criteria(m, 0.4, fresh_fall=0.45)["phase_rate"] is False
    late = dict(m, p_ood=np.array([0.05, 0.4, 0.7, 0.5, 0.65, 0.3, 0.2, 0.36]))
    assert ps.phase_criteria(late, 0.2, fresh_fall=0.45)["phase_end"] is False  # ends above 0.35
    rising_val = dict(m, val_loss=np.linspace(1, 6, 8))
    assert ps.phase_criteria(rising_val, 0.2, fresh_fall=0.45)["phase_end"] is False
    shallow = dict(m, p_ood=np.array([0.05, 0.4, 0.62, 0.5, 0.55, 0.4, 0.34, 0.33]))
    assert ps.phase_criteria(shallow, 0.2, fresh_fall=0.45)["phase_fall"] is False  # 0.62 -> 0.33 is 0.29


def test_fresh_eval_fall_reads_only_a_file_of_this_run(tmp_path):
    scored = {"steps": [1, 80, 160], "p_ood": {"4096": [0.1, 0.8, 0.4], "1024": [0.1, 0.7, 0.5]}}
    (tmp_path / "eval_size_cpu_s42.json").write_text(json.dumps(scored))
    assert ps.fresh_eval_fall("cpu_s42", [0, 1, 80, 160], tmp_path) == pytest.approx(0.4)
    assert ps.fresh_eval_fall("cpu_s42", [0, 1, 25, 50], tmp_path) is None  # another run's checkpoints
    assert ps.fresh_eval_fall("cpu_s271", [0, 1, 80, 160], tmp_path) is None  # not measured


def test_summarize_names_a_path_that_is_no_run_in_one_line(tmp_path, capsys):
    """--adopt given a file (a log named like a run) or an empty directory: exit 2, one line naming it."""
    from experiments import probe_study as cli_main
    log = tmp_path / "cpu_s271.log"
    log.write_text("training log\n")
    empty = tmp_path / "cpu_s5"
    empty.mkdir()
    for bad in (log, empty):
        rc = cli_main.main(["--summarize", "--root", str(tmp_path / "study"), "--out", str(tmp_path / "out"),
                            "--adopt", str(bad)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("probe_study: error: ") and str(bad) in err[0]
    assert not (tmp_path / "out").exists()
