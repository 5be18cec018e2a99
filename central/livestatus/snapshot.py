"""What one Livestatus query reads: central's configuration and a copy of its state at one
moment, with the indexes the Nagios columns need (downtimes per check, services per host,
group members). The copy is made on the event loop between two awaits, so a query never
sees half of a result batch; the query itself then runs in a thread over the copy while
central goes on. Comments and log rows come from the database, read just before.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from checkd.config.model import Host, Objects, Service
from checkd.engine.notify.recipients import expand
from checkd.engine.store import CheckView, Downtime, Event, Phase, Store
from checkd.result import CheckKey


@dataclasses.dataclass(slots=True)
class CommentRow:
    id: int
    host: str
    service: str | None
    ts: float
    author: str
    text: str


@dataclasses.dataclass(slots=True)
class HistoryLine:
    """One row of an event's history, as Nagios' log would have had a line for it."""

    ts: float
    kind: str
    status: int | None
    output: str
    author: str
    host: str
    service: str | None
    event_id: int


class ObjectIndex:
    """What the configuration says, indexed once per configuration (a reload makes a new one):
    services per host, children of parents, group members, contacts with groups expanded."""

    def __init__(self, objs: Objects):
        self.objs = objs
        self.services_of: dict[str, list[Service]] = {}
        for svc in objs.services.values():
            self.services_of.setdefault(svc.host, []).append(svc)
        self.order = {k: i for i, k in enumerate(objs.services)}
        self.children: dict[str, list[str]] = {}
        for h in objs.hosts.values():
            for p in h.parents:
                self.children.setdefault(p, []).append(h.name)
        self.host_groups = _host_groups(objs)
        groups: dict[str, list[CheckKey]] = {}
        for svc in objs.services.values():
            for g in svc.groups:
                groups.setdefault(g, []).append(svc.key)
        self.service_groups = {g: tuple(keys) for g, keys in groups.items()}
        self._contacts: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[str, ...]] = {}

    def contacts(self, obj: Host | Service) -> tuple[str, ...]:
        key = (obj.notify.contacts, obj.notify.contact_groups)
        found = self._contacts.get(key)
        if found is None:
            found = self._contacts[key] = expand(self.objs, *key)
        return found


def _host_groups(objs: Objects) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (alias, members in config order): the group's own members and the hosts naming it."""
    members: dict[str, dict[str, None]] = {}
    alias = {}
    for name, g in objs.host_groups.items():
        members[name] = dict.fromkeys(g.members)
        alias[name] = g.alias or name
    for h in objs.hosts.values():
        for g in h.groups:
            members.setdefault(g, {})[h.name] = None
            alias.setdefault(g, g)
    return {g: (alias[g], tuple(m for m in objs.hosts if m in members[g])) for g in members}


class Snapshot:
    def __init__(self, index: ObjectIndex, store: Store, started: float, counters: dict[str, int],
                 comments: list[CommentRow] | None = None, log: list[HistoryLine] | None = None,
                 hosts: set[str] | None = None):
        """`hosts`: the query reads only these hosts and their services (None: all)."""
        self.index, self.objs = index, index.objs
        objs = index.objs
        self.services_of = index.services_of
        self.now = now = time.time()
        # Copies of what ingest changes in place (a CheckView per result, an Event on an ack).
        self.checks = {k: _copy(v) for k, v in store.checks.items()} if hosts is None else \
            {k: _copy(v) for k in _keys(index, hosts) if (v := store.checks.get(k)) is not None}
        self.events = {eid: dataclasses.replace(ev) for eid, ev in store.open_events.items()}
        self.muted_keys = frozenset(k for k, m in store.mutes.items() if m.active(now))
        deps = store.deployments
        self.muted_hosts = frozenset(h for h in objs.hosts if deps.muted(h, now) is not None) if deps.running \
            else frozenset()
        self.started, self.counters = started, counters
        self.comments = comments or []
        self.log = log or []
        self.downtimes: dict[CheckKey, list[Downtime]] = {}      # not over yet, by the object they are on
        self.depth: dict[CheckKey, int] = {}                     # in effect now, host-wide ones counted on services
        self._host_depth: dict[str, int] = {}
        for dt in store.downtimes.values():
            if dt.phase is Phase.ENDED:
                continue
            self.downtimes.setdefault((dt.host, dt.service), []).append(dt)
            w = dt.window()
            if w is not None and w[0] <= now < w[1]:
                self.depth[(dt.host, dt.service)] = self.depth.get((dt.host, dt.service), 0) + 1
                if dt.service is None:
                    self._host_depth[dt.host] = self._host_depth.get(dt.host, 0) + 1
        self.comments_of: dict[CheckKey, list[CommentRow]] = {}
        for c in self.comments:
            self.comments_of.setdefault((c.host, c.service), []).append(c)
        self.host_rows: dict[str, Any] = {}         # columns.CheckRow of each host, made when first read

    def event(self, view: CheckView | None) -> Event | None:
        return None if view is None or view.event_id is None else self.events.get(view.event_id)

    def notifications_off(self, host: str, service: str | None) -> bool:
        """Turned off for the check or its host, or its host is in a rollout (downtimes apart)."""
        return (host, None) in self.muted_keys or (host, service) in self.muted_keys or host in self.muted_hosts

    def downtime_depth(self, host: str, service: str | None) -> int:
        """Downtimes in effect on the check; on a service those of its host count too (a checkd
        host downtime covers its services, docs/downtimes.md)."""
        own = self.depth.get((host, service), 0)
        return own if service is None else own + self._host_depth.get(host, 0)

    def service_order(self, svc: Service) -> int:
        """Where a service is in the configuration (rows of a few hosts keep that order)."""
        return self.index.order[svc.key]

    def children(self, host: str) -> list[str]:
        return self.index.children.get(host, [])

    def contacts(self, obj: Host | Service) -> tuple[str, ...]:
        return self.index.contacts(obj)

    def may_see(self, user: str, host: str, service: str | None) -> bool:
        """AuthUser: a contact sees the hosts it is a contact of, and the services of its own
        and of its hosts (mk-livestatus' default, "loose" service authorization)."""
        h = self.objs.hosts.get(host)
        if h is not None and user in self.contacts(h):
            return True
        svc = self.objs.services.get((host, service)) if service is not None else None
        return svc is not None and user in self.contacts(svc)

    def host_groups(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        return self.index.host_groups

    def service_groups(self) -> dict[str, tuple[CheckKey, ...]]:
        return self.index.service_groups


def _copy(v: CheckView) -> CheckView:
    return CheckView(v.host, v.service, v.status, v.state_type, v.attempt, v.output, v.long_output, v.perfdata,
                     v.last_check, v.last_state_change, v.polled_by, v.event_id, v.flapping)


def _keys(index: ObjectIndex, hosts: set[str]) -> list[CheckKey]:
    return [k for h in hosts for k in ((h, None), *((h, s.description) for s in index.services_of.get(h, ())))]
