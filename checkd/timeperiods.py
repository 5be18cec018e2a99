"""When a time period is active, with Nagios semantics, for check and notification periods.

Times are the wall clock of the datetime given, which must carry a tzinfo:
checkd passes the system's local time (`datetime.now().astimezone()`), as
Nagios uses the local time zone of the machine it runs on.
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Mapping

from checkd.config.model import Ranges, TimePeriod

HORIZON_DAYS = 366  # next_active looks this far ahead; a period active later counts as never


def is_active(name: str | None, when: datetime.datetime, periods: Mapping[str, TimePeriod]) -> bool:
    """Whether period `name` covers `when`; no period (None) means 24x7."""
    if name is None:
        return True
    minute = _minute_of_day(when)
    return any(start <= minute < end for start, end in day_ranges(name, when.date(), periods))


def active_at(name: str | None, now: float, periods: Mapping[str, TimePeriod]) -> bool:
    """Whether `name` covers the epoch time `now` in the local time zone, as Nagios' periods do."""
    return name is None or is_active(name, datetime.datetime.fromtimestamp(now).astimezone(), periods)


def next_active(name: str | None, after: datetime.datetime, periods: Mapping[str, TimePeriod],
                horizon_days: int = HORIZON_DAYS) -> datetime.datetime | None:
    """The first moment at or after `after` when `name` is active, in `after`'s time zone.

    `after` itself when the period is active then; None when it is not active
    within `horizon_days`.
    """
    if name is None:
        return after
    minute = _minute_of_day(after)
    first_day = after.date()
    for offset in range(horizon_days + 1):
        day = first_day + datetime.timedelta(days=offset)
        for start, end in day_ranges(name, day, periods):
            if offset == 0 and end <= minute:
                continue
            if offset == 0 and start <= minute:
                return after
            return datetime.datetime.combine(day, datetime.time(start // 60, start % 60), tzinfo=after.tzinfo)
    return None


def next_valid_time(name: str | None, when: float, periods: Mapping[str, TimePeriod],
                    tz: datetime.tzinfo | None = None) -> float | None:
    """Nagios' get_next_valid_time on the epoch clock: `when` if `name` is active then,
    else the start of its next active range; None when it is not active within a year.

    `tz` is for tests; by default the system's local time zone, looked up again for the
    result, so a period that opens after a daylight saving change opens at its wall time.
    """
    after = datetime.datetime.fromtimestamp(when, tz) if tz else datetime.datetime.fromtimestamp(when).astimezone()
    found = next_active(name, after, periods)
    if found is None or found == after:
        return None if found is None else when
    # next_active keeps `after`'s UTC offset; the wall time it names is what counts.
    return found.replace(tzinfo=tz).timestamp() if tz else found.replace(tzinfo=None).timestamp()


def day_ranges(name: str, day: datetime.date, periods: Mapping[str, TimePeriod],
               _excluding: tuple[str, ...] = ()) -> Ranges:
    """The [start, end) minutes of `day` when `name` is active: exceptions applied, excludes subtracted."""
    period = periods.get(name)
    if period is None:
        raise KeyError(f"undefined timeperiod {name!r}")
    if name in _excluding:  # check-config refuses these; never loop on a hand-built mapping
        raise ValueError(f"cycle in exclude: {' -> '.join((*_excluding, name))}")
    ranges = _own_ranges(period, day)
    for other in period.exclude:
        if ranges:
            ranges = _subtract(ranges, day_ranges(other, day, periods, (*_excluding, name)))
    return ranges


def _own_ranges(period: TimePeriod, day: datetime.date) -> Ranges:
    """The day's ranges before excludes: the most specific matching exception, else the weekday's."""
    iso = day.isoformat()
    if iso in period.exceptions:
        return _union(period.exceptions[iso])
    matching = [ranges for first, last, ranges in period.date_ranges if first <= iso <= last]
    if matching:
        return _union(tuple(r for ranges in matching for r in ranges))
    yearly = period.yearly.get((day.month, day.day))
    if yearly is not None:
        return _union(yearly)
    if period.monthly:
        monthly = [ranges for key, ranges in period.monthly.items() if key in _month_keys(day)]
        if monthly:
            return _union(tuple(r for ranges in monthly for r in ranges))
    return _union(period.weekdays.get(day.weekday(), ()))


def _month_keys(day: datetime.date) -> tuple[tuple[int, int], ...]:
    """The `monthly` keys a day answers to: day N and day -N of its month, and the Nth and
    Nth-from-last of its weekday (the 3rd of December 2026, a Thursday: day 3, day -29,
    thursday 1, thursday -5)."""
    last = calendar.monthrange(day.year, day.month)[1]
    nth, from_end = (day.day - 1) // 7 + 1, -((last - day.day) // 7 + 1)
    return (7, day.day), (7, day.day - last - 1), (day.weekday(), nth), (day.weekday(), from_end)


def _union(ranges: Ranges) -> Ranges:
    """Sorted, with overlapping or touching ranges joined."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def _subtract(ranges: Ranges, minus: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    for start, end in ranges:
        for m_start, m_end in minus:
            if m_end <= start or m_start >= end:
                continue
            if m_start > start:
                out.append((start, m_start))
            start = max(start, m_end)
            if start >= end:
                break
        if start < end:
            out.append((start, end))
    return tuple(out)


def _minute_of_day(when: datetime.datetime) -> float:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("time periods need a time zone aware datetime: use datetime.now().astimezone()")
    return when.hour * 60 + when.minute + (when.second + when.microsecond / 1e6) / 60
