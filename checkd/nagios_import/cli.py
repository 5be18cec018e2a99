"""`checkd import-nagios NAGIOS_CFG -o OUTDIR`: write the objects, print the report."""

from __future__ import annotations

import argparse

from checkd.nagios_import.emit import import_nagios


def main(args: argparse.Namespace) -> int:
    report = import_nagios(args.nagios_cfg, args.output, site=args.site)
    print(report.text(), end="")
    print(f"wrote {args.output} (check it with: checkd check-config --objects {args.output})")
    return 0
