"""Every Livestatus table by name, with the column names Nagios tools use (checks.py: hosts,
services, groups, contacts; about.py: comments, downtimes, log), the status table and the
columns table that lists them all. `rows(snap, user)` yields the rows a user (AuthUser, or
None for everyone) may see; a column's `get` reads its value from a row."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from checkd import __version__
from central.livestatus import about, checks
from central.livestatus.columns import Column
from central.livestatus.snapshot import Snapshot

LIVESTATUS_VERSION = "1.5.0-checkd"        # clients parse it; mk-livestatus 1.5 is what this follows
Rows = Callable[..., Iterable[Any]]        # (snapshot, AuthUser or None[, host names]) -> rows


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, Column]
    rows: Rows
    reads: str = ""                     # "comments" | "log": rows the database holds
    by_host: tuple[str, ...] = ()       # columns naming the row's host: rows(snap, user, hosts) reads only theirs


def _table(name: str, cols: list[Column], rows: Rows, reads: str = "", by_host: tuple[str, ...] = ()) -> Table:
    return Table(name, {col.name: col for col in cols}, rows, reads, by_host)


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
    Column("check_external_commands", "int", lambda s: 1, "always 1: COMMAND works"),
    *[Column(name, "int", lambda s: 0, "always 0") for name in (
        "obsess_over_services", "obsess_over_hosts", "cached_log_messages", "external_commands", "host_checks",
        "service_checks", "neb_callbacks", "log_messages", "forks")],
    *[Column(name, "float", lambda s: 0.0, "always 0") for name in (
        "connections_rate", "requests_rate", "external_commands_rate", "host_checks_rate", "service_checks_rate",
        "neb_callbacks_rate", "log_messages_rate", "forks_rate")],
]

TABLES: dict[str, Table] = {t.name: t for t in (
    _table("hosts", checks.HOST_COLUMNS, checks.host_rows, by_host=("name", "host_name")),
    _table("services", checks.SERVICE_COLUMNS, checks.service_rows, by_host=("host_name",)),
    _table("hostgroups", checks.HOSTGROUP_COLUMNS, checks.hostgroup_rows),
    _table("servicegroups", checks.SERVICEGROUP_COLUMNS, checks.servicegroup_rows),
    _table("contacts", checks.CONTACT_COLUMNS, lambda s, u: s.objs.contacts.values()),
    _table("contactgroups", checks.CONTACTGROUP_COLUMNS, lambda s, u: s.objs.contact_groups.values()),
    _table("comments", about.COMMENT_COLUMNS, about.comment_rows, reads="comments"),
    _table("downtimes", about.DOWNTIME_COLUMNS, about.downtime_rows),
    _table("log", about.LOG_COLUMNS, about.log_rows, reads="log"),
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

