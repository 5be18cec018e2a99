"""The operator log of a poller: what people did there (ack, dis, ena, resched) while it
alerted on its own, with who and when. Kept in the poller's alerts database until
central has adopted it: handed over with the notification log, adopted once (central
remembers the highest entry it took from each poller), shown in the event history.
The format is the contract between the two: `Action.json()` out, `Action.parse()` in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

KINDS = ("ack", "dis", "ena", "resched")
MAX_TEXT = 1000                 # characters of a comment or author kept

SCHEMA = ("CREATE TABLE IF NOT EXISTS operator_actions (id INTEGER PRIMARY KEY, ts REAL NOT NULL, "
          "kind TEXT NOT NULL, event_id INTEGER, host TEXT NOT NULL, service TEXT NOT NULL, author TEXT NOT NULL, "
          "comment TEXT NOT NULL, until REAL, sticky INTEGER NOT NULL DEFAULT 1, handed INTEGER NOT NULL DEFAULT 0);\n")
INSERT = ("INSERT INTO operator_actions (ts, kind, event_id, host, service, author, comment, until, sticky) "
          "VALUES (?,?,?,?,?,?,?,?,?)")
UNHANDED = ("SELECT id, ts, kind, event_id, host, service, author, comment, until, sticky FROM operator_actions "
            "WHERE handed = 0 ORDER BY id")
MARK_HANDED = "UPDATE operator_actions SET handed = 1 WHERE id <= ?"


def adopted_key(poller: str) -> str:
    """Central's meta key: the highest entry adopted from `poller` (exactly once)."""
    return f"adopted_actions:{poller}"


@dataclasses.dataclass(frozen=True, slots=True)
class Action:
    id: int                     # 0 until stored
    ts: float
    kind: str
    event_id: int | None        # the problem acted on (ack), or the one that named the target
    host: str
    service: str | None
    author: str
    comment: str = ""
    until: float | None = None  # dis: when the mute ends (None: until ena); ack: when it expires
    sticky: bool = True         # ack: until recovery (else until the state changes)

    def row(self) -> tuple[Any, ...]:
        """For INSERT (the id numbers itself)."""
        return (self.ts, self.kind, self.event_id, self.host, self.service or "", self.author[:MAX_TEXT],
                self.comment[:MAX_TEXT], self.until, int(self.sticky))

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> Action:
        return cls(r[0], r[1], r[2], r[3], r[4], r[5] or None, r[6], r[7], r[8], bool(r[9]))

    def json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def parse(cls, d: Any, number: Callable[[Any], float | None]) -> Action:
        """One handed-over entry, checked field by field; ValueError names what is wrong.
        `number`: how the caller reads a finite number (None for null)."""
        if type(d) is not dict:
            raise ValueError("expected an object")
        aid, eid = d.get("id"), d.get("event_id")
        if type(aid) is not int or aid < 1:
            raise ValueError("id: expected a positive integer")
        if d.get("kind") not in KINDS:
            raise ValueError(f"kind: one of {', '.join(KINDS)}")
        if eid is not None and type(eid) is not int:
            raise ValueError("event_id: expected an integer or null")
        if type(d.get("sticky", True)) is not bool:
            raise ValueError("sticky: expected true or false")
        texts = {}
        for key in ("host", "author", "comment", "service"):
            v = d.get(key, "" if key in ("comment", "service") else None)
            if key == "service" and v is None:
                v = ""
            if type(v) is not str or len(v) > MAX_TEXT or (key in ("host", "author") and not v):
                raise ValueError(f"{key}: expected a string of at most {MAX_TEXT} characters")
            texts[key] = v
        ts, until = _time(d, "ts", number), _time(d, "until", number)
        if ts is None:
            raise ValueError("ts: expected a time (a finite Unix time)")
        return cls(aid, ts, d["kind"], eid, texts["host"], texts["service"] or None, texts["author"],
                   texts["comment"], until, d.get("sticky", True))


def _time(d: dict[str, Any], key: str, number: Callable[[Any], float | None]) -> float | None:
    try:
        return number(d.get(key))
    except ValueError:
        raise ValueError(f"{key}: expected a time (a finite Unix time)") from None
