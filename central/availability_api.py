"""GET /api/v1/availability: the availability report (checkd/engine/availability.py) on the
checks and period the query names, as JSON or CSV. The web page (/availability) and the
weekly mail (central/weekly_report.py) ask for it the same way. docs/availability.md.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime
import io
import time
from collections.abc import Mapping
from urllib.parse import urlencode

from aiohttp import web

from central.live import Live
from checkd.api_json import bad_request, json_response
from checkd.engine import availability
from checkd.engine.availability import HOST_STATES, SERVICE_STATES, AvailabilityReport
from checkd.engine.db import Database
from checkd.report_periods import DEFAULT, bounds, parse_time

FILTERS = ("host", "service", "hostgroup", "site")
CSV_STATES = (*SERVICE_STATES, *HOST_STATES)


@dataclasses.dataclass(frozen=True)
class ReportQuery:
    """What a report is asked for, from a URL's query (the API's and the page's alike)."""

    host: str = ""
    service: str = ""
    hostgroup: str = ""
    site: str = ""
    period: str = ""                    # a named period (report_periods.PERIODS), or since/until
    since: str = ""
    until: str = ""
    downtime_as_ok: bool = False

    @classmethod
    def from_query(cls, q: Mapping[str, str]) -> ReportQuery:
        return cls(**{k: q.get(k, "").strip()[:200] for k in (*FILTERS, "period", "since", "until")},
                   downtime_as_ok=q.get("downtime_as_ok", "") in ("1", "true", "yes", "on"))

    def bounds(self, now: float) -> tuple[float, float]:
        """(since, until), the end cut to now (a report on the future would be guesswork).
        ValueError: a period or time that cannot be read, or an empty span."""
        if self.period and self.since:
            raise ValueError("give period or since (and until), not both")
        if self.until and not self.since:
            raise ValueError("until needs since")
        if self.since:
            since = parse_time(self.since, now)
            until = parse_time(self.until, now) if self.until else now
        else:
            since, until = bounds(self.period or DEFAULT, now)
        until = min(until, now)
        if not since < until:
            raise ValueError("the period is empty: since must be before until, and before now")
        return since, until

    def pairs(self) -> list[tuple[str, str]]:
        """The query again (links to the CSV, the JSON, the page)."""
        out = [(k, getattr(self, k)) for k in (*FILTERS, "period", "since", "until") if getattr(self, k)]
        return out + ([("downtime_as_ok", "1")] if self.downtime_as_ok else [])

    def url(self, path: str, **extra: str) -> str:
        return f"{path}?{urlencode([*self.pairs(), *extra.items()])}"


async def compute(live: Live, db: Database, q: ReportQuery, now: float) -> AvailabilityReport:
    """The report `q` asks for. LookupError: a host, service, group or site the configuration
    does not have; ValueError: a period that cannot be read."""
    objs = live.objs
    keys = availability.checks_of(objs, q.host, q.service, q.hostgroup, q.site)
    since, until = q.bounds(now)
    await db.write([])              # what was just queued (an ack, a recovery) is counted too
    return await asyncio.to_thread(availability.report, db, objs, keys, since, until, q.downtime_as_ok)


class AvailabilityApi:
    def __init__(self, live: Live, db: Database):
        self.live, self.db = live, db

    async def get(self, request: web.Request) -> web.Response:
        """`?host=&service=&hostgroup=&site=&period=|since=&until=&downtime_as_ok=1&format=json|csv`."""
        q = ReportQuery.from_query(request.query)
        fmt = request.query.get("format", "json")
        if fmt not in ("json", "csv"):
            raise bad_request("format: json or csv")
        try:
            rep = await compute(self.live, self.db, q, time.time())
        except LookupError as e:
            raise bad_request(str(e.args[0]), status=404) from None
        except ValueError as e:
            raise bad_request(str(e)) from None
        if fmt == "json":
            return json_response({"period": q.period or (None if q.since else DEFAULT), **rep.json()})
        name = f"availability-{_stamp(rep.since)}-{_stamp(rep.until)}.csv"
        return web.Response(text=csv_text(rep), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})


def csv_text(rep: AvailabilityReport) -> str:
    """One row per check: its seconds and percentages per state (empty for the states of the
    other kind: a host check has UP/DOWN/UNREACHABLE, a service OK/WARNING/CRITICAL/UNKNOWN)."""
    out = io.StringIO()
    w = csv.writer(out)
    head = ["host", "service", "site", "since", "until", "seconds", "known_seconds", "availability_percent"]
    for s in CSV_STATES:
        head += [f"{s.lower()}_{col}" for col in ("seconds", "percent", "downtime_seconds", "acknowledged_seconds")]
    w.writerow([*head, "undetermined_seconds", "undetermined_percent"])
    for c in rep.checks:
        t = c.tally.json()
        row = [c.host, c.service or "", c.site, _iso(rep.since), _iso(rep.until), _n(t["seconds"]), _n(t["known"]),
               "" if t["availability"] is None else _n(t["availability"])]
        for s in CSV_STATES:
            st = t["states"].get(s)
            row += [""] * 4 if st is None else [_n(st["seconds"]), _n(st["percent"]), _n(st["downtime"]),
                                                _n(st["acknowledged"])]
        w.writerow([*row, _n(t["undetermined"]["seconds"]), _n(t["undetermined"]["percent"])])
    return out.getvalue()


def _n(x: float) -> str:
    """Without trailing zeros: 3600, 12.5, 33.3333 (percentages are rounded to 4 places)."""
    return f"{x:.4f}".rstrip("0").rstrip(".")


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _stamp(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M", time.localtime(ts))

