"""The periods an availability report covers, as operators name them (Nagios avail.cgi's
today, lastweek, thismonth, ...), and the times `since`/`until` may be written as. Local
time, as time periods are; weeks begin on Monday (ISO 8601; Nagios' begin on Sunday).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable

from checkd.durations import parse_duration

DAY = 86400.0
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _midnight(ts: float) -> datetime.datetime:
    """Local midnight of the day `ts` falls on (naive: local wall-clock time)."""
    return datetime.datetime.fromtimestamp(ts).replace(hour=0, minute=0, second=0, microsecond=0)


def _month(d: datetime.datetime, back: int = 0) -> datetime.datetime:
    """The first day of d's month, `back` months earlier."""
    months = d.year * 12 + d.month - 1 - back
    return d.replace(year=months // 12, month=months % 12 + 1, day=1)


def week_start(ts: float) -> float:
    """Monday 00:00 local of the week `ts` falls in."""
    day = _midnight(ts)
    return (day - datetime.timedelta(days=day.weekday())).timestamp()


def weekday_at(week: float, day: str, at: str) -> float:
    """The moment `day` (monday..sunday) at `at` (HH:MM, local) in the week beginning at `week`."""
    hours, minutes = (int(x) for x in at.split(":"))
    d = datetime.datetime.fromtimestamp(week) + datetime.timedelta(days=WEEKDAYS.index(day))
    return d.replace(hour=hours, minute=minutes).timestamp()


def _ts(d: datetime.datetime) -> float:
    return d.timestamp()


# name -> (start, end) from now; an end after now is cut to now by `bounds`.
_PERIODS: dict[str, Callable[[float], tuple[float, float]]] = {
    "today": lambda now: (_ts(_midnight(now)), now),
    "yesterday": lambda now: (_ts(_midnight(now) - datetime.timedelta(days=1)), _ts(_midnight(now))),
    "thisweek": lambda now: (week_start(now), now),
    "lastweek": lambda now: (week_start(week_start(now) - DAY), week_start(now)),
    "thismonth": lambda now: (_ts(_month(_midnight(now))), now),
    "lastmonth": lambda now: (_ts(_month(_midnight(now), 1)), _ts(_month(_midnight(now)))),
    "thisyear": lambda now: (_ts(_midnight(now).replace(month=1, day=1)), now),
    "lastyear": lambda now: (_ts(_midnight(now).replace(year=_midnight(now).year - 1, month=1, day=1)),
                             _ts(_midnight(now).replace(month=1, day=1))),
    "last24hours": lambda now: (now - DAY, now),
    "last7days": lambda now: (now - 7 * DAY, now),
    "last31days": lambda now: (now - 31 * DAY, now),
}
PERIODS = tuple(_PERIODS)
DEFAULT = "last24hours"             # Nagios' default report period


def bounds(name: str, now: float) -> tuple[float, float]:
    """(since, until) of a named period; ValueError naming the known ones."""
    period = _PERIODS.get(name)
    if period is None:
        raise ValueError(f"period: one of {', '.join(PERIODS)}")
    return period(now)


def parse_time(text: str, now: float) -> float:
    """A Unix time, an ISO 8601 date or date and time (local time unless it names its
    offset: `2026-02-01`, `2026-02-01T08:00`, `2026-02-01T08:00+01:00`), or a duration
    before now (`7d`)."""
    text = text.strip()
    try:
        ts = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(ts):
            return ts
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        pass
    try:
        return now - parse_duration(text)
    except ValueError:
        raise ValueError(f"{text!r}: a Unix time, a date like 2026-02-01 or 2026-02-01T08:00 (local time), "
                         "or a duration before now like 7d") from None
