#!/usr/bin/env python3
"""check_dummy: returns the state it is given, like monitoring-plugins' check_dummy.

`check_dummy STATE [TEXT]`: for tests, for placeholders, and as the cheapest
possible check when measuring what the poller itself costs.
"""

from __future__ import annotations

from checkd.pluginapi import CheckError, Outcome, Status, run_script


def check(args: list[str]) -> Outcome:
    if not args:
        raise CheckError("check_dummy: usage: check_dummy <integer state> [optional text]")
    try:
        status = Status(int(args[0]))
    except ValueError:
        raise CheckError(f"check_dummy: state must be 0-3, not {args[0]!r}") from None
    return Outcome(status, args[1] if len(args) > 1 else "")


if __name__ == "__main__":
    run_script(check)
