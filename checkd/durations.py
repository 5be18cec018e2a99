"""Durations as operators write them: `0.5s`, `90s`, `5m`, `1h30m`, `2d`, or seconds."""

from __future__ import annotations

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
    else:
        raise ValueError(f"bad duration {value!r}: write e.g. 90s, 5m, 1h")
    if seconds < 0:
        raise ValueError(f"bad duration {value!r}: must not be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form for messages: 45s, 12m, 3h05m, 2d04h."""
    s = int(seconds)
    if s < 60:
        return f"{seconds:.0f}s" if seconds >= 1 or seconds == 0 else f"{seconds:g}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
