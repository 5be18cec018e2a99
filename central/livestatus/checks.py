"""The tables of checks and their groups: hosts, services (with every host column again
as host_...), hostgroups, servicegroups, contacts, contactgroups, mapped from central's
configuration and a Snapshot of its state. Rows functions take the snapshot, the AuthUser
(None: everyone) and, for hosts and services, the hosts the filters name (None: all)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from central.livestatus.columns import CheckRow, Column, check_columns
from central.livestatus.snapshot import Snapshot


def host_rows(snap: Snapshot, user: str | None, only: set[str] | None = None) -> Iterator[CheckRow]:
    hosts = snap.objs.hosts
    for h in hosts.values() if only is None else [hosts[n] for n in hosts if n in only]:
        if user is None or snap.may_see(user, h.name, None):
            yield CheckRow(snap, h, h, None).host_row


def service_rows(snap: Snapshot, user: str | None, only: set[str] | None = None) -> Iterator[CheckRow]:
    hosts = snap.objs.hosts
    if only is None:
        services: Iterable[Any] = snap.objs.services.values()
    else:       # the services of the hosts the filter names, in configuration order
        services = sorted((s for n in only for s in snap.services_of.get(n, ())), key=snap.service_order)
    for svc in services:
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
               lambda r: [[s.service, s.state, int(s.checked)] for s in _services_of(r)],
               "[description, state, checked]"),
        Column("services_with_info", "list",
               lambda r: [[s.service, s.state, int(s.checked), s.view.output if s.view else ""]
                          for s in _services_of(r)],
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

def hostgroup_rows(snap: Snapshot, user: str | None) -> Iterator[dict[str, Any]]:
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


def servicegroup_rows(snap: Snapshot, user: str | None) -> Iterator[dict[str, Any]]:
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
