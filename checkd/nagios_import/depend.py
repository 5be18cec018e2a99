"""servicedependency / hostdependency -> `dependencies:` entries: each side's checks resolved
(host and host group lists, `*`, service groups, Nagios' same-host dependency) and written as
few selectors as say them; criteria letters become state names, and Nagios' default (none)
is written `[none]`, since checkd's own default differs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from checkd.nagios_import.parse import Definition
from checkd.nagios_import.report import Report
from checkd.nagios_import.resolve import select, split_list
from checkd.result import CheckKey

SERVICE_CRITERIA = {"o": "ok", "w": "warning", "c": "critical", "u": "unknown", "p": "pending", "n": "none"}
HOST_CRITERIA = {"o": "up", "d": "down", "u": "unreachable", "p": "pending", "n": "none"}


def services_on(d: Definition, hosts: list[str], descs: list[str], groups: list[str],
                services_of: Callable[[str], list[str]], servicegroups: Mapping[str, set[CheckKey]],
                report: Report) -> list[CheckKey]:
    """`descs` (with `*` and `!x`) on each of `hosts`, plus the members of service `groups`;
    services that were not carried over are reported and left out."""
    out: list[CheckKey] = []
    for h in hosts:
        known = services_of(h)
        for s in sorted(select(descs, known)):
            if s in known:
                out.append((h, s))
            else:
                report.add(*d.where(), f"{d.type}: {h} has no service {s!r} (or it was not carried over); "
                                       "left out of the dependency")
    for g in groups:
        if g not in servicegroups:
            report.add(*d.where(), f"{d.type}: servicegroup {g!r} has no services carried over")
        out.extend(sorted(servicegroups.get(g, ())))
    return list(dict.fromkeys(out))


def selector(checks: list[CheckKey]) -> dict[str, Any] | list[dict[str, Any]]:
    """As few selectors as name `checks`: hosts with the same services share one."""
    by_host: dict[str, list[str | None]] = {}
    for host, service in checks:
        by_host.setdefault(host, []).append(service)
    shared: dict[tuple[str | None, ...], list[str]] = {}
    for host, services in by_host.items():
        shared.setdefault(tuple(services), []).append(host)
    out = []
    for services, hosts in shared.items():
        sel: dict[str, Any] = {"host": hosts[0]} if len(hosts) == 1 else {"hosts": hosts}
        if services != (None,):
            sel.update({"service": services[0]} if len(services) == 1 else {"services": list(services)})
        out.append(sel)
    return out[0] if len(out) == 1 else out


def entry(d: Definition, a: dict[str, str], masters: list[CheckKey], dependents: list[CheckKey],
          report: Report) -> dict[str, Any] | None:
    """One `dependencies:` entry, or None (reported) when a side names nothing carried over."""
    if not masters or not dependents:
        report.add(*d.where(), f"{d.type}: no {'master' if not masters else 'dependent'} check carried over; "
                               "not carried over")
        return None
    letters = SERVICE_CRITERIA if d.type == "servicedependency" else HOST_CRITERIA
    out: dict[str, Any] = {"master": selector(masters), "dependent": selector(dependents),
                           "notification_failure_criteria": _criteria(d, a, "notification_failure_criteria",
                                                                      letters, report)}
    execute = _criteria(d, a, "execution_failure_criteria", letters, report)
    if execute != ["none"]:
        out["execution_failure_criteria"] = execute
    if a.get("inherits_parent", "0").strip() not in ("0", ""):
        out["inherits_parent"] = True
    if a.get("dependency_period"):
        out["period"] = a["dependency_period"]
    return out


def _criteria(d: Definition, a: dict[str, str], key: str, letters: Mapping[str, str], report: Report) -> list[str]:
    names = []
    for letter in split_list(a.get(key)):
        if letter in letters:
            names.append(letters[letter])
        else:
            report.add(*d.where(key), f"{d.type} {key}: unknown option {letter!r}, left out")
    return [n for n in names if n != "none"] or ["none"]
