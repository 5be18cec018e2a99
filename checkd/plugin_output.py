"""From what a plugin did (exit code, bytes on stdout/stderr) to a PluginOutput.

Every runner (exec, embedded, ssh) produces a RawRun; this module is the one
place that turns it into a state, text, long output and perfdata, following
the Nagios plugin guidelines, and the one place that makes garbage harmless.
"""

from __future__ import annotations

import dataclasses
import signal as _signal

from checkd.states import Status

# Nagios 4 keeps 8 KiB of output; we keep more but never an unbounded amount.
MAX_OUTPUT_BYTES = 64 * 1024
MAX_LONG_OUTPUT_CHARS = MAX_OUTPUT_BYTES
MAX_TEXT_CHARS = 4096  # the first line: what fits a subject line and a phone screen


@dataclasses.dataclass(frozen=True, slots=True)
class RawRun:
    """What running a check produced, before any interpretation."""

    exit_code: int | None = None      # None when killed by a signal or never started
    signal: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    timeout: float = 0.0
    truncated: bool = False           # output beyond MAX_OUTPUT_BYTES was dropped
    error: str | None = None          # could not run at all (not found, ssh down, ...)
    ended: float = 0.0                # wall clock when it ended, stamped by the exec worker (0: not)


@dataclasses.dataclass(frozen=True, slots=True)
class PluginOutput:
    status: Status
    output: str          # first line, without perfdata
    long_output: str     # further lines, without perfdata
    perfdata: str        # all perfdata, joined by spaces


NUL_SHOWN = "\ufffd"           # what a NUL in text to store becomes (no store or page can hold it)


def no_nul(text: str) -> str:
    """`text` without NUL characters (PostgreSQL's text cannot hold them, pages show nothing)."""
    return text.replace("\x00", NUL_SHOWN) if "\x00" in text else text


def _text(data: bytes) -> str:
    # Invalid UTF-8 must not lose the rest of the line; NULs would break storage.
    return no_nul(data.decode("utf-8", errors="replace"))


def split_output(text: str) -> tuple[str, str, str]:
    """Nagios' split: `TEXT | PERF` first line, long output, `| more perf` after."""
    lines = text.replace("\r\n", "\n").split("\n")
    first, _, perf = lines[0].partition("|")
    long_lines, more_perf, in_perf = [], [], False
    for line in lines[1:]:
        if in_perf:
            more_perf.append(line)
            continue
        head, bar, tail = line.partition("|")
        long_lines.append(head)
        if bar:
            in_perf = True
            more_perf.append(tail)
    long_output = "\n".join(long_lines).strip("\n")
    perfdata = " ".join(p.strip() for p in [perf, *more_perf] if p.strip())
    return first.strip(), long_output, perfdata


def _signal_name(num: int) -> str:
    try:
        return _signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def interpret(raw: RawRun) -> PluginOutput:
    """The state and text a user sees for one run, including every failure mode."""
    if raw.error is not None:
        return PluginOutput(Status.UNKNOWN, f"(check could not run: {raw.error})", "", "")
    if raw.timed_out:
        return PluginOutput(Status.UNKNOWN, f"(check timed out after {raw.timeout:g}s)", "", "")
    if raw.signal is not None:
        text, long_output, perf = split_output(_text(raw.stdout))
        msg = f"(plugin killed by {_signal_name(raw.signal)})"
        return PluginOutput(Status.UNKNOWN, f"{msg} {text}".strip(), long_output, perf)

    code = raw.exit_code if raw.exit_code is not None else 3
    text, long_output, perf = split_output(_text(raw.stdout))
    status = Status.from_exit_code(code)
    if code != status:
        hint = {126: " - plugin may not be executable",
                127: " - plugin may be missing"}.get(code, "")
        text = f"(return code of {code} is out of bounds{hint}) {text}".strip()
    if not text and not long_output:
        err = _text(raw.stderr).strip()
        text = f"(no output on stdout) stderr: {err.splitlines()[0]}" if err else "(no output returned from plugin)"
    if raw.truncated:
        long_output = (long_output + f"\n(output truncated at {MAX_OUTPUT_BYTES} bytes)").lstrip("\n")
    return PluginOutput(status, text[:MAX_TEXT_CHARS], long_output[:MAX_LONG_OUTPUT_CHARS], perf)
