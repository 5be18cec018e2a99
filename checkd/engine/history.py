"""What happened, read back from the database: an event with its history, the recent
events and comments of a host or service, and the history search. The reads of the
web pages, the API and the bot, in one place; each is blocking (run it in a thread,
after `db.write([])` so a change just queued is seen)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NamedTuple

from checkd.engine.store import Event

if TYPE_CHECKING:
    from checkd.engine.db import Database

Row = tuple[Any, ...]


class CheckRows(NamedTuple):
    events: list[Row]           # (id, service, opened, closed, status), newest first
    history: list[Row]          # (event_id, ts, kind, status, output, author) of those events
    comments: list[Row]         # (ts, author, text, service), newest first


def event(db: Database, eid: int) -> Event | None:
    """The event, open or closed, as stored."""
    rows = db.read("SELECT * FROM events WHERE id = ?", (eid,))
    return Event.from_row(rows[0]) if rows else None


def event_key(db: Database, eid: int) -> tuple[str, str | None] | None:
    """The host and service an event is about; None: no such event."""
    rows = db.read("SELECT host, service FROM events WHERE id = ?", (eid,))
    return (rows[0][0], rows[0][1] or None) if rows else None


def event_history(db: Database, eid: int) -> list[Row]:
    """(ts, kind, status, output, author) in the order it happened."""
    return db.read("SELECT ts, kind, status, output, author FROM event_history WHERE event_id = ? ORDER BY rowid",
                   (eid,))


def of_check(db: Database, host: str, service: str | None, *, whole_host: bool, events: int, history: int,
             comments: int) -> CheckRows:
    """A host's or service's page: its latest events (with `whole_host`, those of its
    services too), their history and the comments."""
    if whole_host:
        evs = db.read("SELECT id, service, opened, closed, status FROM events WHERE host = ? "
                      "ORDER BY opened DESC LIMIT ?", (host, events))
    else:
        evs = db.read("SELECT id, service, opened, closed, status FROM events WHERE host = ? AND service = ? "
                      "ORDER BY opened DESC LIMIT ?", (host, service or "", events))
    ids = [r[0] for r in evs]
    hist = db.read(f"SELECT event_id, ts, kind, status, output, author FROM event_history WHERE event_id IN "
                   f"({','.join('?' * len(ids))}) ORDER BY ts DESC, rowid DESC LIMIT ?",
                   (*ids, history)) if ids else []
    notes = db.read("SELECT ts, author, text, service FROM comments WHERE host = ? AND " +
                    ("1" if whole_host else "service IS ?") + " ORDER BY ts DESC, id DESC LIMIT ?",
                    (host, comments) if whole_host else (host, service, comments))
    return CheckRows(evs, hist, notes)


# Every kind of row written to event_history (checkd/engine/events.py, central/operations.py,
# central/adopt_actions.py): a search for another kind is refused, not silently empty.
KINDS = ("open", "state", "recovery", "linked", "flapping_start", "flapping_stop", "ack", "unack", "ack_ended",
         "ack_expired", "comment", "merged", "adopted", "resched", "notifications_disabled",
         "notifications_enabled", "downtime", "downtime_changed", "downtime_deleted", "deploy_start",
         "deploy_finish", "deploy_abort")
# Checks with at most this many events are searched from their events (index on host or
# service, then each event's history, sorted); with more, from the newest history row down
# (the time index), which finds a page of common rows at once and never sorts a year.
FEW_EVENTS = 5000


@dataclasses.dataclass(frozen=True)
class Search:
    """A history search, its names already resolved (central/history_query.py)."""

    hosts: tuple[str, ...] | None = None        # None: any host; (): none matches
    services: tuple[str, ...] | None = None     # service descriptions; host rows never match
    host_states: tuple[int, ...] = ()           # statuses of host rows wanted (UP 0, DOWN 1, ...)
    service_states: tuple[int, ...] = ()        # ... of service rows; both empty: any state
    since: float | None = None
    until: float | None = None                  # rows before this time
    text: str = ""                              # in the output or comment, ignoring case
    author: str = ""                            # who acted, exactly
    kinds: tuple[str, ...] = ()
    limit: int = 100
    offset: int = 0

    @property
    def nothing(self) -> bool:
        return self.hosts == () or self.services == ()


def _in(column: str, values: tuple[Any, ...]) -> str:
    return f"{column} IN ({','.join('?' * len(values))})"


def _like(text: str) -> str:
    """A LIKE pattern for `text` anywhere, its own % _ and \\ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _check_terms(s: Search) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if s.hosts is not None:
        where.append(_in("e.host", s.hosts))
        args += s.hosts
    if s.services is not None:
        where.append(_in("e.service", s.services))
        args += s.services
    return where, args


def _row_terms(s: Search) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if s.host_states or s.service_states:
        either = []
        for test, states in (("=", s.host_states), ("<>", s.service_states)):
            if states:
                either.append(f"(e.service {test} '' AND {_in('h.status', states)})")
                args += states
        where.append(f"({' OR '.join(either)})")
    if s.since is not None:
        where.append("h.ts >= ?")
        args.append(s.since)
    if s.until is not None:
        where.append("h.ts < ?")
        args.append(s.until)
    if s.kinds:
        where.append(_in("h.kind", s.kinds))
        args += s.kinds
    if s.author:
        where.append("h.author = ?")
        args.append(s.author)
    if s.text:
        # SQLite's LIKE ignores the case of ASCII letters; PostgreSQL runs it as ILIKE (pgdb.translate).
        where.append("h.output LIKE ? ESCAPE '\\'")
        args.append(_like(s.text))
    return where, args


def search(db: Database, s: Search) -> tuple[list[Row], bool]:
    """History rows matching `s`, newest first: (event_id, ts, kind, status, output, author,
    host, service) with service '' for a host's; and whether more follow this page."""
    if s.nothing:
        return [], False
    check_where, check_args = _check_terms(s)
    row_where, row_args = _row_terms(s)
    # CROSS JOIN: SQLite joins in the order written (PostgreSQL plans it freely from its statistics).
    joined = "event_history h CROSS JOIN events e"
    if check_where:
        few = db.read(f"SELECT count(*) FROM (SELECT 1 FROM events e WHERE {' AND '.join(check_where)} LIMIT ?) AS c",
                      (*check_args, FEW_EVENTS + 1))[0][0]
        if few <= FEW_EVENTS:
            joined = "events e CROSS JOIN event_history h"
    where = " AND ".join(["h.event_id = e.id", *check_where, *row_where])
    rows = db.read(f"SELECT h.event_id, h.ts, h.kind, h.status, h.output, h.author, e.host, e.service "
                   f"FROM {joined} WHERE {where} ORDER BY h.ts DESC, h.rowid DESC LIMIT ? OFFSET ?",
                   (*check_args, *row_args, s.limit + 1, s.offset))
    return rows[:s.limit], len(rows) > s.limit


def names(db: Database) -> tuple[list[str], list[str]]:
    """Every host and every service description that has events (those no longer
    configured too): each name found by one step down an index, not a scan of the events."""
    found = []
    for column in ("host", "service"):
        found.append([r[0] for r in db.read(
            f"WITH RECURSIVE n(v) AS (SELECT MIN({column}) FROM events UNION ALL "
            f"SELECT (SELECT MIN({column}) FROM events WHERE {column} > n.v) FROM n WHERE n.v IS NOT NULL) "
            "SELECT v FROM n WHERE v IS NOT NULL")])
    return found[0], [s for s in found[1] if s]
