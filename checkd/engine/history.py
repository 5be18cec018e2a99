"""What happened, read back from the database: an event with its history, the recent
events and comments of a host or service. The reads of the web pages, the API and
the bot, in one place; each is blocking (run it in a thread, after `db.write([])`
so a change just queued is seen)."""

from __future__ import annotations

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
