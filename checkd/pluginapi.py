"""The API checkd's own Python plugins are written against.

A plugin module defines `check(args) -> Outcome` (or `async def check`) and
ends with `if __name__ == "__main__": run_script(check)`. The same module then
runs as a script (Nagios plugin API: text on stdout, exit code) and embedded
in the poller, where checkd.run.embedded calls `check` directly. Both paths
format through `format_output`, so they give the same result.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

from checkd.perfdata import PerfdataError, Range
from checkd.states import Status, worst

__all__ = ["ArgumentParser", "CheckError", "Outcome", "Perf", "Status", "evaluate", "format_output",
           "run_script", "worst"]


class CheckError(Exception):
    """The check could not be done (bad arguments, missing file): UNKNOWN with this text."""


@dataclasses.dataclass(frozen=True, slots=True)
class Perf:
    label: str
    value: float
    uom: str = ""
    warn: str | None = None
    crit: str | None = None
    min: float | None = None
    max: float | None = None

    def __str__(self) -> str:
        label = self.label.replace("'", "''")
        if any(c in label for c in " '=") or not label:
            label = f"'{label}'"
        parts = [f"{_num(self.value)}{self.uom}", self.warn or "", self.crit or "",
                 _num(self.min), _num(self.max)]
        while parts and parts[-1] == "":
            parts.pop()
        return f"{label}={';'.join(parts)}"


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    text: str
    perfdata: Sequence[Perf] = ()
    long_output: str = ""


def evaluate(value: float, warn: str | None, crit: str | None) -> Status:
    """Nagios threshold semantics: CRITICAL if outside crit, WARNING if outside warn."""
    try:
        if crit and Range.parse(crit).alerts(value):
            return Status.CRITICAL
        if warn and Range.parse(warn).alerts(value):
            return Status.WARNING
    except PerfdataError as e:
        raise CheckError(f"bad threshold: {e}") from None
    return Status.OK


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises CheckError instead of exiting: an embedded plugin
    with bad arguments must become UNKNOWN, not stop the poller."""

    def error(self, message: str) -> NoReturn:
        raise CheckError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise CheckError(message or self.format_usage().strip())


def format_output(outcome: Outcome) -> str:
    """`TEXT | perfdata` on the first line, long output after (Nagios plugin API)."""
    text = outcome.text.replace("|", "/").replace("\n", " ")
    first = f"{outcome.status.name}: {text}"
    if outcome.perfdata:
        first += " | " + " ".join(map(str, outcome.perfdata))
    long_output = outcome.long_output.replace("|", "/")
    return f"{first}\n{long_output}\n" if long_output else f"{first}\n"


CheckFunction = Callable[[list[str]], "Outcome | Awaitable[Outcome]"]


def call(check: CheckFunction, args: list[str]) -> Outcome:
    """Run `check` to its Outcome in script mode; any failure is UNKNOWN, never a traceback."""
    try:
        result = check(args)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        if not isinstance(result, Outcome):
            raise CheckError(f"plugin returned {type(result).__name__}, not Outcome")
        return result
    except CheckError as e:
        return Outcome(Status.UNKNOWN, str(e))
    except Exception as e:  # the guard: a plugin always prints valid output
        return Outcome(Status.UNKNOWN, f"plugin failed: {type(e).__name__}: {e}")


async def _await(aw: Awaitable[Outcome]) -> Outcome:
    return await aw


def run_script(check: CheckFunction) -> NoReturn:
    """Entry point for a plugin run as a script."""
    outcome = call(check, sys.argv[1:])
    sys.stdout.write(format_output(outcome))
    sys.stdout.flush()
    raise SystemExit(int(outcome.status))
