"""Nagios timeperiods -> checkd: weekday ranges, `exclude`, and the date exceptions
checkd has (one date, a date range, a month and day, `day N`, `monday N`); other forms
(`day 1 - 15`, `monday 3 february`, skip dates) are reported.
"""

from __future__ import annotations

import re
from typing import Any

from checkd.config.objects import WEEKDAYS, parse_exception_day, parse_ranges
from checkd.nagios_import.parse import Definition
from checkd.nagios_import.report import Report
from checkd.nagios_import.resolve import split_list

FIXED = {"timeperiod_name", "alias", "name", "use", "register", "exclude"}


def _ranges(value: str) -> str:
    """Nagios writes "no time" as 00:00-00:00; checkd as an empty string."""
    kept = [r for r in value.split(",") if r and not re.fullmatch(r"(\d+):(\d+)-\1:\2", r)]
    return ",".join(kept)


def convert_timeperiod(d: Definition, a: dict[str, str], report: Report) -> dict[str, Any] | None:
    name = a.get("timeperiod_name")
    if not name:
        report.add(*d.where(), "timeperiod without timeperiod_name; not carried over")
        return None
    out: dict[str, Any] = {"name": name}
    if "alias" in a:
        out["alias"] = a["alias"]
    exceptions: dict[str, str] = {}
    for key, value in a.items():
        if key in FIXED:
            continue
        ranges = _ranges(value)
        try:
            parse_ranges(ranges)
        except ValueError as e:
            report.add(*d.where(key), f"timeperiod {name!r} {key}: {e}; not carried over")
            continue
        if key in WEEKDAYS:
            out[key] = ranges
            continue
        try:
            parse_exception_day(key)
        except ValueError:
            report.add(*d.where(key), f"timeperiod {name!r} exception {key!r} {value}: checkd has only "
                       "YYYY-MM-DD, YYYY-MM-DD - YYYY-MM-DD, 'month day', 'day N' and 'weekday N' exceptions; "
                       "not carried over")
            continue
        exceptions[key] = ranges
    if exceptions:
        out["exceptions"] = exceptions
    if split_list(a.get("exclude")):
        out["exclude"] = split_list(a.get("exclude"))
    return out
