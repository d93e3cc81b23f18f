"""Two reports' verdicts claim by claim (and each de-confounded variant), changed claims marked: the list a change
of runs or rules owes its readers. Each report is named by the sources.txt make_report.py wrote beside it.

    python -m experiments.compare_verdicts OLD/sources.txt paper/generated/sources.txt
    python -m experiments.compare_verdicts A.txt B.txt --names cpu_p40 cpu --out /tmp/verdicts.md
"""
import sys
from pathlib import Path

from drift import cli
from drift.config import ConfigError
from drift.report import compare as C
from drift.run.checkpoint import RunError

PROG = "compare_verdicts"


def main(argv=None) -> int:
    p = cli.parser(PROG, __doc__)
    p.add_argument("old", type=cli.path("a sources.txt"), help="the earlier report's sources.txt")
    p.add_argument("new", type=cli.path("a sources.txt"), help="the later report's sources.txt")
    p.add_argument("--names", nargs=2, metavar=("OLD", "NEW"), default=("old", "new"), help="column headings",
                   type=cli.matching(r"[^|\n]+", "a column heading", "a name without |, e.g. cpu_p40"))
    p.add_argument("--out", type=cli.path("a file"), help="also write the markdown table here")
    args = cli.parse(p, argv)
    try:
        text = C.markdown(C.compare_sources(args.old, args.new), *args.names)
    except (OSError, ValueError, RunError, ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
