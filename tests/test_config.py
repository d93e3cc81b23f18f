"""Presets and overrides: the one source of truth for hyper-parameters."""
import pytest

import train as train_script
from drift.config import PRESETS, Config, ConfigError, parse_dense, resolve, validate
from helpers.runs import one_line_error


def test_paper_preset_is_protocol_section_3():
    t = resolve("paper").train
    assert (t.lr, t.beta1, t.beta2, t.eps, t.weight_decay, t.grad_clip) == (1e-3, 0.9, 0.95, 1e-8, 0.5, 1.0)
    assert (t.warmup_steps, t.total_steps, t.micro_batch, t.grad_accum) == (1500, 10_000, 64, 2)
    assert (t.lambda_early, t.lambda_late, t.lambda_switch_step, t.p_probe) == (2.0, 4.0, 4000, 0.10)
    assert (t.eval_every, t.ckpt_every, t.n_probe_eval) == (200, 200, 2000)
    assert (t.gap_in_min, t.gap_in_max, t.gap_ood_min, t.gap_ood_max) == (5, 30, 80, 200)


def test_cpu_presets_keep_the_structure():
    for name in ("cpu", "cpu_p40", "cpu_small"):
        t = resolve(name).train
        assert t.lambda_switch_step == 0.4 * t.total_steps
        assert 45 <= t.total_steps // t.ckpt_every <= 55
        assert t.gap_ood_min > 2 * t.gap_in_max
        assert (t.lr, t.beta2, t.weight_decay, t.optimizer, t.min_lr_frac) == (1e-3, 0.95, 0.5, "adamw", 0.1)
    # cpu_small keeps the paper's 15% warmup; cpu and cpu_p40 are probe-study configs that kept cpu_small's 150-step
    # warmup, and their eval sets must resolve p_ood to a binomial std of 0.016 at 0.5. cpu is at most the paper's
    # probe rate x 2 (the regime issue).
    assert resolve("cpu_small").train.warmup_steps == 0.15 * resolve("cpu_small").train.total_steps
    t = resolve("cpu").train
    assert (t.total_steps, t.warmup_steps, t.p_probe, t.threads) == (4000, 150, 0.2, 2) and t.n_probe_eval >= 1000
    t = resolve("cpu_p40").train
    assert (t.total_steps, t.warmup_steps, t.p_probe) == (1250, 150, 0.4) and t.n_probe_eval >= 1000


@pytest.mark.parametrize("preset, study_config", [("cpu", "p20_T4000_w150"), ("cpu_p40", "p40_T1250_w150")])
def test_cpu_preset_is_the_probe_study_config(preset, study_config):
    from drift.studies.probe_study import config_for, find
    ours, study = resolve(preset, 42).to_dict(), config_for(find(study_config), 42).to_dict()
    differ = {k for part in ours for k in ours[part] if ours[part][k] != study[part][k]}
    assert differ == {"ckpt_every", "threads"}  # ~51 checkpoints for the analyses; 2 threads instead of the study's 1


def test_overrides_are_typed_and_checked():
    cfg = resolve("tiny", seed=7, overrides=["total_steps=1e2", "lr=3e-4", "compile=true", "n_layer=3"])
    assert cfg.train.total_steps == 100 and cfg.train.lr == 3e-4 and cfg.train.compile is True
    assert cfg.model.n_layer == 3 and cfg.train.seed == 7
    with pytest.raises(ConfigError, match="unknown config key 'n_layers'"):
        resolve("tiny", overrides=["n_layers=3"])
    with pytest.raises(ConfigError, match="expected a int"):
        resolve("tiny", overrides=["total_steps=1.5"])
    with pytest.raises(ConfigError, match="key=value"):
        resolve("tiny", overrides=["total_steps"])
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve("huge")


def test_round_trip_and_dense_windows():
    cfg = resolve("cpu", seed=3)
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert parse_dense("600:2000:50,2000:4000:100") == [(600, 2000, 50), (2000, 4000, 100)]
    with pytest.raises(ConfigError):
        parse_dense("600:2000")


# ---------------------------------------------------------------------------------------------------------------
# Bad arguments are one line and write nothing; every preset validates
# ---------------------------------------------------------------------------------------------------------------

BAD = {"n_head=0": "n_head=0", "eval_every=0": "eval_every=0", "ckpt_every=0": "ckpt_every=0", "lr=-1": "lr=-1",
       "lr=nan": "lr=nan", "tokenizer=foo": "tokenizer='foo'", "d_model=0": "d_model=0", "n_layer=0": "n_layer=0",
       "p_probe=2": "p_probe=2", "amp=fp8": "amp='fp8'", "d_model=33": "not divisible by n_head",
       "seq_len=10": "seq_len=10 is too short for the longest probe eval item"}

@pytest.mark.parametrize("override", list(BAD))
def test_bad_config_is_one_line_and_writes_nothing(override, tmp_path, capsys):
    out = tmp_path / "x"
    assert train_script.main(["--preset", "tiny", "--out", str(out), "--no-progress", override]) == 2
    assert BAD[override] in one_line_error(capsys, "train.py")
    assert not out.exists()

def test_every_preset_validates_and_rules_cover_relations():
    for preset in ("paper", "cpu", "tiny"):
        validate(resolve(preset))
    with pytest.raises(ConfigError, match="gap_ood_min"):
        resolve("tiny", overrides=["gap_ood_min=5"])
    with pytest.raises(ConfigError, match="device"):
        resolve("tiny", overrides=["device=gpu"])


