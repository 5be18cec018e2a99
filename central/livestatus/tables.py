"""The Livestatus tables with the column names Nagios tools use, each mapped from
central's configuration and state (a Snapshot). `rows(snap, user)` yields the rows a
user (AuthUser, or None for everyone) may see; `columns` reads one value of a row."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from checkd import __version__
from checkd.states import HostStatus, Status
from central.livestatus.columns import CheckRow, Column, OnHost, check_columns
from central.livestatus.snapshot import CommentRow, HistoryLine, Snapshot

LIVESTATUS_VERSION = "1.5.0-checkd"        # clients parse it; mk-livestatus 1.5 is what this follows
Rows = Callable[[Snapshot, "str | None"], Iterable[Any]]


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, Column]
    rows: Rows
    reads: str = ""                     # "comments" | "log": rows the database holds


def _table(name: str, cols: list[Column], rows: Rows, reads: str = "") -> Table:
    return Table(name, {c.name: c for c in cols}, rows, reads)


# --- hosts and services ----------------------------------------------------------------------

def _host_rows(snap: Snapshot, user: str | None) -> Iterator[CheckRow]:
    for h in snap.objs.hosts.values():
        if user is None or snap.may_see(user, h.name, None):
            yield CheckRow(snap, h, h, None).host_row


def _service_rows(snap: Snapshot, user: str | None) -> Iterator[CheckRow]:
    hosts = snap.objs.hosts
    for svc in snap.objs.services.values():
        if user is None or snap.may_see(user, svc.host, svc.description):
            yield CheckRow(snap, svc, hosts[svc.host], svc.description)


def _services_of(r: CheckRow) -> list[CheckRow]:
    return r.host_row.services


SERVICE_STATES = (("ok", 0), ("warn", 1), ("crit", 2), ("unknown", 3))
_SEVERITY = {0: 0, 1: 1, 3: 2, 2: 3}            # Nagios' worst: CRITICAL > UNKNOWN > WARNING > OK


def worst_service(states: Iterable[int]) -> int:
    return max(states, key=lambda s: _SEVERITY.get(s, 0), default=0)


def _count(state: int, hard: bool = False) -> Callable[[CheckRow], int]:
    def count(r: CheckRow) -> int:
        return sum(1 for s in _services_of(r) if s.checked and s.state == state
                   and (not hard or s.view.state_type.value == "HARD"))       # type: ignore[union-attr]
    return count


def _host_columns() -> list[Column]:
    cols = [
        Column("name", "string", lambda r: r.host.name, "host name"),
        Column("host_name", "string", lambda r: r.host.name, "host name"),
        Column("display_name", "string", lambda r: r.host.alias or r.host.name, ""),
        Column("alias", "string", lambda r: r.host.alias or r.host.name, ""),
        Column("address", "string", lambda r: r.host.address, ""),
        Column("parents", "list", lambda r: list(r.host.parents), ""),
        Column("childs", "list", lambda r: list(r.snap.children(r.host.name)), "hosts naming it as a parent"),
        Column("site", "string", lambda r: r.host.site, "checkd: the host's site"),
        Column("services", "list", lambda r: [s.description for s in r.snap.services_of.get(r.host.name, ())], ""),
        Column("services_with_state", "list",
               lambda r: [[s.service, s.state, int(s.checked)] for s in _services_of(r)], "[description, state, checked]"),
        Column("services_with_info", "list",
               lambda r: [[s.service, s.state, int(s.checked), s.view.output if s.view else ""] for s in _services_of(r)],
               "[description, state, checked, output]"),
        Column("num_services", "int", lambda r: len(r.snap.services_of.get(r.host.name, ())), ""),
        Column("num_services_pending", "int", lambda r: sum(1 for s in _services_of(r) if not s.checked), ""),
        Column("worst_service_state", "int", lambda r: worst_service(s.state for s in _services_of(r)), ""),
        Column("worst_service_hard_state", "int", lambda r: worst_service(
            s.state for s in _services_of(r) if s.view is None or s.view.state_type.value == "HARD"), ""),
    ]
    for word, state in SERVICE_STATES:
        cols.append(Column(f"num_services_{word}", "int", _count(state), ""))
        cols.append(Column(f"num_services_hard_{word}", "int", _count(state, hard=True), ""))
    return check_columns() + cols


HOST_COLUMNS = _host_columns()
SERVICE_COLUMNS = check_columns() + [
    Column("host_name", "string", lambda r: r.host.name, ""),
    Column("description", "string", lambda r: r.service, "service description"),
    Column("service_description", "string", lambda r: r.service, "the same (a filter name NagVis uses)"),
    Column("display_name", "string", lambda r: r.service, ""),
] + [c.prefixed("host_", lambda r: r.host_row, "its host") for c in HOST_COLUMNS if c.name != "host_name"]


# --- groups, contacts ------------------------------------------------------------------------

def _hostgroup_rows(snap: Snapshot, user: str | None) -> Iterator[dict[str, Any]]:
    for name, (alias, members) in snap.host_groups().items():
        hosts = [CheckRow(snap, snap.objs.hosts[m], snap.objs.hosts[m], None).host_row for m in members
                 if user is None or snap.may_see(user, m, None)]
        if user is None or hosts:
            services = [s for h in hosts for s in _services_of(h)]
            yield {"name": name, "alias": alias, "hosts": hosts, "services": services}


def _group_counts(prefix: str, states: tuple[tuple[str, int], ...], of: str) -> list[Column]:
    out = [Column(f"num_{prefix}", "int", lambda g: len(g[of]), ""),
           Column(f"num_{prefix}_pending", "int", lambda g: sum(1 for r in g[of] if not r.checked), "")]
    for word, state in states:
        out.append(Column(f"num_{prefix}_{word}", "int",
                          lambda g, st=state: sum(1 for r in g[of] if r.checked and r.state == st), ""))
    return out


HOSTGROUP_COLUMNS = [
    Column("name", "string", lambda g: g["name"], ""),
    Column("alias", "string", lambda g: g["alias"], ""),
    Column("members", "list", lambda g: [r.host.name for r in g["hosts"]], "host names"),
    Column("members_with_state", "list", lambda g: [[r.host.name, r.state, int(r.checked)] for r in g["hosts"]],
           "[host, state, checked]"),
    Column("worst_host_state", "int", lambda g: max((r.state for r in g["hosts"]), default=0), ""),
    Column("worst_service_state", "int", lambda g: worst_service(r.state for r in g["services"]), ""),
    Column("notes", "string", lambda g: "", ""), Column("notes_url", "string", lambda g: "", ""),
    Column("action_url", "string", lambda g: "", ""),
    *_group_counts("hosts", (("up", 0), ("down", 1), ("unreach", 2)), "hosts"),
    *_group_counts("services", SERVICE_STATES, "services"),
]


def _servicegroup_rows(snap: Snapshot, user: str | None) -> Iterator[dict[str, Any]]:
    hosts = snap.objs.hosts
    for name, members in sorted(snap.service_groups().items()):
        rows = [CheckRow(snap, snap.objs.services[k], hosts[k[0]], k[1]) for k in members
                if user is None or snap.may_see(user, *k)]
        if user is None or rows:
            yield {"name": name, "alias": name, "services": rows}


SERVICEGROUP_COLUMNS = [
    Column("name", "string", lambda g: g["name"], ""),
    Column("alias", "string", lambda g: g["alias"], ""),
    Column("members", "list", lambda g: [[r.host.name, r.service] for r in g["services"]], "[host, service]"),
    Column("members_with_state", "list",
           lambda g: [[r.host.name, r.service, r.state, int(r.checked)] for r in g["services"]], ""),
    Column("worst_service_state", "int", lambda g: worst_service(r.state for r in g["services"]), ""),
    Column("notes", "string", lambda g: "", ""), Column("notes_url", "string", lambda g: "", ""),
    Column("action_url", "string", lambda g: "", ""),
    *_group_counts("services", SERVICE_STATES, "services"),
]

CONTACT_COLUMNS = [
    Column("name", "string", lambda c: c.name, ""),
    Column("alias", "string", lambda c: c.alias or c.name, ""),
    Column("email", "string", lambda c: c.email, ""),
    Column("pager", "string", lambda c: c.jabber, "checkd: the Jabber ID"),
    Column("groups", "list", lambda c: list(c.groups), "contact groups"),
    Column("host_notification_period", "string", lambda c: c.notification_period or "", ""),
    Column("service_notification_period", "string", lambda c: c.notification_period or "", ""),
    Column("host_notifications_enabled", "int", lambda c: 1, ""),
    Column("service_notifications_enabled", "int", lambda c: 1, ""),
    Column("can_submit_commands", "int", lambda c: 1, ""),
    Column("in_host_notification_period", "int", lambda c: 1, ""),
    Column("in_service_notification_period", "int", lambda c: 1, ""),
    Column("custom_variable_names", "list", lambda c: [], ""),
    Column("custom_variable_values", "list", lambda c: [], ""),
]
CONTACTGROUP_COLUMNS = [
    Column("name", "string", lambda g: g.name, ""),
    Column("alias", "string", lambda g: g.alias or g.name, ""),
    Column("members", "list", lambda g: list(g.members), ""),
]


# --- comments, downtimes, log ----------------------------------------------------------------

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


def _comment_rows(snap: Snapshot, user: str | None) -> Iterator[Any]:
    return _on(snap.comments, snap, user)


def _downtime_rows(snap: Snapshot, user: str | None) -> Iterator[Any]:
    return _on(sorted((d for ds in snap.downtimes.values() for d in ds), key=lambda d: d.id), snap, user)


def _log_rows(snap: Snapshot, user: str | None) -> Iterator[Any]:
    return _on(snap.log, snap, user)


# --- status, columns -------------------------------------------------------------------------

STATUS_COLUMNS = [
    Column("program_start", "time", lambda s: int(s.started), ""),
    Column("program_version", "string", lambda s: f"checkd {__version__}", ""),
    Column("livestatus_version", "string", lambda s: LIVESTATUS_VERSION, ""),
    Column("nagios_pid", "int", lambda s: os.getpid(), ""),
    Column("num_hosts", "int", lambda s: len(s.objs.hosts), ""),
    Column("num_services", "int", lambda s: len(s.objs.services), ""),
    Column("connections", "int", lambda s: s.counters["connections"], "since start"),
    Column("requests", "int", lambda s: s.counters["requests"], "since start"),
    Column("interval_length", "int", lambda s: 60, "check_interval is in minutes"),
    Column("last_command_check", "time", lambda s: int(s.now), ""),
    Column("last_log_rotation", "time", lambda s: 0, ""),
    *[Column(name, "int", lambda s: 1, "always 1") for name in (
        "enable_notifications", "execute_service_checks", "execute_host_checks", "accept_passive_service_checks",
        "accept_passive_host_checks", "enable_event_handlers", "enable_flap_detection", "process_performance_data",
        "check_service_freshness", "check_host_freshness")],
    *[Column(name, "int", lambda s: 0, "always 0") for name in ("obsess_over_services", "obsess_over_hosts")],
]

TABLES: dict[str, Table] = {t.name: t for t in (
    _table("hosts", HOST_COLUMNS, _host_rows),
    _table("services", SERVICE_COLUMNS, _service_rows),
    _table("hostgroups", HOSTGROUP_COLUMNS, _hostgroup_rows),
    _table("servicegroups", SERVICEGROUP_COLUMNS, _servicegroup_rows),
    _table("contacts", CONTACT_COLUMNS, lambda s, u: s.objs.contacts.values()),
    _table("contactgroups", CONTACTGROUP_COLUMNS, lambda s, u: s.objs.contact_groups.values()),
    _table("comments", COMMENT_COLUMNS, _comment_rows, reads="comments"),
    _table("downtimes", DOWNTIME_COLUMNS, _downtime_rows),
    _table("log", LOG_COLUMNS, _log_rows, reads="log"),
    _table("status", STATUS_COLUMNS, lambda s, u: [s]),
)}


def _columns_rows(snap: Snapshot, user: str | None) -> Iterator[tuple[str, Column]]:
    for t in TABLES.values():
        for c in t.columns.values():
            yield t.name, c


COLUMNS_TABLE = _table("columns", [
    Column("table", "string", lambda tc: tc[0], ""),
    Column("name", "string", lambda tc: tc[1].name, ""),
    Column("type", "string", lambda tc: tc[1].type, ""),
    Column("description", "string", lambda tc: tc[1].description, ""),
], _columns_rows)
TABLES["columns"] = COLUMNS_TABLE


def comment_row(r: tuple[Any, ...]) -> CommentRow:
    return CommentRow(r[0], r[1], r[2] or None, r[3], r[4], r[5])
