"""`python -m checkd` is the `checkd` command."""

from checkd.cli import main

raise SystemExit(main())
