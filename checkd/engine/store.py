"""The central state store: every check's current state, open events, pollers,
downtimes and mutes, held in memory so ingest and the API never wait on disk.

Rows come from checkd.engine.db at start-up; every change made here is also
returned as db Ops by the module that makes it (ingest, events, api), so
memory and disk move together in one group-committed transaction.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from typing import Any

from checkd.result import CheckKey
from checkd.states import StateType
from checkd.engine.db import UPSERT_CHECK, Op
from checkd.engine.deployments import Deployments


@dataclasses.dataclass(slots=True)
class CheckView:
    """The current state of one host or service check, as central knows it."""

    host: str
    service: str | None
    status: int = 0
    state_type: StateType = StateType.HARD
    attempt: int = 1
    output: str = ""
    long_output: str = ""
    perfdata: str = ""
    last_check: float = 0.0
    last_state_change: float = 0.0
    polled_by: str = ""
    event_id: int | None = None
    flapping: bool = False

    def row(self) -> tuple[Any, ...]:
        return (self.host, self.service or "", self.status, self.state_type.value, self.attempt,
                self.output, self.long_output, self.perfdata, self.last_check, self.last_state_change,
                self.polled_by, self.event_id, int(self.flapping))

    def op(self) -> Op:
        return (UPSERT_CHECK, [self.row()])


@dataclasses.dataclass(slots=True)
class Event:
    """One problem of one check: from HARD non-OK to recovery, under one ID."""

    id: int
    host: str
    service: str | None
    opened: float
    status: int
    closed: float | None = None
    parent_id: int | None = None        # the host's event while the host is DOWN
    flapping: bool = False
    acknowledged: bool = False
    ack_author: str | None = None
    ack_comment: str | None = None
    source: str = "central"             # who allocated the ID: central or a poller name
    # Notification progress, kept with the event so a restart goes on where it was:
    notified_status: int | None = None  # the state the last problem notification was about
    notified_at: float = 0.0            # when the last problem/escalation round went out
    rounds: int = 0                     # problem notification rounds so far (re-notifications)
    level: int = 1                      # highest escalation level reached
    # The acknowledgement's kind (Nagios): sticky until recovery, or ended by any state change;
    # and when it lapses on its own (Icinga 2's expiry; None: never).
    ack_sticky: bool = True
    ack_expires: float | None = None

    @property
    def key(self) -> CheckKey:
        return (self.host, self.service)

    def row(self) -> tuple[Any, ...]:
        return (self.id, self.host, self.service or "", self.opened, self.closed, self.status, self.parent_id,
                int(self.flapping), int(self.acknowledged), self.ack_author, self.ack_comment, self.source,
                self.notified_status, self.notified_at, self.rounds, self.level, int(self.ack_sticky),
                self.ack_expires)

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> Event:
        return cls(r[0], r[1], _svc(r[2]), r[3], r[5], r[4], r[6], bool(r[7]), bool(r[8]), r[9], r[10], r[11],
                   r[12], r[13], r[14], r[15], bool(r[16]), r[17])


UPSERT_EVENT = "INSERT OR REPLACE INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
INSERT_HISTORY = "INSERT INTO event_history VALUES (?,?,?,?,?,?)"
UPSERT_POLLER = "INSERT OR REPLACE INTO pollers VALUES (?,?,?,?)"
INSERT_ALIAS = "INSERT OR IGNORE INTO event_aliases VALUES (?,?)"
INSERT_COMMENT = "INSERT INTO comments (host, service, ts, author, text) VALUES (?,?,?,?,?)"
UPSERT_MUTE = "INSERT OR REPLACE INTO mutes VALUES (?,?,?,?)"          # (host, service or "", until, author)
DELETE_MUTE = "DELETE FROM mutes WHERE host = ? AND service = ?"
INSERT_DOWNTIME = "INSERT OR REPLACE INTO downtimes VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"     # Downtime.row()
SET_TRIGGERED = "UPDATE downtimes SET triggered = ? WHERE id = ?"
SET_META_ROW = "INSERT OR REPLACE INTO meta VALUES (?,?)"
NEXT_DOWNTIME_ID = "next_downtime_id"
DELETE_DOWNTIME = "DELETE FROM downtimes WHERE id = ?"
UPDATE_PHASE = "UPDATE downtimes SET phase = ? WHERE id = ?"         # (Phase.value, id)
INSERT_CANCELLED = "INSERT OR IGNORE INTO cancelled_downtimes VALUES (?,?,?,?,?)"   # Downtime.cancelled_row()


@dataclasses.dataclass(slots=True)
class PollerState:
    name: str
    site: str
    last_seen: float = 0.0
    seq: int = 0                        # highest result seq stored from this poller
    seq_moved: float = 0.0              # when `seq` last rose here (0: not since start-up; not stored)

    def op(self) -> Op:
        return (UPSERT_POLLER, [(self.name, self.site, self.last_seen, self.seq)])


class Phase(enum.Enum):
    """Where a downtime is in its life; each step is told once (checkd.engine.notify.downtimes)."""

    SCHEDULED = "scheduled"             # its start is still to come
    ACTIVE = "active"                   # in effect (DOWNTIMESTART decided, or a nested one)
    ENDED = "ended"                     # ran to its end (DOWNTIMEEND decided)


@dataclasses.dataclass(frozen=True, slots=True)
class Downtime:
    """Fixed: in effect from `start` to `end`. Flexible (Nagios): waits within [start, end]
    for the check to fail, then lasts `duration` from that moment (`triggered`)."""

    id: int
    host: str
    service: str | None                 # None: the host and all its services
    start: float
    end: float
    author: str
    comment: str
    phase: Phase = Phase.SCHEDULED
    flexible: bool = False
    duration: float = 0.0
    triggered: float | None = None
    series: str = ""                    # the request or recurring schedule that made it (one of many)

    def row(self) -> tuple[Any, ...]:
        return (self.id, self.host, self.service, self.start, self.end, self.author, self.comment, self.phase.value,
                int(self.flexible), self.duration, self.triggered, self.series)

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> Downtime:
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], r[6], Phase(r[7]), bool(r[8]), r[9] or 0.0, r[10], r[11] or "")

    def window(self) -> tuple[float, float] | None:
        """When it is in effect; None: a flexible one that has not been triggered (yet)."""
        if not self.flexible:
            return self.start, self.end
        return None if self.triggered is None else (self.triggered, self.triggered + self.duration)

    @property
    def over(self) -> float:
        """When it is no longer in effect, or (a flexible one not triggered) can no longer be."""
        w = self.window()
        return w[1] if w else self.end + self.duration

    def waits_for(self, host: str, service: str | None, ts: float) -> bool:
        """A flexible downtime this check's failure at `ts` starts."""
        return (self.flexible and self.triggered is None and self.phase is Phase.SCHEDULED
                and self.host == host and self.service == service and self.start <= ts <= self.end)

    def covers(self, host: str, service: str | None, now: float) -> bool:
        w = self.window()
        return (w is not None and self.host == host and (self.service is None or self.service == service)
                and w[0] <= now < w[1])

    def cancelled_row(self, now: float) -> tuple[Any, ...] | None:
        """What it had covered when deleted at `now` (for availability reports); None: nothing yet."""
        w = self.window()
        if w is None or w[0] >= now:
            return None
        return (self.id, self.host, self.service, w[0], min(w[1], now))


