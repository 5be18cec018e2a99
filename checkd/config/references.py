"""Cross-object checks: every name used refers to something defined, no cycles.

Run after all objects are read, so a reference may point into any file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from checkd.config.errors import Problems, did_you_mean
from checkd.config.model import Host, Notify, Objects, SiteRule, TimePeriod, Where


def _need(names: Iterable[str], known: Mapping[str, object], what: str, where: Where,
          problems: Problems, hint: str = "") -> None:
    for name in names:
        if name not in known:
            problems.add(where.file, where.line, f"undefined {what} {name!r}{did_you_mean(name, known)}{hint}")


def find_cycles(edges: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """(where the loop closes, "a -> b -> a") for each cycle met in a depth-first walk.

    Names not in `edges` and self-loops are left to the caller's own checks.
    """
    found: list[tuple[str, str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in edges[name]:
            if nxt not in edges or nxt == name:
                continue
            if state.get(nxt) == 1:
                found.append((name, " -> ".join([*path[path.index(nxt):], nxt])))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[name] = 2

    for name in edges:
        if name not in state:
            visit(name, [name])
    return found


def check_parents(hosts: Mapping[str, Host], problems: Problems) -> None:
    for host in hosts.values():
        _need(host.parents, hosts, "parent host", host.where, problems)
        if host.name in host.parents:
            problems.add(host.where.file, host.where.line, f"host {host.name!r} is its own parent")
    # A cycle (a -> b -> a) would make reachability undefined.
    for name, loop in find_cycles({n: h.parents for n, h in hosts.items()}):
        w = hosts[name].where
        problems.add(w.file, w.line, f"cycle in parents: {loop}")


def check_timeperiods(periods: Mapping[str, TimePeriod], problems: Problems) -> None:
    for tp in periods.values():
        _need(tp.exclude, periods, "timeperiod", tp.where, problems, f" in exclude of {tp.name!r}")
        if tp.name in tp.exclude:
            problems.add(tp.where.file, tp.where.line, f"timeperiod {tp.name!r} excludes itself")
    # A cycle would make "active" undefined (and its evaluation endless).
    for name, loop in find_cycles({n: tp.exclude for n, tp in periods.items()}):
        w = periods[name].where
        problems.add(w.file, w.line, f"cycle in exclude: {loop}")


def check_notify(notify: Notify, where: Where, objs: Objects, problems: Problems) -> None:
    """Contacts, groups and periods named by an object's notification keys and escalations."""
    periods = objs.timeperiods
    _need(notify.contacts, objs.contacts, "contact", where, problems)
    _need(notify.contact_groups, objs.contact_groups, "contact group", where, problems)
    _need([notify.notification_period] if notify.notification_period else [], periods, "timeperiod",
          where, problems)
    for esc in notify.escalations:
        _need(esc.contacts, objs.contacts, "contact", esc.where, problems, " in escalation")
        _need(esc.contact_groups, objs.contact_groups, "contact group", esc.where, problems, " in escalation")
        _need([esc.period] if esc.period else [], periods, "timeperiod", esc.where, problems, " in escalation")


def check_references(objs: Objects, problems: Problems) -> None:
    check_parents(objs.hosts, problems)
    periods = objs.timeperiods
    for host in objs.hosts.values():
        _need(host.groups, objs.host_groups, "hostgroup", host.where, problems, "; define it under hostgroups:")
        check_notify(host.notify, host.where, objs, problems)
        p = host.schedule.check_period
        _need([p] if p else [], periods, "timeperiod", host.where, problems)
        if objs.sites and host.site not in objs.sites and host.site != "central":
            how = (" (the last label of its name)" if host.site_rule is SiteRule.LAST_LABEL else "")
            problems.add(host.where.file, host.where.line,
                         f"host {host.name!r} is in undefined site {host.site!r}{how}"
                         f"{did_you_mean(host.site, objs.sites)}; add it under sites:"
                         + (", or give the host `site: ...`" if how else ""))
    for svc in objs.services.values():
        check_notify(svc.notify, svc.where, objs, problems)
        p = svc.schedule.check_period
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
    check_timeperiods(periods, problems)
