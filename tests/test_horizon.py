"""C12 at equal horizon (drift/analysis/horizon.py): the summed gradient is the trainer's own, planted through plain
SGD, where one step's update is exactly -lr times the step's gradient."""
import math

import pytest
import torch

from drift.analysis.horizon import horizon_analysis, horizon_summary, intervals
from drift.config import resolve
from drift.run.info import load_run
from drift.train.trainer import train


@pytest.fixture(scope="module")
def plain_sgd_run(tmp_path_factory):
    """Plain SGD without weight decay or clipping, a checkpoint every step: theta_{s+1} - theta_s = -lr_{s+1} G(s, s+1)."""
    run_dir = tmp_path_factory.mktemp("runs") / "sgd_s2"
    cfg = resolve("tiny", 2, ["optimizer=sgd", "weight_decay=0", "grad_clip=inf", "total_steps=8", "ckpt_every=1",
                              "eval_every=4", "warmup_steps=2", "lambda_switch_step=4", "lr=0.05"])
    train(cfg, run_dir, progress=False)
    return run_dir


def test_one_step_update_is_minus_lr_times_the_summed_gradient(plain_sgd_run, restore_torch_threads):
    results, params, inputs = horizon_analysis(plain_sgd_run, starts=[2, 3, 5], scope="block0", progress=False)
    rows = results["intervals"]
    assert [(r["start"], r["end"]) for r in rows] == [(2, 3), (3, 4), (5, 6)]
    for r in rows:
        assert r["update_summed_grad_abs_cos"] == pytest.approx(1.0, abs=1e-5)
        assert r["update_abs_cos"] == pytest.approx(r["summed_grad_abs_cos"], rel=1e-3)
    # so the update is no more aligned with the backbone than its gradient: the rule cannot hold here
    assert results["summary"]["update_over_summed_grad"] == pytest.approx(1.0, rel=1e-3)
    assert params["stream"] == 0 and inputs["steps"] == [2, 3, 4, 5, 6]


def test_intervals_run_to_the_next_regular_checkpoint(tiny_run):
    run = load_run(tiny_run)  # checkpoints 0, 1, 5, 10, ..., 30
    assert intervals(run, [1, 5, 25, 30]) == [(1, 5), (5, 10), (25, 30)]


def test_summary_is_the_ratio_of_means():
    rows = [{"update_abs_cos": 0.5, "summed_grad_abs_cos": 0.02, "update_summed_grad_abs_cos": 0.2},
            {"update_abs_cos": 0.3, "summed_grad_abs_cos": 0.06, "update_summed_grad_abs_cos": 0.1}]
    s = horizon_summary(rows)
    assert s["update_over_summed_grad"] == pytest.approx(0.4 / 0.04) and s["n_intervals"] == 2
    assert s["update_summed_grad_mean_abs_cos"] == pytest.approx(0.15)
    assert math.isnan(horizon_summary([])["update_over_summed_grad"])
