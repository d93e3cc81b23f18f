"""`python -m drift.inspect CKPT_DIR --out OUT_DIR`: see drift/inspect/cli.py."""
import sys

from drift import cli
from drift.inspect.cli import PROG, main

sys.exit(cli.run(main, PROG))
