"""Cross-object checks: every name used refers to something defined, no cycles.

Run after all objects are read, so a reference may point into any file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from checkd.config.errors import Problems, did_you_mean
from checkd.config.model import Host, Objects, Where


def _need(names: Iterable[str], known: Mapping[str, object], what: str, where: Where,
          problems: Problems, hint: str = "") -> None:
    for name in names:
        if name not in known:
            problems.add(where.file, where.line, f"undefined {what} {name!r}{did_you_mean(name, known)}{hint}")


def check_parents(hosts: Mapping[str, Host], problems: Problems) -> None:
    for host in hosts.values():
        _need(host.parents, hosts, "parent host", host.where, problems)
        if host.name in host.parents:
            problems.add(host.where.file, host.where.line, f"host {host.name!r} is its own parent")
    # A cycle (a -> b -> a) would make reachability undefined.
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for parent in hosts[name].parents:
            if parent not in hosts or parent == name:
                continue
            if state.get(parent) == 1:
                loop = " -> ".join([*path[path.index(parent):], parent])
                w = hosts[name].where
                problems.add(w.file, w.line, f"cycle in parents: {loop}")
            elif parent not in state:
                visit(parent, [*path, parent])
        state[name] = 2

    for name in hosts:
        if name not in state:
            visit(name, [name])


def check_references(objs: Objects, problems: Problems) -> None:
    check_parents(objs.hosts, problems)
    periods = objs.timeperiods
    for host in objs.hosts.values():
        _need(host.groups, objs.host_groups, "hostgroup", host.where, problems, "; define it under hostgroups:")
        _need(host.notify.contacts, objs.contacts, "contact", host.where, problems)
        _need(host.notify.contact_groups, objs.contact_groups, "contact group", host.where, problems)
        for p in (host.schedule.check_period, host.notify.notification_period):
            _need([p] if p else [], periods, "timeperiod", host.where, problems)
        if objs.sites and host.site not in objs.sites and host.site != "central":
            problems.add(host.where.file, host.where.line,
                         f"host {host.name!r} is in undefined site {host.site!r}"
                         f"{did_you_mean(host.site, objs.sites)}; add it under sites:")
    for svc in objs.services.values():
        _need(svc.notify.contacts, objs.contacts, "contact", svc.where, problems)
        _need(svc.notify.contact_groups, objs.contact_groups, "contact group", svc.where, problems)
        for p in (svc.schedule.check_period, svc.notify.notification_period):
            _need([p] if p else [], periods, "timeperiod", svc.where, problems)
    for group in objs.host_groups.values():
        _need(group.members, objs.hosts, "host", group.where, problems, f" in hostgroup {group.name!r}")
    for group in objs.contact_groups.values():
        _need(group.members, objs.contacts, "contact", group.where, problems,
              f" in contact group {group.name!r}")
    for contact in objs.contacts.values():
        _need(contact.groups, objs.contact_groups, "contact group", contact.where, problems)
        p = contact.notification_period
        _need([p] if p else [], periods, "timeperiod", contact.where, problems)
    for tp in periods.values():
        _need(tp.exclude, periods, "timeperiod", tp.where, problems, f" in exclude of {tp.name!r}")
