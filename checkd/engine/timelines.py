"""A check's past as an availability report needs it, read back from the database: when
its state became known, its HARD state changes (events and their history), its downtimes
(cancelled ones too) and its acknowledged spans. Blocking: run it in a thread, after
`db.write([])` so what was just queued is seen.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from checkd.engine.store import Downtime
from checkd.result import CheckKey

if TYPE_CHECKING:
    from checkd.engine.db import Database

Span = tuple[float, float]                      # [from, until)
CHUNK = 500                                     # event IDs per history query (SQLite's bound on parameters)
ACK_ENDS = frozenset({"unack", "ack_ended", "ack_expired", "recovery"})
KINDS = "('open', 'state', 'ack', 'unack', 'ack_ended', 'ack_expired', 'recovery')"


@dataclasses.dataclass(frozen=True, slots=True)
class CheckTimeline:
    """One check. Outside its problems (events) a check was OK or UP, HARD; SOFT states are
    not stored, so a report counts HARD states only (Nagios' default)."""

    known_from: float | None                    # its first stored result; None: never reported
    changes: tuple[tuple[float, int], ...] = ()  # (when, status) oldest first; OK/UP before the first
    downtimes: tuple[Span, ...] = ()            # when downtimes covering it were in effect
    acks: tuple[Span, ...] = ()                 # when a problem of it was acknowledged


def read(db: Database, keys: Iterable[CheckKey], since: float, until: float) -> dict[CheckKey, CheckTimeline]:
    """The timelines of `keys` for the period [since, until)."""
    wanted = set(keys)
    first = {(h, s or None): ts for h, s, ts in db.read("SELECT host, service, MIN(finished) FROM first_results "
                                                        "GROUP BY host, service")}
    events = [r for r in db.read("SELECT id, host, service, opened, closed, status FROM events "
                                 "WHERE opened < ? AND (closed IS NULL OR closed > ?) ORDER BY opened, id",
                                 (until, since)) if (r[1], r[2] or None) in wanted]
    steps = _history(db, [r[0] for r in events])
    changes: dict[CheckKey, list[tuple[float, int]]] = {}
    acks: dict[CheckKey, list[Span]] = {}
    for eid, host, service, opened, closed, status in events:
        key = (host, service or None)
        # A problem says the state was known from when it opened, even before the check's first
        # stored result (one adopted from a poller, or a state directory from before first_results).
        first[key] = min(first.get(key, opened), opened)
        hist = steps.get(eid, [])
        points = [(ts, status if st is None else st) for ts, kind, st in hist if kind in ("open", "state")]
        if not points or points[0][0] > opened:
            points.insert(0, (opened, points[0][1] if points else status))
        acked: float | None = None
        for ts, kind, _ in hist:
            if kind == "ack" and acked is None:
                acked = ts
            elif kind in ACK_ENDS and acked is not None:
                acks.setdefault(key, []).append((acked, ts))
                acked = None
        if acked is not None:
            acks.setdefault(key, []).append((acked, math.inf if closed is None else closed))
        if closed is not None:
            points.append((closed, 0))
        changes.setdefault(key, []).extend(points)
    downtimes = _downtimes(db, since, until)
    return {key: CheckTimeline(first.get(key), tuple(sorted(changes.get(key, ()), key=lambda p: p[0])),
                          tuple(s for k, s in downtimes if _covers(k, key)), tuple(acks.get(key, ())))
            for key in wanted}


def _history(db: Database, ids: list[int]) -> dict[int, list[tuple[float, str, int | None]]]:
    """(ts, kind, status) of each event's state changes and acknowledgements, in order."""
    out: dict[int, list[tuple[float, str, int | None]]] = {}
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        for eid, ts, kind, status in db.read(
                f"SELECT event_id, ts, kind, status FROM event_history WHERE kind IN {KINDS} "
                f"AND event_id IN ({','.join('?' * len(part))}) ORDER BY rowid", part):
            out.setdefault(eid, []).append((ts, kind, status))
    for rows in out.values():
        rows.sort(key=lambda r: r[0])           # stable: equal times stay in the order written
    return out


def _downtimes(db: Database, since: float, until: float) -> list[tuple[tuple[str, str | None], Span]]:
    """(host, service or None: the host and its services) and when it was in effect, for every
    downtime overlapping the period: those stored and those deleted after they began."""
    out = []
    for row in db.read("SELECT * FROM downtimes"):      # `end` is a reserved word in PostgreSQL
        w = Downtime.from_row(row).window()
        if w is not None and w[0] < until and w[1] > since:
            out.append(((row[1], row[2]), w))
    out += [((h, s), (a, b)) for h, s, a, b in db.read(
        "SELECT host, service, start, until FROM cancelled_downtimes WHERE start < ? AND until > ?", (until, since))]
    return out


def _covers(target: tuple[str, Any], key: CheckKey) -> bool:
    """A host downtime covers the host and its services; a service downtime that service."""
    host, service = target
    return host == key[0] and (service is None or service == key[1])
