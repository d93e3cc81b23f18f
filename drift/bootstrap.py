"""What a fresh machine needs before anything else runs, checked with the standard library only.

This module must import nothing outside the standard library (drift.atomic, drift.cli and drift.config are standard
library only): it runs before the requirements are installed.

    python3 -m drift.bootstrap python     # install requirements.txt unless every pin is already satisfied
    python3 -m drift.bootstrap tex        # the PDF toolchain; on Debian as root (or with sudo) apt-get installs it
    python3 -m drift.bootstrap gpt2       # fetch, verify and cache GPT-2's BPE ranks (see find_gpt2_ranks)

Every refusal is one line on stderr naming the command to run, and exit status 1. DRIFT_NO_INSTALL=1 (or
--no-install) makes `python` and `tex` refuse instead of installing.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from drift import cli
from drift.atomic import atomic_path

ROOT = Path(__file__).resolve().parent.parent


class SetupError(RuntimeError):
    """Something the machine lacks, with the one command that provides it."""


def home_cache_dir() -> Path:
    """~/.cache/drift: the cache root when $DRIFT_CACHE is not set."""
    return Path.home() / ".cache" / "drift"


def default_cache_dir() -> Path:
    """$DRIFT_CACHE, else ~/.cache/drift."""
    return Path(os.environ.get("DRIFT_CACHE") or home_cache_dir())


def _no_install() -> bool:
    return os.environ.get("DRIFT_NO_INSTALL", "").lower() in ("1", "true", "yes", "on")


# --- Python requirements ---------------------------------------------------------------------------------------

def unmet_requirements(requirements: Path = ROOT / "requirements.txt") -> list[str]:
    """The `name==version` pins that are not installed at that version (a local suffix such as +cpu matches, as
    it does for pip)."""
    unmet = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        try:
            installed = importlib.metadata.version(name.strip())
        except importlib.metadata.PackageNotFoundError:
            unmet.append(line)
            continue
        if version and installed.split("+", 1)[0] != version.strip():
            unmet.append(line)
    return unmet


def ensure_requirements(requirements: Path = ROOT / "requirements.txt", install: bool = True) -> None:
    """A no-op when every pin is satisfied (a fraction of a second); else pip installs the file."""
    unmet = unmet_requirements(requirements)
    if not unmet:
        return
    command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)]
    if not install:
        raise SetupError(f"missing Python requirements ({', '.join(unmet)}); run: {' '.join(command)}")
    print(f"installing Python requirements ({len(unmet)} missing or at another version)", file=sys.stderr)
    if subprocess.run(command).returncode != 0:
        raise SetupError(f"pip could not install {requirements.name} (see above); in a virtual environment run: "
                         f"{' '.join(command)}")


# --- TeX toolchain ---------------------------------------------------------------------------------------------

TEX_PROGRAMS = ("latexmk", "pdflatex", "kpsewhich")
TEX_DEBIAN_PACKAGES = ("latexmk", "texlive-latex-recommended", "texlive-latex-extra", "texlive-fonts-recommended")
PAPER_TEX = ROOT / "paper" / "paper_backbone.tex"
_USEPACKAGE = re.compile(r"^\s*\\usepackage(?:\[[^\]]*\])?\{([^}]*)\}", re.M)


def paper_packages(tex: Path = PAPER_TEX) -> list[str]:
    """The LaTeX packages the report loads, read from its preamble so the check follows the document."""
    names = [n.strip() for group in _USEPACKAGE.findall(tex.read_text()) for n in group.split(",")]
    return sorted(set(filter(None, names)))


def missing_tex(tex: Path = PAPER_TEX) -> list[str]:
    """Programs and .sty files the PDF build needs but cannot find (empty when the toolchain is complete)."""
    missing = [p for p in TEX_PROGRAMS if shutil.which(p) is None]
    if "kpsewhich" in missing:
        return missing
    wanted = [f"{name}.sty" for name in paper_packages(tex)]
    found = subprocess.run(["kpsewhich", *wanted], capture_output=True, text=True, timeout=60).stdout.split()
    found_names = {Path(f).name for f in found}
    return missing + [w for w in wanted if w not in found_names]


def _apt_prefix() -> list[str] | None:
    """How this process may run apt-get: directly as root, through passwordless sudo, or not at all."""
    if shutil.which("apt-get") is None:
        return None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo"]
    return None


def tex_install_command() -> str:
    sudo = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get update && {sudo}apt-get install -y " + " ".join(TEX_DEBIAN_PACKAGES)


def ensure_tex(install: bool = True, tex: Path = PAPER_TEX) -> None:
    """Check the PDF toolchain; on Debian with root or passwordless sudo install it, else refuse at once."""
    missing = missing_tex(tex)
    if not missing:
        return
    prefix = _apt_prefix() if install else None
    if prefix is None:
        raise SetupError(f"the PDF step needs TeX Live (missing: {', '.join(missing)}); install it first: "
                         f"{tex_install_command()} (or your system's TeX Live with latexmk), then rerun")
    print(f"installing TeX Live with apt-get (missing: {', '.join(missing)})", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *TEX_DEBIAN_PACKAGES]):
        if subprocess.run(prefix + args, env=env).returncode != 0:
            raise SetupError(f"apt-get failed (see above); install TeX Live by hand: {tex_install_command()}")
    still = missing_tex(tex)
    if still:
        raise SetupError(f"TeX Live installed but still missing {', '.join(still)}; install the TeX Live package "
                         f"that provides them (Debian: apt-file search {still[0]})")


# --- GPT-2 BPE ranks -------------------------------------------------------------------------------------------

# GPT-2's 50,256 BPE merges in tiktoken's format (tiktoken calls them r50k_base); the hash is the one tiktoken
# itself declares for that file. openai-whisper's source distribution ships the exact file, so any machine that
# can reach PyPI can fetch it with pip, without installing whisper or its dependencies.
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
GPT2_RANKS_SDIST = ("openai-whisper", "20250625")
GPT2_RANKS_MEMBER = "whisper/assets/gpt2.tiktoken"
GPT2_RANKS_NAME = Path("tokenizer") / "gpt2.tiktoken"
GPT2_FETCH_COMMAND = "make tokenizer"


def gpt2_ranks_paths() -> list[Path]:
    """Where the ranks file is looked for: the active cache, then the default one (tests point DRIFT_CACHE at a
    temporary directory, and a file fetched once into ~/.cache/drift should still be found)."""
    paths = [default_cache_dir() / GPT2_RANKS_NAME, home_cache_dir() / GPT2_RANKS_NAME]
    return list(dict.fromkeys(paths))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_gpt2_ranks() -> Path | None:
    """The first ranks file whose sha256 is GPT-2's; a file with another hash is ignored, never trusted."""
    for path in gpt2_ranks_paths():
        if path.is_file() and sha256_of(path) == GPT2_RANKS_SHA256:
            return path
    return None


