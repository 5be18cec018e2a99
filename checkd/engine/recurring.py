"""Recurring downtimes made real (Icinga 2's ScheduledDowntime): each window of a
schedule becomes downtimes for what its scope covers at that moment, made a day
ahead, one series per window (`NAME@START`). Central's ticker runs this; pollers get
the occurrences with central's decisions, so a poller alone for a day still honours
them. Once a window is made, cancelling it or changing the schedule does not make it
again (meta keeps the last window made per schedule).
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable, Mapping

from checkd.config.model import Objects, RecurringDowntime, TimePeriod
from checkd.config.recurring import from_mapping
from checkd.config.scope import ScopeError
from checkd.engine.db import Op
from checkd.engine.notify.downtimes import DowntimeNotices
from checkd.engine.notify.notifier import Plan
from checkd.engine.store import SET_META_ROW, Store
from checkd.timeperiods import day_ranges

log = logging.getLogger(__name__)

LOOKAHEAD = 86400.0             # windows starting within this are made now
EVERY = 30.0                    # seconds between looks (windows are made a day ahead)
UPSERT = "INSERT OR REPLACE INTO downtime_schedules VALUES (?,?)"
DELETE = "DELETE FROM downtime_schedules WHERE name = ?"


def mark_key(name: str) -> str:
    return f"recurring:{name}"


def windows(period: TimePeriod, periods: Mapping[str, TimePeriod], start: float, end: float,
            tz: datetime.tzinfo | None = None) -> list[tuple[float, float]]:
    """The stretches when `period` is active (ranges that meet at midnight joined) that
    overlap [start, end), in local time (as time periods are), oldest first."""
    key = f"\0recurring:{period.name}"
    known = {**periods, key: period}
    first = datetime.datetime.fromtimestamp(start, tz).date() - datetime.timedelta(days=1)
    last = datetime.datetime.fromtimestamp(end, tz).date() + datetime.timedelta(days=1)
    out: list[tuple[float, float]] = []
    day = first
    while day <= last:
        for a, b in day_ranges(key, day, known):
            ts_a, ts_b = _at(day, a, tz), _at(day, b, tz)
            if out and out[-1][1] == ts_a:
                out[-1] = (out[-1][0], ts_b)
            else:
                out.append((ts_a, ts_b))
        day += datetime.timedelta(days=1)
    return [(a, b) for a, b in out if b > start and a < end]


def _at(day: datetime.date, minute: int, tz: datetime.tzinfo | None) -> float:
    when = datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(minutes=minute)
    return when.replace(tzinfo=tz).timestamp() if tz else when.timestamp()


class Recurring:
    """The schedules of the configuration (`downtimes:`) and those made through the API
    (the downtime_schedules table), made real by `tick`."""

    def __init__(self, store: Store, notices: DowntimeNotices, objects: Callable[[], Objects]):
        self.store, self.notices, self.objects = store, notices, objects
        self._looked = float("-inf")
        self._parsed: dict[str, tuple[str, RecurringDowntime]] = {}     # API schedules: name -> (spec, parsed)
        self._complained: set[str] = set()

    def schedules(self) -> dict[str, RecurringDowntime]:
        """Every schedule in force: the configuration's, then the API's (a name in both: the configuration's)."""
        objs = self.objects()
        out = dict(objs.downtimes)
        for name, spec in self.store.schedules.items():
            if name in out:
                continue
            cached = self._parsed.get(name)
            if cached is None or cached[0] != spec:
                try:
                    cached = self._parsed[name] = (spec, from_mapping(json.loads(spec), objs))
                except (ValueError, ScopeError) as e:
                    self._complain(name, f"recurring downtime {name} (made through the API) no longer fits the "
                                         f"configuration: {e}; no new windows until it is replaced")
                    continue
            out[name] = cached[1]
        return out

    def add(self, rd: RecurringDowntime, spec: str) -> list[Op]:
        """A schedule made through the API (`spec`: its JSON), in force from the next tick."""
        self.store.schedules[rd.name] = spec
        self._looked = float("-inf")
        return [(UPSERT, [(rd.name, spec)])]

    def remove(self, name: str) -> list[Op]:
        self.store.schedules.pop(name, None)
        self._parsed.pop(name, None)
        return [(DELETE, [(name,)])]

    def tick(self, now: float) -> tuple[list[Op], Plan]:
        ops: list[Op] = []
        plan = Plan()
        if now - self._looked < EVERY:
            return ops, plan
        self._looked = now
        objs = self.objects()
        for name, rd in self.schedules().items():
            done = self.store.meta.get(mark_key(name))
            for start, end in windows(rd.period, objs.timeperiods, now, now + LOOKAHEAD):
                if done is not None and start <= done:
                    continue
                try:
                    targets = rd.scope.targets(objs)
                except ScopeError as e:
                    self._complain(name, f"recurring downtime {name}: {e}; window {time.ctime(start)} skipped")
                    targets = []
                if targets:
                    made, more = self.store.new_downtimes(targets, start, end, rd.author, rd.comment,
                                                          rd.duration is not None, rd.duration or 0.0,
                                                          f"{name}@{int(start)}")
                    ops += more
                    for dt in made:
                        plan.add(self.notices.added(dt, now))
                    log.info("recurring downtime %s: %d downtime(s) for %s from %s", name, len(made),
                             rd.scope.label(), time.ctime(start))
                done = int(start)
                self.store.meta[mark_key(name)] = done
                ops.append((SET_META_ROW, [(mark_key(name), done)]))
        return ops, plan

    def _complain(self, name: str, text: str) -> None:
        if name not in self._complained:
            self._complained.add(name)
            log.warning("%s", text)
