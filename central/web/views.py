"""What the overview shows, as plain data: totals per state, one strip per site
and the open problems under the URL's filter, ordered like `wassup` (with the
unhandled ones first). Rows are the read API's event JSON, so the page, the API
and the chat bot say the same thing about a problem.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from multidict import MultiMapping

from central.read_api import ReadApi
from central.takeover import CENTRAL_SITE
from checkd.wassup import worst_first


HOST_STATES = ("UP", "DOWN", "UNREACHABLE")
SERVICE_STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
# Totals are shown worst first, the good states last.
TOTALS_ORDER = ("DOWN", "UNREACHABLE", "CRITICAL", "UNKNOWN", "WARNING", "PENDING", "UP", "OK")
STATES = frozenset(TOTALS_ORDER)
PROBLEM_STATES = frozenset(TOTALS_ORDER[:5])


@functools.lru_cache(maxsize=1 << 16)          # quoting thousands of names per render adds up
def host_url(host: str) -> str:
    return "/host/" + quote(host, safe="")


@functools.lru_cache(maxsize=1 << 16)
def service_url(host: str, service: str) -> str:
    return f"/service/{quote(host, safe='')}/{quote(service, safe='')}"


def check_url(host: str, service: str | None) -> str:
    return host_url(host) if service is None else service_url(host, service)


def _matcher(pattern: str) -> Callable[[str], bool] | None:
    """Case-insensitive: a substring, or a shell pattern when it has * ? or [."""
    p = pattern.strip().lower()
    if not p:
        return None
    if any(c in p for c in "*?["):
        return lambda s: fnmatch.fnmatchcase(s.lower(), p)
    return lambda s: p in s.lower()


@dataclasses.dataclass(frozen=True)
class Filters:
    """The overview's filter, all from the URL so a view can be bookmarked."""

    host: str = ""
    service: str = ""
    site: str = ""
    group: str = ""
    states: tuple[str, ...] = ()
    hide_handled: bool = False
    limit: str = ""                     # rows shown: a number, "all", or "" for the configured default

    @classmethod
    def from_query(cls, q: MultiMapping[str]) -> Filters:
        """`q`: the request's query (repeated keys: ?state=critical&state=warning)."""
        states: list[str] = []
        for value in q.getall("state", []):
            states += [s.strip().upper() for s in value.split(",") if s.strip().upper() in STATES]
        return cls(host=q.get("host", "")[:200], service=q.get("service", "")[:200], site=q.get("site", "")[:200],
                   group=q.get("group", "")[:200], states=tuple(dict.fromkeys(states)),
                   hide_handled=q.get("handled", "") == "hide",
                   limit=lim if (lim := q.get("limit", "")) == "all" or lim.isdigit() and 0 < len(lim) < 7 else "")

    @property
    def active(self) -> bool:
        return bool(self.host or self.service or self.site or self.group or self.states or self.hide_handled)

    def pairs(self) -> list[tuple[str, str]]:
        out = [(k, v) for k, v in (("host", self.host), ("service", self.service), ("site", self.site),
                                   ("group", self.group)) if v]
        out += [("state", s) for s in self.states]
        if self.hide_handled:
            out.append(("handled", "hide"))
        if self.limit:
            out.append(("limit", self.limit))
        return out

    def rows(self, default: int) -> int | None:
        """How many problem rows to show; None: all of them."""
        if self.limit == "all":
            return None
        return max(1, int(self.limit)) if self.limit else default

    def query(self) -> str:
        return urlencode(self.pairs())


class Scope:
    """Which hosts and services the filter keeps (states aside)."""

    def __init__(self, read: ReadApi, f: Filters):
        objs = read.live.objs
        self.host_ok = _matcher(f.host)
        self.service_ok = _matcher(f.service)
        self.site = f.site
        self.group_hosts: set[str] | None = None
        self.group_services: set[tuple[str, str]] | None = None
        self.has_service_filter = self.service_ok is not None
        if f.group:
            g = objs.host_groups.get(f.group)
            self.group_hosts = {h.name for h in objs.hosts.values() if f.group in h.groups}
            self.group_hosts |= set(g.members) if g is not None else set()
            self.group_services = {k for k, s in objs.services.items() if f.group in s.groups}

    def site_of(self, read: ReadApi, host: str) -> str:
        h = read.live.objs.hosts.get(host)
        return h.site if h is not None else CENTRAL_SITE

    def keeps(self, host: str, service: str | None, site: str) -> bool:
        if self.site and site != self.site:
            return False
        if self.host_ok is not None and not self.host_ok(host):
            return False
        if self.service_ok is not None and (service is None or not self.service_ok(service)):
            return False
        if self.group_hosts is not None and self.group_services is not None:
            if host not in self.group_hosts and (service is None or (host, service) not in self.group_services):
                return False
        return True


def totals(read: ReadApi, scope: Scope) -> list[tuple[str, int]]:
    """(state, count) for every state with a count, hosts and services in one line."""
    counts: Counter[str] = Counter()
    checks = read.store.checks
    for name, h in read.live.objs.hosts.items():
        if not scope.keeps(name, None, h.site) or scope.has_service_filter:
            continue
        v = checks.get((name, None))
        if v is not None and v.last_check:
            counts[HOST_STATES[v.status] if 0 <= v.status < 3 else "UNREACHABLE"] += 1
        else:
            counts["UP" if h.check is None else "PENDING"] += 1
    for key in read.live.objs.services:
        if not scope.keeps(key[0], key[1], read.live.objs.hosts[key[0]].site):
            continue
        v = checks.get(key)
        counts[SERVICE_STATES[v.status] if v is not None and v.last_check and 0 <= v.status < 4 else "PENDING"] += 1
    # Central's own checks (a site taken over: @checkd/Site NAME) are not in the config.
    for (host, service), v in checks.items():
        if host not in read.live.objs.hosts and service is not None and scope.keeps(host, service, CENTRAL_SITE):
            counts[SERVICE_STATES[v.status] if 0 <= v.status < 4 else "UNKNOWN"] += 1
    return [(s, counts[s]) for s in TOTALS_ORDER if counts[s]]


def sites(read: ReadApi, f: Filters, now: float) -> list[dict[str, Any]]:
    """Per site: its pollers (connected or stale) and whether central polls it itself.
    A connected poller's last-heard time is left out: it changes with every heartbeat."""
    names = sorted({h.site for h in read.live.objs.hosts.values()} | {a.site for a in read.live.node.pollers.values()})
    out = []
    for site in names:
        if f.site and site != f.site:
            continue
        pollers = []
        for name, auth in sorted(read.live.node.pollers.items()):
            if auth.site != site:
                continue
            ps = read.store.pollers.get(name)
            seen = ps.last_seen if ps is not None and ps.last_seen else None
            connected = seen is not None and now - seen <= read.takeover.stale_after(site)
            pollers.append({"name": name, "connected": connected, "last_seen": None if connected else seen})
        takeover = site != CENTRAL_SITE and read.takeover.polled_by_central(site)
        if site == CENTRAL_SITE:
            state = "central"
        elif takeover:
            state = "takeover"
        elif pollers and all(p["connected"] for p in pollers):
            state = "connected"
        else:
            state = "stale"
        out.append({"site": site, "state": state, "pollers": pollers, "url": "/?" + urlencode({"site": site})})
    return out


def problems(read: ReadApi, scope: Scope, f: Filters, now: float) -> list[dict[str, Any]]:
    """Open events under the filter: unhandled first, then worst and newest first.
    Handled: acknowledged, notifications muted, or a service on a host that is down."""
    out = []
    checks = read.store.checks
    for ev in read.store.open_events.values():
        site = scope.site_of(read, ev.host)
        if not scope.keeps(ev.host, ev.service, site):
            continue
        p = read.event_json(ev, now)
        if f.states and p["state"] not in f.states:
            continue
        p["handled"] = bool(p["acknowledged"] or p["muted"] or p["suppressed"])
        if f.hide_handled and p["handled"]:
            continue
        v = checks.get(ev.key)
        p["output"] = v.output if v is not None else ""
        p["site"] = site
        p["taken_over"] = v is not None and v.polled_by == CENTRAL_SITE and site != CENTRAL_SITE
        known = ev.host in read.live.objs.hosts        # not central's own @checkd events
        p["url"] = check_url(ev.host, ev.service) if known else None
        p["host_url"] = host_url(ev.host) if known else None
        out.append(p)
    out.sort(key=lambda p: (p["handled"], *worst_first(p)))
    return out


def overview(read: ReadApi, f: Filters, now: float) -> dict[str, Any]:
    scope = Scope(read, f)
    rows = problems(read, scope, f, now)
    unhandled = Counter(p["state"] for p in rows if not p["handled"])
    counts = totals(read, scope)
    strip = sites(read, f, now)
    # "ALL OK" only when it is known: not while checks have no result yet or a site has gone quiet.
    caveats = [f"{n} check{'s have' if n != 1 else ' has'} no result yet" for s, n in counts if s == "PENDING"]
    caveats += [f"site {s['site']}: no word from its poller" for s in strip if s["state"] == "stale"]
    return {"totals": counts, "sites": strip, "problems": rows, "caveats": caveats,
            "unhandled": sum(unhandled.values()), "unhandled_by_state": dict(unhandled),
            "checks": sum(n for _, n in counts)}
