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
from pathlib import Path
from typing import NoReturn

from checkd.perfdata import PerfdataError, Range
from checkd.states import Status, worst

__all__ = ["ArgumentParser", "CheckError", "Outcome", "Perf", "Status", "checked", "evaluate", "failure",
           "format_output", "run_script", "worst"]


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
    # Nagios plugins name their service before the state ("LOAD OK - ...",
    # "FILE_AGE OK: ..."); label and sep let ours read the same.
    label: str = ""
    sep: str = ": "


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

    def print_help(self, file: object = None) -> None:
        # argparse would print to sys.stdout: in embedded mode, the poller's.
        raise CheckError(" ".join(self.format_usage().split()))


def format_output(outcome: Outcome) -> str:
    """`TEXT | perfdata` on the first line, long output after (Nagios plugin API)."""
    text = outcome.text.replace("|", "/").replace("\n", " ")
    head = f"{outcome.label} {outcome.status.name}" if outcome.label else outcome.status.name
    first = f"{head}{outcome.sep}{text}"
    if outcome.perfdata:
        first += " | " + " ".join(map(str, outcome.perfdata))
    long_output = outcome.long_output.replace("|", "/")
    return f"{first}\n{long_output}\n" if long_output else f"{first}\n"


CheckFunction = Callable[[list[str]], "Outcome | Awaitable[Outcome]"]


def failure(name: str, exc: BaseException) -> Outcome:
    """The UNKNOWN Outcome for a check that raised; one line, naming the plugin."""
    if isinstance(exc, CheckError):
        return Outcome(Status.UNKNOWN, str(exc))
    return Outcome(Status.UNKNOWN, f"plugin {name} failed: {type(exc).__name__}: {exc}")


def checked(result: object, name: str = "check") -> Outcome:
    """`result` if it is an Outcome; a plugin returning anything else is broken."""
    if not isinstance(result, Outcome):
        raise CheckError(f"plugin {name} failed: returned {type(result).__name__}, not Outcome")
    return result


def call(check: CheckFunction, args: list[str], name: str = "check") -> Outcome:
    """Run `check` to its Outcome in script mode; any failure is UNKNOWN, never a traceback."""
    try:
        result = check(args)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return checked(result, name)
    except Exception as e:  # the guard: a plugin always prints valid output
        return failure(name, e)


async def _await(aw: Awaitable[Outcome]) -> Outcome:
    return await aw


def run_script(check: CheckFunction) -> NoReturn:
    """Entry point for a plugin run as a script."""
    outcome = call(check, sys.argv[1:], Path(sys.argv[0]).stem)
    # Bytes, not text: the output must not depend on the locale's encoding,
    # so that script and embedded runs give byte-identical results.
    sys.stdout.flush()
    sys.stdout.buffer.write(format_output(outcome).encode())
    sys.stdout.buffer.flush()
    raise SystemExit(int(outcome.status))
