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


@pytest.fixture
def beta2_zero_diverges(monkeypatch):
    """Runs with beta2 = 0 diverge at step 9 (the trainer's DivergedError), so a tiny sweep has a blow-up like the
    paper's beta2 = 0 run. Returns the step."""
    import drift.train.trainer as tr
    original, at = tr._train_step, 9

    def step_or_diverge(model, fwd, opt, ctx, step, state):
        if ctx.cfg.train.beta2 == 0.0 and step == at:
            raise tr.DivergedError(step, ctx.run_dir)
        return original(model, fwd, opt, ctx, step, state)

    monkeypatch.setattr(tr, "_train_step", step_or_diverge)
    return at


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
