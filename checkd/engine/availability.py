"""Availability (SLA) arithmetic with Nagios avail.cgi's semantics: over a period, the time a
check spent in each HARD state, of which in scheduled downtime and of which acknowledged,
and the time its state was not known (undetermined); summed per host, host group and site.
docs/availability.md says what is counted how; timelines.py reads what it counts.
"""

from __future__ import annotations

import bisect
import dataclasses
import fnmatch
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from checkd.config.model import Objects
from checkd.config.objects import hostgroup_members
from checkd.engine import timelines
from checkd.engine.timelines import CheckTimeline, Span
from checkd.states import HostStatus, Status

if TYPE_CHECKING:
    from checkd.engine.db import Database

HOST_STATES = tuple(s.name for s in HostStatus)         # UP, DOWN, UNREACHABLE
SERVICE_STATES = tuple(s.name for s in Status)          # OK, WARNING, CRITICAL, UNKNOWN


@dataclasses.dataclass(slots=True)
class Tally:
    """Seconds of one check, or summed over several of one kind (host checks or services).
    Per state: all of it (`seconds`), the part in scheduled downtime (`downtime`) and the part
    acknowledged outside downtime (`acknowledged`); the rest of a state is unhandled."""

    host_check: bool
    checks: int = 0
    period: float = 0.0                 # the report's length times `checks`
    seconds: list[float] = dataclasses.field(default_factory=list)
    downtime: list[float] = dataclasses.field(default_factory=list)
    acknowledged: list[float] = dataclasses.field(default_factory=list)
    undetermined: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.states)
        for name in ("seconds", "downtime", "acknowledged"):
            if not getattr(self, name):
                setattr(self, name, [0.0] * n)

    @property
    def states(self) -> tuple[str, ...]:
        return HOST_STATES if self.host_check else SERVICE_STATES

    @property
    def known(self) -> float:
        return self.period - self.undetermined

    def add(self, other: Tally) -> None:
        self.checks += other.checks
        self.period += other.period
        self.undetermined += other.undetermined
        for mine, theirs in ((self.seconds, other.seconds), (self.downtime, other.downtime),
                             (self.acknowledged, other.acknowledged)):
            for i, v in enumerate(theirs):
                mine[i] += v

    def availability(self) -> float | None:
        """OK (or UP) as a share of the known time, in percent; None: nothing known."""
        return _percent(self.seconds[0], self.known) if self.known > 0 else None

    def json(self) -> dict[str, Any]:
        return {"checks": self.checks, "seconds": self.period, "known": self.known,
                "availability": self.availability(),
                "states": {name: {"seconds": self.seconds[i], "percent": _percent(self.seconds[i], self.period),
                                  "percent_known": _percent(self.seconds[i], self.known),
                                  "downtime": self.downtime[i], "acknowledged": self.acknowledged[i]}
                           for i, name in enumerate(self.states)},
                "undetermined": {"seconds": self.undetermined, "percent": _percent(self.undetermined, self.period)}}


def _percent(part: float, whole: float) -> float:
    return round(part * 100.0 / whole, 4) if whole > 0 else 0.0


def tally(tl: CheckTimeline, host_check: bool, since: float, until: float, downtime_as_ok: bool = False) -> Tally:
    """One check over [since, until). With `downtime_as_ok`, a problem state in scheduled
    downtime counts as OK (UP): in downtime, not against the check."""
    t = Tally(host_check, checks=1, period=until - since)
    known = until if tl.known_from is None else min(until, max(since, tl.known_from))
    t.undetermined = float(known - since)
    downs, acks = _merged(tl.downtimes), _merged(tl.acks)
    times = [ts for ts, _ in tl.changes]
    cuts = sorted({known, until, *(x for x in times if known < x < until),
                   *(x for span in (*downs, *acks) for x in span if known < x < until)})
    last = len(t.states) - 1
    for a, b in zip(cuts, cuts[1:]):
        i = bisect.bisect_right(times, a) - 1
        # A status this kind has no name for (a row from a newer checkd) counts as its last state.
        status = min(tl.changes[i][1], last) if i >= 0 else 0
        in_downtime = _inside(downs, a)
        if in_downtime and downtime_as_ok:
            status = 0
        t.seconds[status] += b - a
        if in_downtime:
            t.downtime[status] += b - a
        elif status and _inside(acks, a):
            t.acknowledged[status] += b - a
    return t