@dataclasses.dataclass(frozen=True, slots=True)
class Mute:
    """Notifications disabled for a host (service None: and its services) or a service."""

    host: str
    service: str | None
    until: float | None                 # None: until enabled again
    author: str

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


def _svc(s: str) -> str | None:
    return s or None


class Store:
    def __init__(self) -> None:
        self.checks: dict[CheckKey, CheckView] = {}
        self.open_events: dict[int, Event] = {}
        self.open_by_key: dict[CheckKey, int] = {}
        self.pollers: dict[str, PollerState] = {}
        self.downtimes: dict[int, Downtime] = {}   # change through put/pop/set_downtimes (the index below)
        self._flexible: dict[CheckKey, set[int]] = {}   # flexible downtimes waiting for their check to fail
        self.schedules: dict[str, str] = {}         # recurring downtimes made through the API: name -> JSON
        self.mutes: dict[CheckKey, Mute] = {}
        self.meta: dict[str, int] = {}
        self.aliases: dict[int, int] = {}           # a poller's event ID -> central's event for the same problem
        self.deployments = Deployments()            # rollouts mute their hosts

    def load(self, tables: dict[str, list[tuple[Any, ...]]]) -> None:
        """Fill from checkd.engine.db rows (start-up)."""
        self.meta = {k: v for k, v in tables["meta"]}
        for r in tables["checks"]:
            v = CheckView(r[0], _svc(r[1]), r[2], StateType(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                          r[11], bool(r[12]))
            self.checks[(v.host, v.service)] = v
        for r in tables["events"]:
            e = Event.from_row(r)
            self.open_events[e.id] = e
            self.open_by_key[e.key] = e.id
        for r in tables["pollers"]:
            self.pollers[r[0]] = PollerState(*r)
        for r in tables["downtimes"]:
            self.put_downtime(Downtime.from_row(r))
        self.aliases = {a: e for a, e in tables.get("event_aliases", ())}
        self.schedules = {name: spec for name, spec in tables.get("downtime_schedules", ())}
        self.deployments.load(tables.get("deployments", []))
        for r in tables["mutes"]:
            self.mutes[(r[0], _svc(r[1]))] = Mute(r[0], _svc(r[1]), r[2], r[3])

    # --- downtimes (the flexible index moves with them) --------------------------------------

    def put_downtime(self, dt: Downtime) -> None:
        self.pop_downtime(dt.id)
        self.downtimes[dt.id] = dt
        if dt.flexible and dt.triggered is None:
            self._flexible.setdefault((dt.host, dt.service), set()).add(dt.id)

    def pop_downtime(self, did: int) -> Downtime | None:
        dt = self.downtimes.pop(did, None)
        if dt is not None and dt.flexible:
            waiting = self._flexible.get((dt.host, dt.service))
            if waiting is not None:
                waiting.discard(did)
                if not waiting:
                    del self._flexible[(dt.host, dt.service)]
        return dt

    def set_downtimes(self, downtimes: dict[int, Downtime]) -> None:
        self.downtimes, self._flexible = {}, {}
        for dt in downtimes.values():
            self.put_downtime(dt)

    def new_downtimes(self, targets: list[CheckKey], start: float, end: float, author: str, comment: str,
                      flexible: bool = False, duration: float = 0.0, series: str = "") -> tuple[list[Downtime], list[Op]]:
        """Downtimes for `targets` (one each), numbered on from meta's next_downtime_id, in the
        store; the ops that write them. The caller asks the notices what starts now."""
        first = self.meta.get(NEXT_DOWNTIME_ID, 1)
        made = [Downtime(first + i, host, service, float(start), float(end), author, comment, flexible=flexible,
                         duration=float(duration), series=series) for i, (host, service) in enumerate(targets)]
        for dt in made:
            self.put_downtime(dt)
        self.meta[NEXT_DOWNTIME_ID] = first + len(made)
        return made, [(SET_META_ROW, [(NEXT_DOWNTIME_ID, first + len(made))]), (INSERT_DOWNTIME, [d.row() for d in made])]

    def trigger_flexible(self, host: str, service: str | None, ts: float) -> list[Op]:
        """A check failed at `ts`: the flexible downtimes waiting for it start now (Nagios)."""
        waiting = self._flexible.get((host, service))
        if not waiting:
            return []
        ops: list[Op] = []
        for did in list(waiting):
            dt = self.downtimes[did]
            if dt.waits_for(host, service, ts):
                self.put_downtime(dataclasses.replace(dt, triggered=ts))
                ops.append((SET_TRIGGERED, [(ts, did)]))
        return ops

    def check(self, host: str, service: str | None) -> CheckView:
        key = (host, service)
        view = self.checks.get(key)
        if view is None:
            view = self.checks[key] = CheckView(host, service)
        return view

    def open_event(self, key: CheckKey) -> Event | None:
        eid = self.open_by_key.get(key)
        return None if eid is None else self.open_events[eid]

    def in_downtime(self, host: str, service: str | None, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return any(d.covers(host, service, now) for d in self.downtimes.values())

    def muted(self, host: str, service: str | None, now: float | None = None, downtimes: bool = True) -> bool:
        """No notifications: disabled for the host or the service, in a downtime, or a rollout.
        `downtimes=False`: disabled or a rollout only (what holds back the downtime notices themselves)."""
        now = time.time() if now is None else now
        for key in ((host, None), (host, service)):
            m = self.mutes.get(key)
            if m is not None and m.active(now):
                return True
        if self.deployments.running and self.deployments.muted(host, now) is not None:
            return True
        return downtimes and bool(self.downtimes) and self.in_downtime(host, service, now)
