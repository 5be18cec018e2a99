"""The history search's filters as a URL gives them: each checked (a mistake is a clear
message, never an empty answer), then host groups, sites and name patterns resolved to
the names the history holds, for checkd/engine/history.py `search`. Shared by
GET /api/v1/history and the /history page (docs/history.md)."""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import math
from collections.abc import Callable, Collection, Iterable
from typing import Any
from urllib.parse import urlencode

from multidict import MultiMapping

from checkd.config.model import Objects
from checkd.durations import parse_duration
from checkd.engine import history
from checkd.states import HostStatus, Status, state_name

PARAMS = ("host", "service", "hostgroup", "site", "state", "kind", "since", "until", "text", "author", "limit",
          "offset")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_OFFSET = 100_000            # deeper than this, narrow the time range: OFFSET reads every row it skips
MAX_TEXT = 500
MAX_NAMES = 30_000              # hosts and services in the IN lists; SQLite takes at most 32,766 values
HOST_STATES = {s.name: int(s) for s in HostStatus}
SERVICE_STATES = {s.name: int(s) for s in Status}
WHEN = "a Unix time, a duration back from now (24h, 7d) or a local date and time (2026-03-01 14:00)"


class BadQuery(ValueError):
    """A filter that cannot be searched for; the text says which and why (a 400)."""


def _values(q: MultiMapping[str], key: str, split: bool = False) -> tuple[str, ...]:
    """Every non-empty value of a repeated key (a form sends empty fields as key=)."""
    out: list[str] = []
    for v in q.getall(key, []):
        out += [p.strip() for p in v.split(",")] if split else [v.strip()]
    return tuple(dict.fromkeys(v for v in out if v))


def _one(q: MultiMapping[str], key: str) -> str:
    values = _values(q, key)
    if len(values) > 1:
        raise BadQuery(f"{key}: give it once")
    return values[0] if values else ""


def _when(key: str, text: str, now: float) -> float | None:
    if not text:
        return None
    try:
        ts = float(text)
        if math.isfinite(ts):           # "nan" and "inf" parse as floats, and mean no time
            return ts
    except ValueError:
        pass
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise BadQuery(f"{key}: {text!r} is not {WHEN}") from None


def _number(key: str, text: str, default: int, top: int, bottom: int) -> int:
    if not text:
        return default
    if not (text.isdecimal() and len(text) <= 9) or not bottom <= int(text) <= top:
        raise BadQuery(f"{key}: a whole number from {bottom} to {top:,}")
    return int(text)


