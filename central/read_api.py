"""The read side of the HTTP API: status, problems and event history, straight
from the in-memory store (closed events' history and the history search from the
database, in a thread).

Read calls need no token; central listens on 127.0.0.1 unless configured
otherwise. docs/api.md is the reference.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from central.history_query import BadQuery, HistoryQuery, row_json
from central.live import Live
from checkd import bounds
from checkd.api_json import bad_request, json_response
from checkd.durations import parse_duration
from checkd.engine import history, nflog, problems
from checkd.engine.engine import Engine
from checkd.engine.store import CheckView, Event
from checkd.states import state_name

if TYPE_CHECKING:
    from central.takeover import Takeover


def _svc(s: str) -> str | None:
    return s or None


class ReadApi:
    def __init__(self, live: Live, engine: Engine, takeover: Takeover):
        self.live, self.takeover = live, takeover
        self.db, self.store, self.events = engine.db, engine.store, engine.events

    def _pollers(self, now: float) -> list[dict[str, Any]]:
        out = []
        for name, auth in sorted(self.live.node.pollers.items()):
            ps = self.store.pollers.get(name)
            last_seen = ps.last_seen if ps else None
            connected = last_seen is not None and now - last_seen <= self.takeover.stale_after(auth.site)
            out.append({"name": name, "site": auth.site, "last_seen": last_seen, "seq": ps.seq if ps else 0,
                        "connected": connected, "stale": not connected,
                        "takeover": self.takeover.polled_by_central(auth.site)})
        return out

    def check_json(self, v: CheckView, now: float) -> dict[str, Any]:
        ev = self.store.open_events.get(v.event_id) if v.event_id is not None else None
        return {"host": v.host, "service": v.service, "state": state_name(v.service, v.status),
                "status": v.status, "state_type": v.state_type.value, "attempt": v.attempt,
                "last_check": v.last_check or None, "last_state_change": v.last_state_change or None,
                "output": v.output, "long_output": v.long_output, "perfdata": v.perfdata, "flapping": v.flapping,
                "event_id": v.event_id, "acknowledged": bool(ev and ev.acknowledged),
                "muted": self.store.muted(v.host, v.service, now), "polled_by": v.polled_by or None}

    async def status(self, request: web.Request) -> web.Response:
        """Pollers, hosts and services; `?host=NAME` narrows to one host."""
        now = time.time()
        only = request.query.get("host")
        hosts, services = [], []
        objs, checks = self.live.objs, self.store.checks
        for name, h in objs.hosts.items():
            if only is not None and name != only:
                continue
            v = checks.get((name, None)) or CheckView(name, None)
            hosts.append({**self.check_json(v, now), "site": h.site})
        for key in objs.services:
            if only is not None and key[0] != only:
                continue
            services.append(self.check_json(checks.get(key) or CheckView(*key), now))
        if only is not None and not hosts:
            raise web.HTTPNotFound(text='{"error": "unknown host"}', content_type="application/json")
        return json_response({"now": now, "pollers": self._pollers(now), "hosts": hosts, "services": services})

    def event_json(self, ev: Event, now: float) -> dict[str, Any]:
        return problems.problem(self.store, self.events, ev, now)

    async def problems(self, request: web.Request) -> web.Response:
        """Open events, newest first."""
        now = time.time()
        return json_response({"now": now, "problems": problems.open_problems(self.store, self.events, now)})

    async def event(self, request: web.Request) -> web.Response:
        try:
            eid = int(request.match_info["id"])
        except ValueError:
            raise web.HTTPBadRequest(text='{"error": "event id must be an integer"}',
                                     content_type="application/json") from None
        if not 0 < eid <= bounds.INT64:                 # no such ID, and beyond what SQLite holds
            raise bad_request(f"no event {eid}", status=404)
        eid = self.store.aliases.get(eid, eid)       # a poller's ID for the same problem
        # Reads wait for queued writes, so a just-acknowledged change is visible.
        await self.db.write([])
        stored, steps, notes = await asyncio.to_thread(self._read_event, eid)
        if stored is None:
            raise web.HTTPNotFound(text=f'{{"error": "no event {eid}"}}', content_type="application/json")
        ev = self.store.open_events.get(eid) or stored
        d = self.event_json(ev, time.time())
        d["open"] = ev.closed is None
        d["history"] = [{"ts": ts, "kind": kind, "state": None if st is None else state_name(ev.service, st),
                         "status": st, "output": out, "author": author}
                        for ts, kind, st, out, author in steps]
        d["notifications"] = [{"id": n.id, "type": n.kind, "contact": n.contact, "channel": n.channel,
                               "number": n.number, "level": n.level, "created": n.created, "status": n.status,
                               "done": n.done, "attempts": n.attempts, "error": n.error} for n in notes]
        return json_response(d)

    def _read_event(self, eid: int) -> tuple[Event | None, list[tuple[Any, ...]], list[nflog.LogRow]]:
        return history.event(self.db, eid), history.event_history(self.db, eid), nflog.of_event(self.db, eid)

    async def search_history(self, hq: HistoryQuery) -> tuple[list[dict[str, Any]], bool]:
        """The rows of a history search, newest first, and whether more follow; BadQuery
        for a name, group or site that does not exist."""
        objs = self.live.objs
        await self.db.write([])                 # reads wait for queued writes
        rows, more = await asyncio.to_thread(
            lambda: history.search(self.db, hq.search(objs, lambda: history.names(self.db))))
        return [row_json(r, objs) for r in rows], more

    async def history(self, request: web.Request) -> web.Response:
        """GET /api/v1/history: events' history rows by host, service, group, site, state,
        kind, time, text and author (docs/history.md)."""
        now = time.time()
        try:
            hq = HistoryQuery.parse(request.query, now)
            rows, more = await self.search_history(hq)
        except BadQuery as e:
            raise bad_request(str(e)) from None
        return json_response({"now": now, "offset": hq.offset, "limit": hq.limit, "more": more,
                                  "next": hq.url(request.path, hq.offset + hq.limit) if more else None,
                                  "history": rows})

    async def deployments(self, request: web.Request) -> web.Response:
        """The change log, newest first: `?host=&since=&until=&module=` (since/until: Unix
        times or durations ago, like 7d; a Grafana annotation source, docs/metrics-export.md)."""
        q = request.query
        since, until = _moment(q, "since"), _moment(q, "until")
        entries = self.store.deployments.log(q.get("host"), since, q.get("module"), until)
        return json_response({"deployments": [d.json() for d in entries]})


def _moment(q: Mapping[str, str], key: str) -> float | None:
    """`key=` as a Unix time, or a duration before now (since=7d)."""
    if key not in q:
        return None
    try:
        return float(q[key])
    except ValueError:
        try:
            return time.time() - parse_duration(q[key])
        except ValueError:
            raise bad_request(f"{key}: a Unix time or a duration like 7d") from None
