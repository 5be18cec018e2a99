"""`submitters:` in central's node file: who may send passive results (NRDP, `checkd submit`)
and about which hosts. Each submitter has its own token and a scope of hosts, host groups
and sites; a result for any other host is refused (docs/passive.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from checkd.config import fields as f
from checkd.config.errors import Problem, Problems, did_you_mean
from checkd.config.model import Group, Host, Objects, Where
from checkd.config.yamlsource import Node

SUBMITTER_KEYS = {"token": f.text, "token_file": f.text, "hosts": f.names, "hostgroups": f.names, "sites": f.names}
SCOPE_KEYS = ("hosts", "hostgroups", "sites")
Secret = Callable[[dict[str, Any], Node, str, Path, Problems], str]


@dataclasses.dataclass(frozen=True)
class Submitter:
    name: str
    token: str
    hosts: tuple[str, ...] = ()
    hostgroups: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    where: Mapping[str, Where] = dataclasses.field(default_factory=dict)   # of each scope key

    def may_report(self, host: Host, host_groups: Mapping[str, Group]) -> bool:
        """Whether `host` is in this submitter's scope: named, in one of its host groups
        (either side of the membership), or in one of its sites."""
        if host.name in self.hosts or host.site in self.sites:
            return True
        return any(g in host.groups or host.name in getattr(host_groups.get(g), "members", ())
                   for g in self.hostgroups)

    def scope(self) -> str:
        """The scope as people read it in a refusal: `hosts db1.ladc1; sites ladc1`."""
        parts = [f"{k} {', '.join(getattr(self, k))}" for k in SCOPE_KEYS if getattr(self, k)]
        return "; ".join(parts)


def read_submitters(value: Any, node: Node, base: Path, problems: Problems, secret: Secret) -> dict[str, Submitter]:
    """`submitters: {NAME: {token: ..., hosts: [...], hostgroups: [...], sites: [...]}}`."""
    if value is None:
        return {}
    if not isinstance(value, Node):
        problems.add(*node.where_of("submitters"),
                     "submitters: expected a mapping of name to {token:, hosts:, hostgroups:, sites:}")
        return {}
    out: dict[str, Submitter] = {}
    seen: dict[str, str] = {}
    for name, spec in value.items():
        if not isinstance(spec, Node):
            problems.add(value.file, value.line_of(name), f"submitters: {name}: expected {{token: ..., hosts: [...]}}")
            continue
        d = f.convert(spec, SUBMITTER_KEYS, problems, f"submitter {name!r}")
        token = secret(d, spec, "token", base, problems)
        if not token:
            problems.add(spec.file, spec.line, f"submitters: {name}: needs a token (or token_file)")
            continue
        if not any(d.get(k) for k in SCOPE_KEYS):
            problems.add(spec.file, spec.line, f"submitters: {name}: give the hosts it may report: "
                                               "hosts:, hostgroups: and/or sites:")
            continue
        if token in seen:
            # Tokens name the submitter: two with one token could not be told apart.
            problems.add(*spec.where_of("token" if "token" in spec else "token_file"),
                         f"submitters: {name}: same token as submitter {seen[token]!r}; give each its own")
            continue
        seen[token] = str(name)
        out[str(name)] = Submitter(str(name), token, d.get("hosts", ()), d.get("hostgroups", ()), d.get("sites", ()),
                                   {k: Where(*spec.where_of(k)) for k in SCOPE_KEYS if k in spec})
    return out


def scope_problems(submitters: Mapping[str, Submitter], objs: Objects) -> list[Problem]:
    """Scopes naming hosts, host groups or sites the objects do not have (checked once both are loaded)."""
    groups = set(objs.host_groups) | {g for h in objs.hosts.values() for g in h.groups}
    sites = {h.site for h in objs.hosts.values()} | set(objs.sites)
    known = {"hosts": objs.hosts.keys(), "hostgroups": groups, "sites": sites}
    what = {"hosts": "host", "hostgroups": "host group", "sites": "site"}
    out = []
    for sub in submitters.values():
        for key in SCOPE_KEYS:
            for name in getattr(sub, key):
                if name not in known[key]:
                    where = sub.where[key]
                    out.append(Problem(where.file, where.line, f"submitters: {sub.name}: {key}: no {what[key]} "
                                                               f"{name!r}{did_you_mean(name, known[key])}"))
    return out
