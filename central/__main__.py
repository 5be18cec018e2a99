"""`python3 -m central ARGS`: what `checkd ARGS` runs for `checkd central` (checkd/cli.py
execs it, so that the checkd package never imports central)."""

import sys

from central.main import main
from checkd.cli import parse, run

args = parse(sys.argv[1:])
if args.command != "central":
    raise SystemExit(f"python3 -m central runs `checkd central`, not `checkd {args.command}`")
raise SystemExit(run(main, args))
