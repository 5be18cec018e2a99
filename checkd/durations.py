"""Durations as operators write them: `0.5s`, `90s`, `5m`, `1h30m`, `2d`, or seconds."""

from __future__ import annotations

import functools
import math
import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> float:
    """Seconds in `value`; ValueError with a usable message otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: write e.g. 90s, 5m, 1h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise ValueError(f"bad duration {value!r}: write e.g. 90s, 5m, 1h")
    if not math.isfinite(seconds):
        raise ValueError(f"bad duration {value!r}: not a finite number")
    if seconds < 0:
        raise ValueError(f"bad duration {value!r}: must not be negative")
    return seconds


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> float:
    """Remembered: 100,000 services of one config say `interval: 5m` 100,000 times."""
    text = value.strip().replace(" ", "")
    pos, seconds = 0, 0.0
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
        pos = len(text)
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"bad duration {value!r}: write e.g. 0.5s, 90s, 5m, 1h30m")
    return seconds


def format_duration(seconds: float) -> str:
    """How long, as a person writes it in a message: 0s, 45s, 12m, 1h, 3h05m, 2d, 2d04h.

    The one formatter for every duration people read (notifications, chat replies,
    the CLI, the web page). Whole seconds: "for 0s", never "for 0.054822s"; a
    negative span (clocks a little apart) reads as 0s."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        hours, minutes = divmod(s // 60, 60)
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(s // 3600, 24)
    return f"{days}d{hours:02d}h" if hours else f"{days}d"
