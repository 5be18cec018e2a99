"""The limits every operator input is held to, whichever way it came (HTTP API, web
form, Jabber, Livestatus, a poller's operator calls): finite numbers, times and
spans within range, text within its size. Each check raises ValueError (TooLong for
a size) naming the field and the limit, before anything is changed (docs/security-input.md)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from checkd.plugin_output import MAX_LONG_OUTPUT_CHARS, MAX_OUTPUT_BYTES, MAX_TEXT_CHARS

MAX_COMMENT = 2000              # characters: a comment, an acknowledgement's, a downtime's
MAX_NAME = 200                  # characters: an author, engineer, module, revision
MAX_CHECK_NAME = 4096           # a host or service name: looked up in the configuration, never stored as given
MAX_SPAN = 366 * 86400.0        # a mute, a downtime window: longer is a typo (a recurring one repeats)
INT64 = 2**63 - 1               # an ID or seq: what the database's INTEGER holds
MAX_TIME = 1e11                 # Unix time (year 5138): later is a typo or an attack, and beyond what clocks show
# A result's text, as a poller keeps it (checkd/plugin_output.py): whoever posts it, no more is stored.
MAX_OUTPUT = MAX_TEXT_CHARS
MAX_LONG_OUTPUT = MAX_LONG_OUTPUT_CHARS
MAX_PERFDATA = MAX_OUTPUT_BYTES


class TooLong(ValueError):
    """Text over its size cap (HTTP 413)."""


def finite(v: Any, key: str) -> float:
    if type(v) not in (int, float) or not math.isfinite(v):
        raise ValueError(f"{key}: expected a finite number")
    return float(v)


def unix_time(v: Any, key: str) -> float:
    """A point in time: finite, after 1970 and before MAX_TIME."""
    t = finite(v, key) if type(v) is not str else math.nan
    if not 0 < t < MAX_TIME:
        raise ValueError(f"{key}: expected a Unix time (seconds since 1970, before {MAX_TIME:.0e})")
    return t


def span(seconds: float, key: str, limit: float = MAX_SPAN) -> float:
    """A duration in seconds: finite, above 0 and at most `limit`."""
    if not 0 < finite(seconds, key) <= limit:
        raise ValueError(f"{key}: from a second to {_days(limit)}")
    return float(seconds)


def text(v: Any, key: str, limit: int) -> str:
    if type(v) is not str:
        raise ValueError(f"{key}: expected a string")
    if len(v) > limit:
        raise TooLong(f"{key}: at most {limit:,} characters (got {len(v):,})")
    return v


def checked(check: Callable[..., Any], value: Any, *args: Any) -> Any:
    """A check above as the OpError an operator sees (413: text over its cap), for the
    operations behind chat, web forms and the APIs."""
    from checkd.actions import OpError
    try:
        return check(value, *args)
    except ValueError as e:
        raise OpError(str(e), 413 if isinstance(e, TooLong) else 400) from None


def _days(seconds: float) -> str:
    if seconds == MAX_SPAN:
        return "a year"
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds:g}s"
