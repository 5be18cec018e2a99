"""Nagios inheritance and membership: templates (`name`, `use`, `register 0`),
`+` additive values, `null`, and the host sets of services, groups and escalations
(host_name / hostgroup_name lists with `*` and `!exclusions`, nested groups).
"""

from __future__ import annotations

from checkd.nagios_import.parse import Definition
from checkd.nagios_import.report import Report

NAME_KEYS = {"host": "host_name", "service": "service_description", "command": "command_name",
             "contact": "contact_name", "contactgroup": "contactgroup_name", "hostgroup": "hostgroup_name",
             "timeperiod": "timeperiod_name", "servicegroup": "servicegroup_name"}


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def uses(d: Definition) -> list[str]:
    return split_list(d.attrs.get("use"))


class Resolver:
    """Templates of each type by name, and each definition's attributes with inheritance applied."""

    def __init__(self, defs: list[Definition], report: Report) -> None:
        self.report = report
        self.templates: dict[tuple[str, str], Definition] = {}
        for d in defs:
            if "name" in d.attrs:
                key = (d.type, d.attrs["name"])
                if key in self.templates:
                    first = self.templates[key]
                    report.add(*d.where("name"), f"duplicate {d.type} template {key[1]!r} "
                                                 f"(first at {first.file}:{first.line}); the first is used")
                else:
                    self.templates[key] = d
        self._cache: dict[int, dict[str, str]] = {}

    def attrs(self, d: Definition, chain: tuple[str, ...] = ()) -> dict[str, str]:
        """Every attribute of `d` after inheritance (`use`, `name`, `register` not inherited)."""
        if id(d) in self._cache:
            return self._cache[id(d)]
        inherited: dict[str, str] = {}
        for name in uses(d):
            tpl = self.templates.get((d.type, name))
            if tpl is None:
                self.report.add(*d.where("use"), f"unknown {d.type} template {name!r}")
                continue
            if name in chain:
                self.report.add(*tpl.where("use"), f"template cycle: {' -> '.join([*chain, name])}")
                continue
            for k, v in self.attrs(tpl, chain + (name,)).items():
                inherited.setdefault(k, v)  # with several templates the first that sets a key wins
        out = {k: v for k, v in inherited.items() if k not in ("name", "register", "use")}
        for k, v in d.attrs.items():
            if k in ("use",):
                continue
            if v.startswith("+"):
                v = ",".join(split_list(out.get(k)) + split_list(v[1:]))
            out[k] = v
        out = {k: v for k, v in out.items() if v != "null"}
        self._cache[id(d)] = out
        return out


class Membership:
    """Who belongs to which hostgroup / contactgroup, nested groups and `*` included."""

    def __init__(self, hosts: dict[str, dict[str, str]], groups: dict[str, dict[str, str]],
                 member_key: str, group_key: str, nested_key: str) -> None:
        self.all = list(hosts)
        self.groups = groups
        self.declared: dict[str, set[str]] = {g: set() for g in groups}
        for name, a in hosts.items():
            for g in split_list(a.get(group_key)):
                self.declared.setdefault(g, set()).add(name)
        self.nested_key, self.member_key = nested_key, member_key

    def members(self, group: str, chain: tuple[str, ...] = ()) -> set[str]:
        a = self.groups.get(group, {})
        out = set(self.declared.get(group, set())) | select(split_list(a.get(self.member_key)), self.all)
        for sub in split_list(a.get(self.nested_key)):
            if sub not in chain:
                out |= self.members(sub, chain + (group,))
        return out


def select(names: list[str], everyone: list[str]) -> set[str]:
    """A Nagios name list: `*` is everyone, `!name` takes a name out."""
    chosen: set[str] = set()
    for n in names:
        if n == "*":
            chosen |= set(everyone)
        elif not n.startswith("!"):
            chosen.add(n)
    return chosen - {n[1:] for n in names if n.startswith("!")}


def target_hosts(attrs: dict[str, str], hosts: Membership) -> set[str]:
    """The hosts a service or escalation applies to: host_name plus hostgroup_name, minus exclusions."""
    host_names = split_list(attrs.get("host_name"))
    group_names = split_list(attrs.get("hostgroup_name"))
    chosen = select(host_names, hosts.all)
    groups = {g for g in group_names if not g.startswith("!")}
    if "*" in groups:
        groups = set(hosts.groups) | set(hosts.declared)
    for g in groups - {"*"}:
        chosen |= hosts.members(g)
    for g in group_names:
        if g.startswith("!"):
            chosen -= hosts.members(g[1:])
    return chosen - {n[1:] for n in host_names if n.startswith("!")}
