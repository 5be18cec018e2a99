"""The `dependencies:` section: a dependent check waits for its master (Nagios'
servicedependency / hostdependency). Each entry names its checks by host, host group,
service or service group, and becomes one Dependency per (master, dependent) pair,
checked whole: names, states, periods, cycles, and sites for skipped checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from checkd.config import fields as f
from checkd.config.errors import Problems, did_you_mean
from checkd.config.model import Dependency, Objects, Where
from checkd.config.objects import hostgroup_members
from checkd.config.references import find_cycles
from checkd.config.yamlsource import Node, Seq
from checkd.result import CheckKey

DEPENDENCY_KEYS: dict[str, f.Converter] = {
    "master": f.raw, "dependent": f.raw, "notification_failure_criteria": f.names,
    "execution_failure_criteria": f.names, "inherits_parent": f.boolean, "period": f.text,
}
SELECTOR_KEYS: dict[str, f.Converter] = {
    "host": f.names, "hosts": f.names, "hostgroups": f.names,
    "service": f.names, "services": f.names, "servicegroups": f.names,
}
SERVICE_STATES = ("ok", "warning", "critical", "unknown", "pending")
HOST_STATES = ("up", "down", "unreachable", "pending")
# Without notification_failure_criteria a dependency holds while its master has a real
# problem (Icinga 2's default; Nagios' is none, which the importer writes out as `[none]`).
DEFAULT_NOTIFICATION = {True: frozenset({"critical", "unknown"}), False: frozenset({"down", "unreachable"})}
SHAPE = "{host: db1, service: MySQL}"


def label(key: CheckKey) -> str:
    """`db1/MySQL`, or `db1` for a host check: how messages and cycles name a check."""
    return key[0] if key[1] is None else f"{key[0]}/{key[1]}"


def read_dependencies(docs: list[Node], objs: Objects, problems: Problems) -> dict[CheckKey, tuple[Dependency, ...]]:
    """Every `dependencies:` entry of every file, by dependent check."""
    members = hostgroup_members(objs.hosts, objs.host_groups)
    out: dict[CheckKey, list[Dependency]] = {}
    for doc in docs:
        value = doc.get("dependencies")
        if value is None:
            continue
        if not isinstance(value, Seq) or not all(isinstance(v, Node) for v in value):
            problems.add(doc.file, doc.line_of("dependencies"),
                         f"dependencies: expected a list of mappings like {{master: {SHAPE}, dependent: ...}}")
            continue
        for node in value:
            for dep in _read(node, objs, members, problems):
                out.setdefault(dep.dependent, []).append(dep)
    deps = {k: tuple(v) for k, v in out.items()}
    _check_cycles(deps, problems)
    return deps


def _read(node: Node, objs: Objects, members: Mapping[str, set[str]], problems: Problems) -> list[Dependency]:
    d = f.convert(node, DEPENDENCY_KEYS, problems, "dependency")
    where = Where(node.file, node.line)
    sides: dict[str, list[CheckKey]] = {}
    for side in ("master", "dependent"):
        if side not in node:
            problems.add(node.file, node.line, f"dependency without {side}: add e.g. `{side}: {SHAPE}`")
            return []
        sides[side] = _checks(node[side], node, side, objs, members, problems)
    period = d.get("period")
    if period is not None and period not in objs.timeperiods:
        problems.add(*node.where_of("period"),
                     f"undefined timeperiod {period!r}{did_you_mean(period, objs.timeperiods)} in dependency")
    out = []
    for master in sides["master"]:
        notify = _criteria(node, "notification_failure_criteria", d, master, problems)
        execute = _criteria(node, "execution_failure_criteria", d, master, problems)
        if notify is None or execute is None:
            return []
        for dependent in sides["dependent"]:
            if dependent == master:
                problems.add(node.file, node.line, f"{label(master)} depends on itself")
                continue
            out.append(Dependency(master, dependent, notify, execute, d.get("inherits_parent", False), period,
                                  where))
            m_site, d_site = objs.hosts[master[0]].site, objs.hosts[dependent[0]].site
            if execute and m_site != d_site:    # a poller would wait for a state it never sees
                problems.add(*node.where_of("execution_failure_criteria"),
                             f"execution_failure_criteria across sites: {label(dependent)} ({d_site}) would wait "
                             f"for {label(master)} ({m_site}), whose state a {d_site} poller does not know; drop "
                             "execution_failure_criteria (central still holds the notifications) or keep "
                             "both in one site")
    return out


def _checks(value: Any, node: Node, side: str, objs: Objects, members: Mapping[str, set[str]],
            problems: Problems) -> list[CheckKey]:
    """The checks a `master:` or `dependent:` names: a selector mapping or a list of them."""
    items = value if isinstance(value, list) else [value]
    out: list[CheckKey] = []
    for sel in items:
        if not isinstance(sel, Node):
            problems.add(*node.where_of(side), f"{side}: expected a mapping like {SHAPE} or a list of them")
            continue
        out.extend(_select(sel, side, objs, members, problems))
    return list(dict.fromkeys(out))


def _select(sel: Node, side: str, objs: Objects, members: Mapping[str, set[str]],
            problems: Problems) -> list[CheckKey]:
    d = f.convert(sel, SELECTOR_KEYS, problems, side)
    hosts = [*d.get("host", ()), *d.get("hosts", ())]
    for h in hosts:
        if h not in objs.hosts:
            problems.add(sel.file, sel.line, f"{side}: undefined host {h!r}{did_you_mean(h, objs.hosts)}")
    for g in d.get("hostgroups", ()):
        if g not in members:
            problems.add(*sel.where_of("hostgroups"), f"{side}: undefined hostgroup {g!r}{did_you_mean(g, members)}")
        hosts.extend(sorted(members.get(g, ())))
    hosts = [h for h in dict.fromkeys(hosts) if h in objs.hosts]
    services = [*d.get("service", ()), *d.get("services", ())]
    groups = d.get("servicegroups", ())
    if not any(k in sel for k in ("host", "hosts", "hostgroups", "servicegroups")):
        problems.add(sel.file, sel.line, f"{side} names no check: give host: (with service: for a service "
                                         "check), hosts:, hostgroups: or servicegroups:")
        return []
    if groups and hosts and not services:
        problems.add(sel.file, sel.line, f"{side}: hosts and servicegroups: add service: for the hosts, "
                                         "or give the hosts a selector of their own")
        return []
    out: list[CheckKey] = []
    if services:
        for h in hosts:
            for s in services:
                if (h, s) in objs.services:
                    out.append((h, s))
                else:
                    theirs = [svc for host, svc in objs.services if host == h]
                    problems.add(sel.file, sel.line,
                                 f"{side}: host {h!r} has no service {s!r}{did_you_mean(s, theirs)}")
    elif not groups:
        out.extend((h, None) for h in hosts)
    for g in groups:
        found = [k for k, svc in objs.services.items() if g in svc.groups]
        if not found:
            problems.add(*sel.where_of("servicegroups"),
                         f"{side}: no service is in servicegroup {g!r} (services join one with servicegroups:)")
        out.extend(found)
    return out


def _criteria(node: Node, key: str, d: dict[str, Any], master: CheckKey,
              problems: Problems) -> frozenset[str] | None:
    """The master states named by `key`, checked against the master's kind; None: a mistake."""
    is_service = master[1] is not None
    if key not in d:
        return DEFAULT_NOTIFICATION[is_service] if key.startswith("notification") else frozenset()
    allowed = SERVICE_STATES if is_service else HOST_STATES
    bad = [s for s in d[key] if s not in (*allowed, "none")]
    for state in bad:
        problems.add(*node.where_of(key),
                     f"{key}: {state!r} is not a state of {'service' if is_service else 'host'} {label(master)} "
                     f"(the master){did_you_mean(state, allowed)}; use {', '.join(allowed)} or none")
    return None if bad else frozenset(d[key]) - {"none"}


def _check_cycles(deps: Mapping[CheckKey, Iterable[Dependency]], problems: Problems) -> None:
    """A cycle would hold both ends for ever (or skip both checks): refused, per kind, as Nagios does."""
    kinds: tuple[tuple[str, Callable[[Dependency], frozenset[str]]], ...] = (
        ("notification", lambda dep: dep.notification_failure), ("execution", lambda dep: dep.execution_failure))
    for kind, states in kinds:
        edges: dict[str, list[str]] = {}
        where: dict[tuple[str, str], Where] = {}
        for dependent, items in deps.items():
            for dep in items:
                if states(dep):
                    edges.setdefault(label(dependent), []).append(label(dep.master))
                    edges.setdefault(label(dep.master), [])
                    where.setdefault((label(dependent), label(dep.master)), dep.where)
        for name, loop in find_cycles(edges):
            w = where[(name, loop.rsplit(" -> ", 1)[1])]
            problems.add(w.file, w.line, f"cycle in {kind} dependencies: {loop}")