def read_gpt2_ranks() -> bytes | None:
    """The verified contents of the first good ranks file (read once, so what is hashed is what is used)."""
    for path in gpt2_ranks_paths():
        if path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == GPT2_RANKS_SHA256:
                return data
    return None


def _extract_ranks(sdist: Path) -> bytes:
    with tarfile.open(sdist) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("/" + GPT2_RANKS_MEMBER)), None)
        if member is None:
            raise SetupError(f"{sdist.name} holds no {GPT2_RANKS_MEMBER}")
        return tar.extractfile(member).read()


def fetch_gpt2_ranks(dest: Path | None = None) -> Path:
    """pip-download the sdist, extract the ranks file, check its hash and write it atomically to the cache."""
    dest = dest or default_cache_dir() / GPT2_RANKS_NAME
    if dest.is_file() and sha256_of(dest) == GPT2_RANKS_SHA256:
        return dest
    name, version = GPT2_RANKS_SDIST
    with tempfile.TemporaryDirectory() as tmp:
        base = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                "--no-binary", name, "-d", tmp, f"{name}=={version}"]
        # Without build isolation pip needs no second download for the metadata step; fall back to isolation
        # where setuptools is not installed.
        if subprocess.run(base + ["--no-build-isolation"], capture_output=True).returncode != 0:
            done = subprocess.run(base, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise SetupError(f"pip could not download {name}=={version} ({last}); on a machine with internet "
                                 f"run `{GPT2_FETCH_COMMAND}` and copy {dest} here")
        sdist = next(Path(tmp).glob("*.tar.gz"), None)
        if sdist is None:
            raise SetupError(f"pip download left no source archive of {name}=={version} in {tmp}")
        data = _extract_ranks(sdist)
    digest = hashlib.sha256(data).hexdigest()
    if digest != GPT2_RANKS_SHA256:
        raise SetupError(f"{GPT2_RANKS_MEMBER} from {name}=={version} has sha256 {digest}, expected "
                         f"{GPT2_RANKS_SHA256}; refusing to use it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp_path:
        tmp_path.write_bytes(data)
    return dest


# --- CLI -------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("python3 -m drift.bootstrap", __doc__)
    parser.add_argument("what", choices=("python", "tex", "gpt2"), help="what to check or provide")
    parser.add_argument("--no-install", action="store_true",
                        help="refuse instead of installing (also DRIFT_NO_INSTALL=1)")
    args = cli.parse(parser, argv)
    install = not (args.no_install or _no_install())
    try:
        if args.what == "python":
            ensure_requirements(install=install)
        elif args.what == "tex":
            ensure_tex(install=install)
        else:
            print(f"GPT-2 BPE ranks: {fetch_gpt2_ranks()} (sha256 verified)")
    except SetupError as exc:
        print(f"drift.bootstrap {args.what}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python3 -m drift.bootstrap"))
