"""What the availability page (/availability) shows, as plain data: the report's totals,
per site and per host group, and one row per check, worst first, with each state's share
of the period written out as people read it (docs/web.md, docs/availability.md).
"""

from __future__ import annotations

from typing import Any

from central.web.views import check_url
from checkd.engine.availability import CheckAvailability, AvailabilityReport, Summary, Tally


def pct(value: float | None) -> str:
    """99.912%, 100%, or — when nothing is known."""
    if value is None:
        return "—"
    return f"{value:.3f}".rstrip("0").rstrip(".") + "%"


def _share(part: float, t: Tally) -> float:
    return part * 100.0 / t.period if t.period > 0 else 0.0


def _tally(t: Tally) -> dict[str, Any]:
    return {"checks": t.checks, "availability": pct(t.availability()), "good": t.states[0],
            "states": [(name, pct(_share(t.seconds[i], t))) for i, name in enumerate(t.states) if t.seconds[i] > 0],
            "downtime": pct(_share(sum(t.downtime), t)), "acknowledged": pct(_share(sum(t.acknowledged), t)),
            "undetermined": pct(_share(t.undetermined, t))}


def _summary(name: str, s: Summary) -> dict[str, Any]:
    return {"name": name, "hosts": _tally(s.hosts) if s.hosts.checks else None,
            "services": _tally(s.services) if s.services.checks else None}


def _check(c: CheckAvailability) -> dict[str, Any]:
    return {"host": c.host, "service": c.service, "site": c.site, "url": check_url(c.host, c.service),
            **_tally(c.tally)}


def page(rep: AvailabilityReport, limit: int) -> dict[str, Any]:
    """The page's model; at most `limit` check rows (the CSV has them all)."""
    # Worst first; checks with nothing known last; otherwise in the configuration's order.
    worst = sorted(rep.checks, key=lambda c: (c.tally.availability() is None, c.tally.availability() or 0.0))
    return {"since": rep.since, "until": rep.until, "seconds": rep.until - rep.since,
            "total": _summary("all", rep.total()),
            "sites": [_summary(n, s) for n, s in rep.by_site().items()],
            "hostgroups": [_summary(n, s) for n, s in rep.by_hostgroup().items()],
            "checks": [_check(c) for c in worst[:limit]], "more": max(0, len(worst) - limit)}
