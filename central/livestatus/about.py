"""Tables of rows about a host or service: comments, downtimes and the log (the event
history), each with its host's columns as host_... and its service's as service_..."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from checkd.states import HostStatus, Status
from central.livestatus.checks import HOST_COLUMNS, SERVICE_COLUMNS
from central.livestatus.columns import CheckRow, Column, OnHost
from central.livestatus.snapshot import CommentRow, HistoryLine, Snapshot


def _on(rows: Iterable[Any], snap: Snapshot, user: str | None) -> Iterator[Any]:
    """Rows about a host or service still configured (and visible to the user)."""
    for r in rows:
        h = snap.objs.hosts.get(r.host)
        if h is None or (r.service is not None and (r.host, r.service) not in snap.objs.services):
            continue
        if user is None or snap.may_see(user, r.host, r.service):
            yield _About(r, snap, h)


class _About(OnHost):
    """A comment, downtime or log row with its host and service (their columns prefixed)."""

    __slots__ = ("item", "service", "_service_row")

    def __init__(self, item: Any, snap: Snapshot, host: Any):
        super().__init__(snap, host)
        self.item, self.service = item, item.service
        self._service_row: CheckRow | None = None

    @property
    def service_row(self) -> CheckRow:
        if self._service_row is None:
            key = (self.host.name, self.service)
            svc = self.snap.objs.services.get(key) if self.service is not None else None
            self._service_row = CheckRow(self.snap, svc, self.host, self.service) if svc is not None \
                else self.host_row
        return self._service_row


def _about_columns() -> list[Column]:
    svc = [c for c in SERVICE_COLUMNS if not c.name.startswith("host_")]
    return [
        Column("host_name", "string", lambda a: a.host.name, ""),
        Column("service_description", "string", lambda a: a.service or "", "empty for a host's"),
        Column("is_service", "int", lambda a: int(a.service is not None), ""),
        *[c.prefixed("host_", lambda a: a.host_row, "its host") for c in HOST_COLUMNS if c.name != "host_name"],
        *[c.prefixed("service_", lambda a: a.service_row, "its service") for c in svc
          if c.name != "description"],
    ]


COMMENT_COLUMNS = [
    Column("id", "int", lambda a: a.item.id, ""),
    Column("author", "string", lambda a: a.item.author, ""),
    Column("comment", "string", lambda a: a.item.text, ""),
    Column("entry_time", "time", lambda a: int(a.item.ts), ""),
    Column("entry_type", "int", lambda a: 1, "1: a user's comment"),
    Column("type", "int", lambda a: 2 if a.service is not None else 1, "1 host, 2 service"),
    Column("persistent", "int", lambda a: 1, ""), Column("source", "int", lambda a: 1, "1: external command"),
    Column("expires", "int", lambda a: 0, ""), Column("expire_time", "time", lambda a: 0, ""),
    *_about_columns(),
]
DOWNTIME_COLUMNS = [
    Column("id", "int", lambda a: a.item.id, ""),
    Column("author", "string", lambda a: a.item.author, ""),
    Column("comment", "string", lambda a: a.item.comment, ""),
    Column("entry_time", "time", lambda a: int(a.item.start), "its start (central keeps no entry time)"),
    Column("start_time", "time", lambda a: int(a.item.start), ""),
    Column("end_time", "time", lambda a: int(a.item.end), ""),
    Column("fixed", "int", lambda a: int(not a.item.flexible), ""),
    Column("duration", "int", lambda a: int(a.item.duration if a.item.flexible else a.item.end - a.item.start), ""),
    Column("triggered_by", "int", lambda a: 0, ""),
    Column("type", "int", lambda a: 2 if a.service is not None else 1, "1 host, 2 service"),
    Column("is_pending", "int", lambda a: int(not a.item.covers(a.item.host, a.item.service, a.snap.now)),
           "1 until it is in effect"),
    *_about_columns(),
]


def _log_type(r: HistoryLine) -> str:
    what = "HOST" if r.service is None else "SERVICE"
    if r.kind in ("open", "recovery", "state"):
        return f"{what} ALERT"
    return f"{what} {r.kind.upper()}"


def _state_word(r: HistoryLine) -> str:
    if r.status is None:
        return ""
    try:
        return (HostStatus(r.status) if r.service is None else Status(r.status)).name
    except ValueError:
        return str(r.status)


def _message(r: HistoryLine) -> str:
    target = r.host if r.service is None else f"{r.host};{r.service}"
    return f"[{int(r.ts)}] {_log_type(r)}: {target};{_state_word(r)};{r.author or ''};{r.output}"


LOG_COLUMNS = [
    Column("time", "time", lambda a: int(a.item.ts), ""),
    Column("lineno", "int", lambda a: 0, ""),
    Column("class", "int", lambda a: 1 if a.item.kind in ("open", "recovery", "state") else 5 if a.item.author
           else 0, "1 alert, 5 operator's command, 0 other"),
    Column("type", "string", lambda a: _log_type(a.item), "HOST ALERT, SERVICE ALERT, SERVICE ACK, ..."),
    Column("message", "string", lambda a: _message(a.item), ""),
    Column("state", "int", lambda a: a.item.status or 0, ""),
    Column("state_type", "string", lambda a: "HARD", ""),
    Column("plugin_output", "string", lambda a: a.item.output or "", ""),
    Column("contact_name", "string", lambda a: a.item.author or "", "who acted"),
    Column("command_name", "string", lambda a: "", ""),
    Column("attempt", "int", lambda a: 0, ""),
    Column("options", "string", lambda a: a.item.output or "", ""),
    Column("event_id", "int", lambda a: a.item.event_id, "checkd: the event"),
    *_about_columns(),
]


def comment_rows(snap: Snapshot, user: str | None) -> Iterator[Any]:
    return _on(snap.comments, snap, user)


def downtime_rows(snap: Snapshot, user: str | None) -> Iterator[Any]:
    return _on(sorted((d for ds in snap.downtimes.values() for d in ds), key=lambda d: d.id), snap, user)


def log_rows(snap: Snapshot, user: str | None) -> Iterator[Any]:
    return _on(snap.log, snap, user)


def comment_row(r: tuple[Any, ...]) -> CommentRow:
    return CommentRow(r[0], r[1], r[2] or None, r[3], r[4], r[5])
