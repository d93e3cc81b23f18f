"""The command line every script shares: errors in one line, option values checked before anything runs,
key=value overrides anywhere on the line, Ctrl-C as one line.

    p = cli.parser(PROG, __doc__)
    p.add_argument("--lag", type=cli.whole(1, use="a lag in steps, e.g. the run's ckpt_every"))
    args = cli.parse(p, argv)      # `PROG: error: --lag 0: must be a whole number >= 1; use a lag ...`, exit 2
    sys.exit(cli.run(main, PROG))  # Ctrl-C: `PROG: interrupted (Ctrl-C)`, exit 130, no traceback

argparse prints a usage block before its message; here the message is the one line, in the form
`--option VALUE: why; what to use`. Every value is checked by its option's type when the line is parsed, so a bad
value stops a script before it reads or writes anything.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from typing import Callable

from drift.config import MAX_STEPS, PRESETS, SEED_MAX

# A config override: a field name, "=", anything (the value is checked by drift.config).
_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# argparse's "argument --lag: 0: must be ...": the option, then a value our checkers put before their reason.
_CHECKED = re.compile(r"^argument (\S+): (\S+): ")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str):
        message = " ".join(message.split())
        checked = _CHECKED.match(message)
        if checked:  # "argument --lag: 0: why" -> "--lag 0: why"
            message = f"{checked.group(1)} {checked.group(2)}: {message[checked.end():]}"
        else:
            message = re.sub(r"^argument (\S+): ", r"\1: ", message)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser(prog: str, doc: str | None, **kwargs) -> Parser:
    return Parser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# Checked option types: each parses one value and raises with why it is wrong and what to use instead
# --------------------------------------------------------------------------------------------------------------

def _shown(raw: str) -> str:
    return raw if raw and not any(c.isspace() for c in raw) else repr(raw)


def _refuse(raw: str, what: str, use: str):
    raise argparse.ArgumentTypeError(f"{_shown(raw)}: must be {what}" + (f"; {use}" if use else ""))


def _as_int(raw: str) -> int | None:
    """int of "12", "1_000" or "1e3"; None when raw is not a whole number."""
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        value = float(raw)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


def whole(lo: int, hi: int | None = None, use: str = "") -> Callable[[str], int]:
    """A whole number in [lo, hi] (hi None: no upper bound)."""
    what = f"a whole number >= {lo}" if hi is None else f"a whole number in [{lo}, {hi}]"

    def check(raw: str) -> int:
        value = _as_int(raw)
        if value is None or value < lo or (hi is not None and value > hi):
            _refuse(raw, what, use)
        return value
    check.__name__ = "whole number"
    return check


def number(lo: float | None = None, hi: float | None = None, use: str = "", lo_open: bool = False,
           hi_open: bool = False) -> Callable[[str], float]:
    """A finite number in the interval (lo, hi), each end closed unless *_open (None: unbounded on that side)."""
    if lo is not None and hi is not None:
        what = f"a finite number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        what = f"a finite number {'>' if lo_open else '>='} {lo:g}"
    elif hi is not None:
        what = f"a finite number {'<' if hi_open else '<='} {hi:g}"
    else:
        what = "a finite number"

    def check(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (lo is not None and (value < lo or (lo_open and value == lo))) or \
                (hi is not None and (value > hi or (hi_open and value == hi))):
            _refuse(raw, what, use)
        return value
    check.__name__ = "number"
    return check


def matching(pattern: str, what: str, use: str = "") -> Callable[[str], str]:
    """A string matching the regular expression `pattern` in full."""
    compiled = re.compile(pattern)

    def check(raw: str) -> str:
        if not compiled.fullmatch(raw):
            _refuse(raw, what, use)
        return raw
    check.__name__ = "string"
    return check


def regex(names, use: str = "") -> Callable[[str], str]:
    """One of `names`, or a regular expression that compiles."""
    def check(raw: str) -> str:
        if raw not in names:
            try:
                re.compile(raw)
            except (re.error, RecursionError, OverflowError) as e:
                _refuse(raw, f"one of {', '.join(names)} or a valid regular expression ({e})", use)
        return raw
    check.__name__ = "pattern"
    return check


def path(what: str = "a path") -> Callable[[str], str]:
    """A non-empty path without NUL bytes (the OS refuses those with a ValueError deep inside the first open)."""
    def check(raw: str) -> str:
        if not raw or "\0" in raw:
            _refuse(raw, f"{what} (non-empty, no NUL bytes)", "")
        return raw
    check.__name__ = "path"
    return check


# The options several scripts share. Counts of draws, batches and directions stop at MAX_DRAWS: far more than any
# analysis here uses (hundreds), few enough that a typo does not start a job of days.
MAX_DRAWS = 100_000
SEED = whole(0, SEED_MAX, "seeds are unsigned 32-bit integers, e.g. 42")
STEP = whole(0, MAX_STEPS, "a checkpoint step of the run")
SCOPE = matching(r"trunk|block\d+(\+ln)?", "trunk, block<l> or block<l>+ln", "e.g. block0")
WINDOW = whole(2, MAX_DRAWS, "a window of at least 2 checkpoints, e.g. 10")
DRAWS = whole(20, MAX_DRAWS, "a 95% band needs at least 20 draws, e.g. 200")
WORKERS = whole(1, 1024, "a number of processes, e.g. 2")


# --------------------------------------------------------------------------------------------------------------
# Config overrides anywhere on the line
# --------------------------------------------------------------------------------------------------------------

def add_config_args(parser: argparse.ArgumentParser, default_preset: str | None = "cpu") -> None:
    """The CLI shared by every training script: --preset, --seed, and key=value overrides (anywhere on the line,
    with `parse`). default_preset=None leaves --preset None when it is not given (train.py: so --resume can tell a
    given --preset from the default; it then means cpu)."""
    parser.add_argument("--preset", default=default_preset, choices=sorted(PRESETS),
                        help=f"named hyper-parameter set (default: {default_preset or 'cpu'})")
    parser.add_argument("--seed", type=SEED, default=None, help="run seed (default: the preset's, 42)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override any ModelConfig/TrainConfig field, e.g. total_steps=200 lr=3e-4 (anywhere "
                             "on the line)")


def _takes_one_value(parser: argparse.ArgumentParser, token: str) -> bool:
    """Whether `token` is an option (or a unique prefix of a long option, as argparse allows) whose next token is
    its single value."""
    if not token.startswith("-") or "=" in token:
        return False
    actions = parser._option_string_actions  # noqa: SLF001 (argparse's public API has no lookup)
    action = actions.get(token)
    if action is None and token.startswith("--"):
        found = {a for name, a in actions.items() if name.startswith(token)}
        action = found.pop() if len(found) == 1 else None
    return action is not None and action.nargs is None  # store / append: exactly one value follows


def split_overrides(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """(argv without the key=value overrides, the overrides in order). A token that is the value of a one-value
    option (`--out a=b`) stays with its option; after `--` nothing is taken."""
    rest, overrides, value_next = [], [], False
    for i, token in enumerate(argv):
        if token == "--":
            rest += argv[i:]
            break
        if not value_next and _OVERRIDE.match(token):
            overrides.append(token)
        else:
            rest.append(token)
        value_next = not value_next and _takes_one_value(parser, token)
    return rest, overrides


def parse(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args, with key=value tokens accepted anywhere (collected in args.overrides) when the parser has an
    `overrides` positional: after an option with several values (`--runs A C lr=0.1`) argparse would otherwise
    take them as values, and after any option as unrecognized."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.dest == "overrides" for a in parser._actions):  # noqa: SLF001
        return parser.parse_args(argv)
    rest, overrides = split_overrides(parser, argv)
    args = parser.parse_args(rest)
    args.overrides = overrides + list(args.overrides or [])
    return args


# --------------------------------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------------------------------

INTERRUPTED = 130  # the shell's status for a process ended by SIGINT


def interrupted(prog: str, hint: str = "") -> int:
    print(f"{prog}: interrupted (Ctrl-C)" + (f"; {hint}" if hint else ""), file=sys.stderr)
    return INTERRUPTED


def run(main: Callable[[], int], prog: str, hint: str = "") -> int:
    """main(), with Ctrl-C reported as one line (every file is written atomically, so none is left half written)."""
    try:
        return main()
    except KeyboardInterrupt:
        return interrupted(prog, hint)
