"""Shared fixtures: one tiny training run per test session, reused by every test that needs a run directory."""
import os
import shutil

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Token and tokenizer caches live in a per-session temp dir, so tests never depend on a user's cache."""
    if "DRIFT_CACHE" not in os.environ:
        os.environ["DRIFT_CACHE"] = str(tmp_path_factory.mktemp("drift_cache"))
    yield


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished tiny-preset run (30 steps, checkpoints every 5). Treat it as read-only; copy it to modify."""
    from drift.config import resolve
    from drift.train.trainer import train
    run_dir = tmp_path_factory.mktemp("runs") / "tiny_s1"
    train(resolve("tiny", seed=1), run_dir, progress=False)
    return run_dir


@pytest.fixture
def restore_torch_threads():
    """Runs set torch's thread count for the process; give the rest of the suite back its setting."""
    import torch
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _diverge_beta2_zero(monkeypatch, at: int = 9) -> int:
    import drift.train.trainer as tr
    original = tr._train_step

    def step_or_diverge(model, fwd, opt, ctx, step, state):
        if ctx.cfg.train.beta2 == 0.0 and step == at:
            raise tr.DivergedError(step, ctx.run_dir)
        return original(model, fwd, opt, ctx, step, state)

    monkeypatch.setattr(tr, "_train_step", step_or_diverge)
    return at


@pytest.fixture
def beta2_zero_diverges(monkeypatch):
    """Runs with beta2 = 0 diverge at step 9 (the trainer's DivergedError), so a tiny sweep has a blow-up like the
    paper's beta2 = 0 run. Returns the step."""
    return _diverge_beta2_zero(monkeypatch)


@pytest.fixture(scope="session")
def tiny_beta2_sweep(tmp_path_factory):
    """A tiny beta2 sweep trained once per session with beta2_sweep.py: beta2 0.9, 0.5 and 0.0 at the preset's
    p_probe (beta2 = 0 diverges at step 9, as with beta2_zero_diverges), its table written. Copy it before changing
    it."""
    import torch

    import beta2_sweep
    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("sweeps") / "beta2"
    with pytest.MonkeyPatch.context() as mp:
        _diverge_beta2_zero(mp)
        assert beta2_sweep.main(["--preset", "tiny", "--seed", "3", "--out", str(out), "--beta2", "0.9", "0.5", "0.0",
                                 "--no-progress", "--no-figure", "n_probe_eval=16", "val_batches=1"]) == 0
    torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="session")
def tiny_control_set(tmp_path_factory):
    """Optimizer controls A and C of the tiny preset (seed 3), trained once per session with sgd_control.py, with
    sgd_control_analysis.py's table written. Copy it before changing it."""
    import torch

    import sgd_control
    import sgd_control_analysis
    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("sweeps") / "ctrl"
    small = ["n_probe_eval=16", "val_batches=1", "threads=1"]
    assert sgd_control.main(["--preset", "tiny", "--seed", "3", "--out", str(out), "--runs", "A", "C",
                             "--no-progress", *small]) == 0
    assert sgd_control_analysis.main([str(out), "--no-figure"]) == 0
    torch.set_num_threads(threads)
    return out


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path):
    dst = tmp_path / "tiny_copy"
    shutil.copytree(tiny_run, dst)
    return dst


@pytest.fixture(scope="session")
def gpt2_tokenizer():
    """The real GPT-2 tokenizer, from tiktoken's cache or the ranks file `make tokenizer` fetches. Without them the
    tests that need it are skipped, unless DRIFT_REQUIRE_GPT2=1 (set by CI, which fetches the file first): then they
    fail."""
    from drift.data.tokenizer import Gpt2Tokenizer, TokenizerUnavailableError
    try:
        return Gpt2Tokenizer()
    except TokenizerUnavailableError as exc:
        if os.environ.get("DRIFT_REQUIRE_GPT2", "") not in ("", "0"):
            pytest.fail(f"DRIFT_REQUIRE_GPT2 is set but {exc}")
        pytest.skip(f"{exc} (DRIFT_REQUIRE_GPT2=1 turns this skip into a failure)")