def test_one_home_for_fields_that_do_not_change_the_experiment(tmp_path):
    """A control directory found on disk is reused when it differs only in SAME_EXPERIMENT fields (placement,
    derived) and refused when it differs in anything else; the probe study also ignores which checkpoints are kept."""
    from drift.config import CHECKPOINTING, SAME_EXPERIMENT, SAME_TRAINING, resolve
    from drift.run import checkpoint as ck
    from drift.studies import probe_study
    from drift.train.control_runs import _plan_run
    assert SAME_TRAINING == SAME_EXPERIMENT | CHECKPOINTING and probe_study.MECHANICAL == SAME_TRAINING
    cfg = resolve("tiny", 3)
    ck.atomic_write_json({"config": cfg.to_dict(), "status": "finished"}, tmp_path / "run.json")
    placed = resolve("tiny", 3, ["threads=1", "amp=off", "fused_ce=true"])
    assert _plan_run(placed, tmp_path) == ("skipped", None)
    for other in (["lr=0.5"], ["ckpt_every=7"], ["seed=4"]):
        with pytest.raises(ck.RunError, match="different config"):
            _plan_run(resolve("tiny", 3, other), tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# Upper bounds and types: a typo is refused at once, before anything is built
# ---------------------------------------------------------------------------------------------------------------

TOO_BIG = {  # before: all accepted; total_steps=1e20 then grew to 22 GB listing its checkpoint steps
    "total_steps=100000000000000000000": "total_steps=100000000000000000000: at most 10,000,000 steps",
    "seed=-1": "seed=-1: must lie in [0, 4294967295]",
    "seed=4294967296": "seed=4294967296: must lie in [0, 4294967295]",
    "d_model=1e9": "d_model=1000000000: at most 1,048,576",
    "micro_batch=1e9": "micro_batch=1000000000: at most 1,048,576",
    "n_layer=100000": "n_layer=100000: at most 1,024",
    "n_train_stories=1e12": "n_train_stories=1000000000000: at most 100,000,000",
    "warmup_steps=1e8": "warmup_steps=100000000: at most 10,000,000 steps",
}


@pytest.mark.parametrize("override", list(TOO_BIG))
def test_upper_bounds_refuse_typos(override):
    with pytest.raises(ConfigError) as e:
        resolve("tiny", overrides=[override])
    assert str(e.value).startswith(TOO_BIG[override])


def test_bounds_on_what_a_schedule_lists():
    """run.json lists the checkpoint and eval steps: their number is bounded, not total_steps alone."""
    at_most = ["total_steps=10000000", "ckpt_every=200", "eval_every=100"]
    resolve("tiny", overrides=at_most)  # 50,002 checkpoints (steps 0, 1 and every 200th) and 100,000 evals
    with pytest.raises(ConfigError, match="saves about 200,002 checkpoints; at most 100,000: raise ckpt_every"):
        resolve("tiny", overrides=at_most[:1] + ["ckpt_every=50", "eval_every=1000"])
    with pytest.raises(ConfigError, match="saves about 100,023 checkpoints"):  # dense windows count too
        resolve("tiny", overrides=at_most[:1] + ["ckpt_every=100", "eval_every=1000", "dense_ckpt=0:20:1"])
    with pytest.raises(ConfigError, match="evaluates about 10,000,000 times; at most 100,000: raise eval_every"):
        resolve("tiny", overrides=at_most[:1] + ["ckpt_every=1000000", "eval_every=1"])
    with pytest.raises(ConfigError, match="about 2.15e\\+12 weights; at most 1e\\+10"):
        resolve("tiny", overrides=["n_layer=1000", "d_model=1024", "n_head=2", "d_ff=1048576"])
    for preset in PRESETS:
        validate(resolve(preset))  # every preset lies far inside


def test_a_config_from_a_file_is_type_checked():
    cfg = resolve("tiny")
    cfg.model.n_layer = "2"  # what a hand-edited run.json can hold; before: a TypeError inside the rules
    with pytest.raises(ConfigError, match="n_layer='2': expected a int"):
        validate(cfg)
    cfg.model.n_layer, cfg.train.compile = 2, 1
    with pytest.raises(ConfigError, match="compile=1: expected a bool"):
        validate(cfg)
    cfg.train.compile, cfg.train.lr = False, 1  # an int where a float is declared is a number: fine
    validate(cfg)


def test_grad_clip_inf_survives_run_json(tmp_path):
    """run.json writes inf as null (JSON has no inf); reading it back gives inf again, so a run trained without
    clipping can be resumed and analysed. Other fields' null is still refused."""
    from drift.config import resolve
    from drift.run import checkpoint as ck
    cfg = resolve("tiny", 1, ["grad_clip=inf"])
    ck.atomic_write_json({"config": cfg.to_dict()}, tmp_path / "run.json")
    assert ck.read_json(tmp_path / "run.json")["config"]["train"]["grad_clip"] is None
    assert ck.read_config(tmp_path).train.grad_clip == float("inf")
    info = ck.read_json(tmp_path / "run.json")
    info["config"]["train"]["lr"] = None
    with pytest.raises(ck.RunError, match="lr=inf"):
        ck.run_config(info, tmp_path / "run.json")
