"""`downtimes:` in the object files: downtimes that come back, as Icinga 2's
ScheduledDowntime does. Each names what it covers (hosts or patterns, host groups,
sites, services) and when: its own `ranges` (the keys of a time period: weekdays,
dates, `monday 1` for the first Monday of the month, `day -1` for the last day) or a
`period:` by name; `duration:` makes each window's downtime flexible. The same shape
comes through the API (`"recurring": {...}`), checked by `from_mapping`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checkd.config import fields as f
from checkd.config.errors import Problems
from checkd.config.model import Objects, RecurringDowntime, TimePeriod, Where
from checkd.config.objects import WEEKDAYS, ExceptionDays, parse_exception_day, parse_ranges
from checkd.config.scope import KEYS as SCOPE_KEYS, CheckScope, ScopeError
from checkd.config.yamlsource import Node
from checkd.durations import parse_duration

KEYS = {"name": f.text, "ranges": f.raw, "period": f.text, "duration": f.positive_duration, "comment": f.text,
        "author": f.text, **{k: f.names for k in SCOPE_KEYS}}
MAX_DURATION = 31 * 86400.0


def period_from_ranges(name: str, ranges: Mapping[Any, Any]) -> TimePeriod:
    """`{sunday: "02:00-04:00", "monday 1": "01:00-03:00", "2026-12-24": "00:00-24:00"}`
    as a time period; ValueError naming the key that is wrong."""
    if not isinstance(ranges, Mapping) or not ranges:
        raise ValueError("ranges: expected a mapping of days to times, e.g. {sunday: \"02:00-04:00\"}")
    weekdays: dict[int, Any] = {}
    days = ExceptionDays()
    for key, value in ranges.items():
        try:
            times = parse_ranges(str(value or ""))
            day = str(key).strip().lower()
            if day in WEEKDAYS:
                weekdays[WEEKDAYS.index(day)] = times
                continue
            kind, when = parse_exception_day(key)
        except ValueError as e:
            raise ValueError(f"ranges: {key}: {e}") from None
        days.add(kind, when, times)
    return days.period(name, "", weekdays, (), Where("?", 0))


def from_mapping(d: Mapping[str, Any], objs: Objects, where: Where = Where("api", 0)) -> RecurringDowntime:
    """An API body's `recurring` (with the request's scope keys): ValueError saying what is wrong."""
    name = d.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValueError("name: a name for the schedule (at most 100 characters)")
    duration = d.get("duration")
    if duration is not None:
        duration = parse_duration(duration)
        if not 0 < duration <= MAX_DURATION:
            raise ValueError("duration: from a second to 31 days")
    period = _period(name, d.get("ranges"), d.get("period"), objs)
    scope = CheckScope.parse(d)
    try:
        scope.targets(objs)
    except ScopeError as e:
        raise ValueError(str(e)) from None
    for key in ("comment", "author"):
        if not isinstance(d.get(key, ""), str):
            raise ValueError(f"{key}: expected a string")
    return RecurringDowntime(name.strip(), scope, period, d.get("comment", "")[:2000], d.get("author") or "schedule",
                             duration, where)


def _period(name: str, ranges: Any, period: Any, objs: Objects) -> TimePeriod:
    if (ranges is None) == (period is None):
        raise ValueError("give ranges (e.g. {sunday: \"02:00-04:00\"}) or period (a timeperiod's name)")
    if ranges is not None:
        return period_from_ranges(name, ranges)
    if period not in objs.timeperiods:
        raise ValueError(f"period: no timeperiod {period!r}")
    return objs.timeperiods[period]


def read(node: Node, objs: Objects, problems: Problems) -> RecurringDowntime | None:
    """One `downtimes:` entry, every mistake reported at its line."""
    d = f.convert(node, KEYS, problems, "downtime")
    if not d.get("name"):
        problems.add(node.file, node.line, "downtime without a name: add `name: ...`")
        return None
    try:
        return from_mapping(d, objs, Where(node.file, node.line))
    except (ValueError, ScopeError) as e:
        key = str(e).split(":", 1)[0]
        problems.add(*(node.where_of(key) if key in KEYS else (node.file, node.line)), f"downtime {d['name']}: {e}")
        return None
