"""The command line (drift/cli.py): every option of every script is checked when the line is parsed, before anything
is read or written, with one line `PROG: error: --opt X: why; what to use` and exit 2; key=value overrides are
accepted anywhere on the line; Ctrl-C is one line.

Run: python -m pytest tests/test_cli.py
"""
import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from drift import cli

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p.stem for p in ROOT.glob("*.py"))
MODULES = ["drift.bootstrap", "drift.jobs", "drift.inspect.cli", "drift.run.integrity", "drift.run.export",
           "drift.run.info", "experiments.eval_size", "experiments.probe_study", "experiments.compare_verdicts"]


def _main(module: str):
    mod = importlib.import_module(module)
    return getattr(mod, "main", None) or mod._main


def call(module: str, argv: list[str], capsys) -> tuple[int, list[str]]:
    """(exit status, stderr lines) of module.main(argv), in process."""
    try:
        code = _main(module)(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err.strip().splitlines()


class _Parsed(Exception):
    pass


def parsed(module: str, argv: list[str] | None, monkeypatch) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parser a script's main builds and what it makes of argv (None: the parser only), stopping the script
    right after parsing."""
    seen = {}
    real = cli.parse

    def spy(parser, args=None):
        seen["parser"] = parser
        seen["args"] = None if argv is None else real(parser, args)
        raise _Parsed

    monkeypatch.setattr(cli, "parse", spy)
    with pytest.raises(_Parsed):
        _main(module)([] if argv is None else argv)
    monkeypatch.undo()
    return seen["parser"], seen["args"]


def test_every_script_is_covered():
    assert len(SCRIPTS) == 14 and "train" in SCRIPTS and "make_report" in SCRIPTS


# ---------------------------------------------------------------------------------------------------------------
# Every option with a value is checked by its type: a checker of drift/cli.py, or a fixed set of choices
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", SCRIPTS + MODULES)
def test_every_option_value_is_checked(module, monkeypatch):
    parser, _ = parsed(module, None, monkeypatch)
    parsers = [parser] + [sub for a in parser._actions if isinstance(a, argparse._SubParsersAction)
                          for sub in a.choices.values()]
    unchecked = []
    for p in parsers:
        for a in p._actions:
            if a.nargs == 0 or isinstance(a, argparse._SubParsersAction) or a.dest in ("overrides", "cmd"):
                continue  # flags; sub-commands; overrides (checked by drift.config); a command line to run
            if a.choices is None and getattr(a.type, "__module__", None) != "drift.cli":
                unchecked.append(a.option_strings[0] if a.option_strings else a.dest)
    assert not unchecked, f"{module}: options whose value nothing checks: {unchecked}"
    assert isinstance(parser, cli.Parser)


# ---------------------------------------------------------------------------------------------------------------
# Bad values: one line naming the option and the value, exit 2, nothing read or written
# ---------------------------------------------------------------------------------------------------------------

BAD = [  # (module, argv, start of the message after "PROG: error: "); "nowhere" does not exist: never read
    ("sgd_matched_valloss", ["nowhere", "--target", "nan"], "--target nan: must be a finite number > 0"),
    ("sgd_matched_valloss", ["nowhere", "--target", "-1"], "--target -1: must be a finite number > 0"),
    ("sgd_matched_valloss", ["nowhere", "--target", "inf"], "--target inf: must be a finite number > 0"),
    ("sgd_matched_valloss", ["nowhere", "--rel-tol", "-0.1"], "--rel-tol -0.1: must be a finite number in [0, 1]"),
    ("backbone_update_analysis", ["nowhere", "--lag", "0"], "--lag 0: must be a whole number in [1, "),
    ("backbone_update_analysis", ["nowhere", "--lag", "-2"], "--lag -2: must be a whole number in [1, "),
    ("backbone_update_analysis", ["nowhere", "--persist", "0"], "--persist 0: must be a whole number in [1, "),
    ("backbone_update_analysis", ["nowhere", "--early-step", "nan"], "--early-step nan: must be a finite number"),
    ("backbone_update_analysis", ["nowhere", "--scope", "trunk", "blk"], "--scope blk: must be trunk, block<l>"),
    ("trajectory_pca_uncentered", ["nowhere", "--window", "0"], "--window 0: must be a whole number in [2, "),
    ("trajectory_pca_uncentered", ["nowhere", "--window", "1"], "--window 1: must be a whole number in [2, "),
    ("trajectory_pca_uncentered", ["nowhere", "--ref-step", "-1"], "--ref-step -1: must be a whole number in [0, "),
    ("trajectory_pca_uncentered", ["nowhere", "--stride", "0"], "--stride 0: must be a whole number in [1, "),
    ("trajectory_pca_uncentered", ["nowhere", "--split-step", "0"], "--split-step 0: must be a whole number"),
    ("trajectory_pca_uncentered", ["nowhere", "--steps", "1", "x"], "--steps x: must be a whole number"),
    ("trajectory_nulls", ["nowhere", "--draws", "5"], "--draws 5: must be a whole number in [20, "),
    ("trajectory_nulls", ["nowhere", "--workers", "0"], "--workers 0: must be a whole number in [1, "),
    ("trajectory_nulls", ["nowhere", "--seed", "-1"], "--seed -1: must be a whole number in [0, 4294967295]"),
    ("backbone_fisher_analysis", ["nowhere", "--m", "0"], "--m 0: must be a whole number in [1, "),
    ("backbone_fisher_analysis", ["nowhere", "--k", "1e9"], "--k 1e9: must be a whole number in [1, "),
    ("backbone_fisher_analysis", ["nowhere", "--steps", "-5"], "--steps -5: must be a whole number in [0, "),
    ("backbone_gradient_analysis", ["nowhere", "--n-batches", "0"], "--n-batches 0: must be a whole number"),
    ("backbone_gradient_analysis", ["nowhere", "--n-random", "2.5"], "--n-random 2.5: must be a whole number"),
    ("backbone_gradient_analysis", ["nowhere", "--seed", "4294967296"], "--seed 4294967296: must be a whole"),
    ("train", ["--preset", "tiny", "--seed", "-1"], "--seed -1: must be a whole number in [0, 4294967295]"),
    ("train", ["--out", ""], "--out '': must be a run directory"),
    ("sgd_control", ["--seed", "x"], "--seed x: must be a whole number"),
    ("sgd_nesterov_run", ["--seed", "1.5"], "--seed 1.5: must be a whole number"),
    ("beta2_sweep", ["--beta2", "0.9", "1"], "--beta2 1: must be a finite number in [0, 1)"),
    ("beta2_sweep", ["--p-probe", "1.5"], "--p-probe 1.5: must be a finite number in [0, 1]"),
    ("reheat", ["nowhere", "--lrs", "0"], "--lrs 0: must be a finite number > 0"),
    ("reheat", ["nowhere", "--threshold", "2"], "--threshold 2: must be a finite number in [0, 1]"),
    ("reheat", ["nowhere", "--analyze-only", "--train-only"], "--train-only: not allowed with argument"),
    ("make_report", ["--out", ""], "--out '': must be a directory"),
    ("make_paper_figures", ["--only", "fig9"], "--only: invalid choice: 'fig9'"),
    ("drift.inspect.cli", ["nowhere", "--out", "o", "--window", "1"], "--window 1: must be a whole number"),
    ("drift.inspect.cli", ["nowhere", "--out", "o", "--draws", "19"], "--draws 19: must be a whole number"),
    ("drift.jobs", ["slot", "--threads", "0", "--", "true"], "--threads 0: must be a whole number in [1, "),
    ("drift.jobs", ["slot", "--gpus", "a,b", "--", "true"], "--gpus a,b: must be comma-separated GPU ids"),
]


@pytest.mark.parametrize("module, argv, message", BAD, ids=[f"{m}:{' '.join(a)}" for m, a, _ in BAD])
def test_bad_option_values_are_one_line_before_anything_is_read(module, argv, message, tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.chdir(tmp_path)
    code, err = call(module, argv, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(_main(module).__globals__.get("PROG", module)), err[0]
    assert err[0].split(": error: ", 1)[1].startswith(message), err[0]
    assert not list(tmp_path.iterdir())  # nothing written (and "nowhere" was never looked at)


def test_argparse_own_errors_are_one_line(capsys):
    for argv, message in ((["x", "--nope"], "unrecognized arguments: --nope"),
                          (["x", "--draws"], "--draws: expected one"),
                          ([], "the following arguments are required: run_dir")):
        code, err = call("trajectory_nulls", argv, capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith(f"trajectory_nulls.py: error: {message}"), err


def test_the_testers_cases_through_the_real_entry_points(tiny_run_copy, tmp_path):
    """The hostile tester's commands, as typed: before, --window 0 raised IndexError and --lag 0 / --target nan
    were accepted and wrote their analysis."""
    run, before = tiny_run_copy, sorted(tiny_run_copy.rglob("*"))
    for argv, message in ((["trajectory_pca_uncentered.py", str(run), "--window", "0"], "--window 0: "),
                          (["backbone_update_analysis.py", str(run), "--lag", "0"], "--lag 0: "),
                          (["sgd_matched_valloss.py", str(run), "--target", "nan"], "--target nan: ")):
        out = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
        err = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(err) == 1 and message in err[0], out.stderr
    assert sorted(run.rglob("*")) == before


def test_checkers_accept_what_they_should():
    assert cli.whole(0)("1e3") == 1000 and cli.whole(0)("1_000") == 1000 and cli.whole(-5, 5)("-5") == -5
    assert cli.number(0, 1)("1") == 1.0 and cli.number(0, 1, hi_open=True)("0.999") == 0.999
    assert cli.SCOPE("block12+ln") == "block12+ln" and cli.SEED("4294967295") == 4294967295
    for check, raw in ((cli.whole(0), "1.5"), (cli.whole(0), "1e400"), (cli.number(0, 1), "nan"),
                       (cli.number(0, 1, lo_open=True), "0"), (cli.SCOPE, "block"), (cli.path(), "a\0b")):
        with pytest.raises(argparse.ArgumentTypeError):
            check(raw)


# ---------------------------------------------------------------------------------------------------------------
# key=value overrides anywhere on the line
# ---------------------------------------------------------------------------------------------------------------

def test_split_overrides_keeps_option_values():
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--runs", nargs="+")
    p.add_argument("--no-progress", action="store_true")
    argv = ["--out", "a=b", "lr=0.1", "--runs", "A", "C", "total_steps=3", "--no-progress", "seed=2", "--", "x=1"]
    rest, overrides = cli.split_overrides(p, argv)
    assert overrides == ["lr=0.1", "total_steps=3", "seed=2"]
    assert rest == ["--out", "a=b", "--runs", "A", "C", "--no-progress", "--", "x=1"]
    assert cli.split_overrides(p, ["--ou", "x=y", "k=v"]) == (["--ou", "x=y"], ["k=v"])  # an abbreviated option


OVERRIDE_LINES = [  # before, each was refused (an unrecognized argument, or taken as a --runs / --beta2 value)
    ("train", ["--out", "runs/x", "lr=0.1", "--preset", "tiny", "total_steps=3"]),
    ("sgd_control", ["--preset", "tiny", "lr=0.1", "--runs", "A", "total_steps=3"]),
    ("sgd_nesterov_run", ["lr=0.1", "--preset", "tiny", "total_steps=3", "--no-progress"]),
    ("beta2_sweep", ["--beta2", "0.9", "lr=0.1", "--preset", "tiny", "total_steps=3"]),
    ("reheat", ["runs/x", "lr=0.1", "--lrs", "1e-3", "total_steps=3", "--no-figure"]),
]


@pytest.mark.parametrize("module, argv", OVERRIDE_LINES, ids=[m for m, _ in OVERRIDE_LINES])
def test_overrides_anywhere_on_the_line(module, argv, monkeypatch):
    _, args = parsed(module, argv, monkeypatch)
    assert args.overrides == ["lr=0.1", "total_steps=3"]


def test_overrides_after_options_train_the_run(tmp_path):
    import train
    from drift.run import checkpoint as ck
    out = tmp_path / "x"
    assert train.main(["--out", str(out), "lr=0.1", "--preset", "tiny", "total_steps=3", "--no-progress"]) == 0
    t = ck.read_json(out / "run.json")["config"]["train"]
    assert (t["lr"], t["total_steps"]) == (0.1, 3)


# ---------------------------------------------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------------------------------------------

def test_ctrl_c_is_one_line(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert cli.run(interrupted, "x.py", "rerun it") == 130
    assert capsys.readouterr().err == "x.py: interrupted (Ctrl-C); rerun it\n"
    assert cli.run(lambda: 0, "x.py") == 0
