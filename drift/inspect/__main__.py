"""`python -m drift.inspect CKPT_DIR --out OUT_DIR`: see drift/inspect/cli.py."""
import sys

from drift.inspect.cli import main

sys.exit(main())