@dataclasses.dataclass(frozen=True)
class HistoryQuery:
    """The filters as given (what a URL and the page's form keep), and their checked values."""

    host: tuple[str, ...] = ()          # names or glob patterns (* ? [..]), like a downtime's hosts:
    service: tuple[str, ...] = ()
    hostgroup: tuple[str, ...] = ()
    site: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    text: str = ""
    author: str = ""
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    since_ts: float | None = None
    until_ts: float | None = None

    @classmethod
    def given(cls, q: MultiMapping[str]) -> HistoryQuery:
        """The filters as written, unchecked (a page shows them again beside its error)."""
        def first(key: str) -> str:
            values = _values(q, key)
            return values[0] if values else ""
        return cls(host=_values(q, "host"), service=_values(q, "service"), hostgroup=_values(q, "hostgroup"),
                   site=_values(q, "site"),
                   state=tuple(dict.fromkeys(s.upper() for s in _values(q, "state", split=True))),
                   kind=tuple(dict.fromkeys(k.lower() for k in _values(q, "kind", split=True))), since=first("since"),
                   until=first("until"), text=first("text"), author=first("author"))

    @classmethod
    def parse(cls, q: MultiMapping[str], now: float, ignore: Collection[str] = ()) -> HistoryQuery:
        """From a request's query, checked; BadQuery names the first mistake."""
        unknown = sorted(k for k in q.keys() if k not in PARAMS and k not in ignore)
        if unknown:
            raise BadQuery(f"unknown parameter {unknown[0]!r} (the filters: {', '.join(PARAMS)})")
        for key in ("since", "until", "text", "author", "limit", "offset"):
            _one(q, key)
        hq = cls.given(q)
        for s in hq.state:
            if s not in HOST_STATES and s not in SERVICE_STATES:
                raise BadQuery(f"state: {s!r} is not a state ({', '.join([*SERVICE_STATES, *HOST_STATES])})")
        for k in hq.kind:
            if k not in history.KINDS:
                raise BadQuery(f"kind: {k!r} is not a kind of history row ({', '.join(history.KINDS)})")
        since_ts, until_ts = _when("since", hq.since, now), _when("until", hq.until, now)
        if since_ts is not None and until_ts is not None and since_ts >= until_ts:
            raise BadQuery("since must be before until")
        if len(hq.text) > MAX_TEXT:
            raise BadQuery(f"text: at most {MAX_TEXT} characters")
        return dataclasses.replace(hq, since_ts=since_ts, until_ts=until_ts,
                                   limit=_number("limit", _one(q, "limit"), DEFAULT_LIMIT, MAX_LIMIT, 1),
                                   offset=_number("offset", _one(q, "offset"), 0, MAX_OFFSET, 0))

    def pairs(self, offset: int | None = None) -> list[tuple[str, str]]:
        """The query again, as given (`since=24h` stays relative); `offset` for another page."""
        out = [(k, v) for k in ("host", "service", "hostgroup", "site", "state", "kind") for v in getattr(self, k)]
        out += [(k, v) for k in ("since", "until", "text", "author") if (v := getattr(self, k))]
        if self.limit != DEFAULT_LIMIT:
            out.append(("limit", str(self.limit)))
        offset = self.offset if offset is None else offset
        if offset:
            out.append(("offset", str(offset)))
        return out

    def url(self, path: str, offset: int | None = None) -> str:
        pairs = self.pairs(offset)
        return f"{path}?{urlencode(pairs)}" if pairs else path

    @property
    def filtered(self) -> bool:
        return any(k not in ("limit", "offset") for k, _ in self.pairs())

    def search(self, objs: Objects, names: Callable[[], tuple[list[str], list[str]]]) -> history.Search:
        """Host groups and sites from the configuration, names and patterns against the
        configuration and the history (`names()`: a blocking read, done only when needed)."""
        known: tuple[list[str], list[str]] | None = None
        if self.host or self.service:
            known = names()
        hosts: set[str] | None = None
        if self.host:
            assert known is not None
            hosts = _matching("host", self.host, {*objs.hosts, *known[0]})
        if self.hostgroup:
            in_groups = set()
            for g in self.hostgroup:
                group = objs.host_groups.get(g)
                if group is None and not any(g in h.groups for h in objs.hosts.values()):
                    raise BadQuery(f"unknown host group {g!r}")
                in_groups |= set(group.members if group else ()) | {h.name for h in objs.hosts.values()
                                                                   if g in h.groups}
            hosts = in_groups if hosts is None else hosts & in_groups
        if self.site:
            sites = {h.site for h in objs.hosts.values()}
            for s in self.site:
                if s not in sites:
                    raise BadQuery(f"unknown site {s!r} (sites: {', '.join(sorted(sites))})")
            at_sites = {h.name for h in objs.hosts.values() if h.site in self.site}
            hosts = at_sites if hosts is None else hosts & at_sites
        services = None
        if self.service:
            assert known is not None
            services = _matching("service", self.service, {s.description for s in objs.services.values()} |
                                 set(known[1]))
        if len(hosts or ()) + len(services or ()) > MAX_NAMES:
            raise BadQuery(f"the filters name {len(hosts or ()) + len(services or ()):,} hosts and services; "
                           f"at most {MAX_NAMES:,}: narrow them")
        return history.Search(
            hosts=None if hosts is None else tuple(sorted(hosts)),
            services=None if services is None else tuple(sorted(services)),
            host_states=tuple(HOST_STATES[s] for s in self.state if s in HOST_STATES),
            service_states=tuple(SERVICE_STATES[s] for s in self.state if s in SERVICE_STATES),
            since=self.since_ts, until=self.until_ts, text=self.text, author=self.author, kinds=self.kind,
            limit=self.limit, offset=self.offset)


def _matching(key: str, given: Iterable[str], known: set[str]) -> set[str]:
    """The known names each value names: itself, or as a glob pattern any (a name with [
    in it, `Disk [root]`, is still itself). A name that exists nowhere is a mistake."""
    out: set[str] = set()
    for value in given:
        if value in known:
            out.add(value)
        if any(c in value for c in "*?["):
            out |= {n for n in known if fnmatch.fnmatchcase(n, value)}
        elif value not in known:
            raise BadQuery(f"unknown {key} {value!r}: neither configured nor in the history "
                           f"(for part of a name, a pattern: *{value[:40]}*)")
    return out


def row_json(row: tuple[Any, ...], objs: Objects) -> dict[str, Any]:
    """One history row of `history.search` as the API and the page show it."""
    eid, ts, kind, status, output, author, host, service = row
    svc = service or None
    h = objs.hosts.get(host)
    return {"event_id": eid, "host": host, "service": svc, "site": h.site if h else None, "ts": ts, "kind": kind,
            "state": None if status is None else state_name(svc, status), "status": status, "output": output or "",
            "author": author, "url": f"/event/{eid}"}
