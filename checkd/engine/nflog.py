"""The notification log: every decision made, how its delivery ended, and what a
poller decided on central's behalf. The one module that knows the SQL of the
notification_log and delegated tables (the schema itself is in db.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from checkd.engine.notify.notification import Channel, Kind, Notification

if TYPE_CHECKING:
    from checkd.engine.db import Database

ROOM = "#room"                  # the contact name of the group chat room in the log


class LogRow(NamedTuple):
    """One notification_log row, in column order."""
    id: int
    event_id: int
    kind: str
    contact: str
    channel: str
    number: int
    level: int
    created: float
    status: str                 # pending, sent, summarised, failed; on a poller also delegated, handed
    done: float | None
    attempts: int
    error: str | None
    payload: str                # the Notification as JSON (to_payload)


LOG_FIELDS = LogRow._fields

# --- statements (db.Op) -------------------------------------------------------------------
INSERT = "INSERT INTO notification_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
ADOPT = "INSERT OR IGNORE INTO notification_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
SET_OUTCOME = "UPDATE notification_log SET status = ?, done = ?, attempts = ?, error = ? WHERE id = ?"
SET_STATUS = "UPDATE notification_log SET status = ? WHERE id = ?"

# A poller's own table: which spooled result each delegated decision came from.
DELEGATED_SCHEMA = "CREATE TABLE IF NOT EXISTS delegated (row_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);\n"
INSERT_DELEGATED = "INSERT OR REPLACE INTO delegated VALUES (?,?)"

# At start-up: what open events have been told, what was decided but not yet sent, and
# what a poller sent about events its spool has not delivered yet (not event 0: downtime
# notices about a check without a problem). Three index-driven parts, not one OR over every
# row: a year of notifications is hundreds of MB, and its scan was most of central's start
# (bench/central_startup.py: 0.7-2.2 s at 800k rows -> 0.3 s, the event IDs read from an index).
LOAD = ("SELECT * FROM notification_log WHERE status = 'pending' "
        "UNION SELECT n.* FROM events e JOIN notification_log n ON n.event_id = e.id WHERE e.closed IS NULL "
        "UNION SELECT * FROM notification_log WHERE event_id IN "
        "(SELECT event_id FROM notification_log WHERE event_id != 0 EXCEPT SELECT id FROM events) ORDER BY id")


# --- the payload: the decided Notification, so a restart sends exactly it ------------------

_PAYLOAD_FIELDS = tuple(f.name for f in dataclasses.fields(Notification) if f.name != "graph_png")


def to_payload(n: Notification) -> str:
    d = {name: getattr(n, name) for name in _PAYLOAD_FIELDS}     # not asdict: it deep-copies
    d["kind"], d["channel"], d["summary_ids"] = n.kind.value, n.channel.value, list(n.summary_ids)
    return json.dumps(d)


def from_payload(text: str) -> Notification:
    d: dict[str, Any] = json.loads(text)
    d["kind"], d["channel"], d["summary_ids"] = Kind(d["kind"]), Channel(d["channel"]), tuple(d["summary_ids"])
    return Notification(**d)


# --- reads (blocking: run them in a thread) -------------------------------------------------

def of_event(db: Database, eid: int) -> list[LogRow]:
    """An event's notifications, with those a poller sent under its own ID for the same
    problem (split brain: event_aliases), oldest first."""
    return [LogRow._make(r) for r in db.read(
        "SELECT * FROM notification_log WHERE event_id = ? OR event_id IN "
        "(SELECT alias FROM event_aliases WHERE event_id = ?) ORDER BY id", (eid, eid))]


def latest(db: Database, eid: int, limit: int) -> list[LogRow]:
    """An event's newest `limit` notifications, newest first."""
    return [LogRow._make(r) for r in db.read(
        "SELECT * FROM notification_log WHERE event_id = ? ORDER BY id DESC LIMIT ?", (eid, limit))]


def unconfirmed(db: Database, acked_seq: int) -> list[LogRow]:
    """On a poller: delegated decisions whose result central never acknowledged (a
    spool seq above `acked_seq`, or none noted)."""
    return [LogRow._make(r) for r in db.read(
        "SELECT n.* FROM notification_log n LEFT JOIN delegated d ON d.row_id = n.id "
        "WHERE n.status = 'delegated' AND (d.seq IS NULL OR d.seq > ?) ORDER BY n.id", (acked_seq,))]


def to_hand_over(db: Database) -> list[LogRow]:
    """On a poller: what it decided while alerting on its own, for central to adopt."""
    return [LogRow._make(r) for r in db.read(
        "SELECT * FROM notification_log WHERE status IN ('pending', 'sent', 'failed', 'summarised') "
        "ORDER BY id")]


def rows_of(rows: Sequence[tuple[Any, ...]]) -> list[LogRow]:
    return [LogRow._make(r) for r in rows]