def _merged(spans: Iterable[Span]) -> list[Span]:
    """Overlapping spans as one (nested downtimes count once), sorted."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out


def _inside(spans: list[Span], ts: float) -> bool:
    i = bisect.bisect_right(spans, (ts, float("inf"))) - 1
    return i >= 0 and spans[i][0] <= ts < spans[i][1]


@dataclasses.dataclass(frozen=True, slots=True)
class CheckAvailability:
    host: str
    service: str | None                 # None: the host check
    site: str
    tally: Tally

    def json(self) -> dict[str, Any]:
        return {"host": self.host, "service": self.service, "site": self.site, **self.tally.json()}


@dataclasses.dataclass(slots=True)
class Summary:
    """Checks summed: host checks and services apart (their states differ)."""

    hosts: Tally = dataclasses.field(default_factory=lambda: Tally(True))
    services: Tally = dataclasses.field(default_factory=lambda: Tally(False))

    def add(self, c: CheckAvailability) -> None:
        (self.hosts if c.service is None else self.services).add(c.tally)

    def json(self) -> dict[str, Any]:
        return {"hosts": self.hosts.json() if self.hosts.checks else None,
                "services": self.services.json() if self.services.checks else None}


@dataclasses.dataclass(frozen=True)
class AvailabilityReport:
    since: float
    until: float
    downtime_as_ok: bool
    checks: list[CheckAvailability]
    hostgroups: Mapping[str, frozenset[str]]    # each host group's hosts (of those reported)

    def total(self) -> Summary:
        return _summed(self.checks, lambda c: ("",))[""]

    def by_host(self) -> dict[str, Summary]:
        return _summed(self.checks, lambda c: (c.host,))

    def by_site(self) -> dict[str, Summary]:
        return dict(sorted(_summed(self.checks, lambda c: (c.site,)).items()))

    def by_hostgroup(self) -> dict[str, Summary]:
        return dict(sorted(_summed(self.checks, lambda c: [g for g, hosts in self.hostgroups.items()
                                                           if c.host in hosts]).items()))

    def json(self) -> dict[str, Any]:
        def named(key: str, groups: dict[str, Summary]) -> list[dict[str, Any]]:
            return [{key: name, **s.json()} for name, s in groups.items()]
        return {"since": self.since, "until": self.until, "seconds": self.until - self.since,
                "downtime_as_ok": self.downtime_as_ok, "checks": [c.json() for c in self.checks],
                "hosts": named("host", self.by_host()), "hostgroups": named("hostgroup", self.by_hostgroup()),
                "sites": named("site", self.by_site()), "total": self.total().json()}


def _summed(checks: list[CheckAvailability], keys: Any) -> dict[str, Summary]:
    out: dict[str, Summary] = {}
    for c in checks:
        for k in keys(c):
            out.setdefault(k, Summary()).add(c)
    return out


def checks_of(objs: Objects, host: str = "", service: str = "", hostgroup: str = "",
              site: str = "") -> list[tuple[str, str | None]]:
    """The checks a report covers, in config order: hosts by name or shell pattern (`db*`),
    host group, site; services by description or pattern (then no host checks). A host without
    a check command has no row of its own (nothing measured it). LookupError: a name not known."""
    hosts = list(objs.hosts.values())
    if host and not _pattern(host) and host not in objs.hosts:
        raise LookupError(f"unknown host {host!r}")
    if hostgroup:
        members = hostgroup_members(objs.hosts, objs.host_groups)
        if hostgroup not in members:
            raise LookupError(f"unknown host group {hostgroup!r}")
        hosts = [h for h in hosts if h.name in members[hostgroup]]
    if site and site not in {h.site for h in objs.hosts.values()}:
        raise LookupError(f"unknown site {site!r}")
    names = {h.name for h in hosts if (not host or fnmatch.fnmatchcase(h.name, host)) and (not site or h.site == site)}
    keys: list[tuple[str, str | None]] = [] if service else [(h.name, None) for h in hosts
                                                             if h.name in names and h.check is not None]
    keys += [k for k in objs.services if k[0] in names and (not service or fnmatch.fnmatchcase(k[1], service))]
    if service and not _pattern(service) and not keys and not any(k[1] == service for k in objs.services):
        raise LookupError(f"unknown service {service!r}")
    order = {name: i for i, name in enumerate(objs.hosts)}
    return sorted(keys, key=lambda k: (order[k[0]], k[1] is not None))     # a host, then its services


def _pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def report(db: Database, objs: Objects, keys: list[tuple[str, str | None]], since: float, until: float,
           downtime_as_ok: bool = False) -> AvailabilityReport:
    """Blocking (reads the database): the report on `keys` (checks of `objs`) for [since, until)."""
    lines = timelines.read(db, keys, since, until)
    checks = [CheckAvailability(h, s, objs.hosts[h].site, tally(lines[(h, s)], s is None, since, until,
                                                                 downtime_as_ok)) for h, s in keys]
    hosts = {h for h, _ in keys}
    groups = {g: frozenset(m & hosts) for g, m in hostgroup_members(objs.hosts, objs.host_groups).items() if m & hosts}
    return AvailabilityReport(since, until, downtime_as_ok, checks, groups)
