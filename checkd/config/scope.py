"""What a downtime covers, as operators name it: hosts (names or glob patterns like
`db*`), host groups, sites, and optionally services (names or patterns). A scope is
resolved against the configuration when a downtime is made, one downtime per host (a
host downtime covers its services) or per service: that is what the notification
stages, the notices and the pollers' copies work with. A recurring schedule resolves
its scope again at each occurrence, so a host added to a group is covered from the
next one (Icinga 2's ScheduledDowntime does the same).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from checkd.result import CheckKey

if TYPE_CHECKING:
    from checkd.config.model import Objects

KEYS = ("hosts", "hostgroups", "sites", "services")
MAX_TARGETS = 100_000


class ScopeError(ValueError):
    """A scope that names nothing, or something unknown; the text says which."""


@dataclasses.dataclass(frozen=True, slots=True)
class CheckScope:
    hosts: tuple[str, ...] = ()         # names or glob patterns (*, ?, [..])
    hostgroups: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    services: tuple[str, ...] = ()      # none: the hosts themselves (and so all their services)

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> CheckScope:
        """From an API body or a config entry: each key a name or a list of names."""
        values: dict[str, tuple[str, ...]] = {}
        for key in KEYS:
            v = d.get(key, ())
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
                raise ScopeError(f"{key}: expected a name or a list of names")
            values[key] = tuple(v)
        scope = cls(**values)
        if not (scope.hosts or scope.hostgroups or scope.sites):
            raise ScopeError("say which hosts: hosts (names or patterns like db*), hostgroups or sites")
        return scope

    def json(self) -> dict[str, list[str]]:
        return {k: list(getattr(self, k)) for k in KEYS if getattr(self, k)}

    def label(self) -> str:
        """For lists and comments: `hostgroups=web services=HTTP*`."""
        return " ".join(f"{k}={','.join(getattr(self, k))}" for k in KEYS if getattr(self, k))

    def targets(self, objs: Objects) -> list[CheckKey]:
        """(host, None) per host, or (host, service) per matching service, in config order.
        ScopeError for a group or site that does not exist, or a scope that matches nothing."""
        for g in self.hostgroups:
            if g not in objs.host_groups and not any(g in h.groups for h in objs.hosts.values()):
                raise ScopeError(f"unknown host group {g!r}")
        known_sites = {h.site for h in objs.hosts.values()}
        for s in self.sites:
            if s not in known_sites:
                raise ScopeError(f"unknown site {s!r}")
        for name in self.hosts:
            if not any(ch in name for ch in "*?[") and name not in objs.hosts:
                raise ScopeError(f"unknown host {name!r}")
        hosts = [h for h in objs.hosts.values() if self._has_host(h.name, h.groups, h.site, objs)]
        if not self.services:
            out: list[CheckKey] = [(h.name, None) for h in hosts]
        else:
            names = {h.name for h in hosts}
            out = [key for key, svc in objs.services.items() if key[0] in names
                   and any(fnmatch.fnmatchcase(svc.description, p) for p in self.services)]
        if not out:
            raise ScopeError(f"{self.label()} matches no {'service' if self.services else 'host'}")
        if len(out) > MAX_TARGETS:
            raise ScopeError(f"{self.label()} matches {len(out)} checks; at most {MAX_TARGETS}")
        return out

    def _has_host(self, name: str, groups: tuple[str, ...], site: str, objs: Objects) -> bool:
        if any(fnmatch.fnmatchcase(name, p) for p in self.hosts):
            return True
        if any(g in groups or name in (objs.host_groups[g].members if g in objs.host_groups else ())
               for g in self.hostgroups):
            return True
        return site in self.sites
