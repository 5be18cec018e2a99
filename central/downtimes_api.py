"""Central's downtime calls (docs/downtimes.md): schedule one (a host, a service, or a
scope: hosts or patterns, host groups, sites, services), fixed or flexible, now or
later, or a recurring one; list them; change their times or comment; cancel one or
its whole series. Writes need a token from `api_tokens:`; the work is
central/operations.py's.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from central.live import Live
from central.operations import MAX_DOWNTIME, Operations
from checkd import bounds
from checkd.actions import OpError
from checkd.api_json import bad_input, bad_request, json_response, parse_json
from checkd.config.recurring import from_mapping
from checkd.config.scope import KEYS as SCOPE_KEYS, CheckScope, ScopeError
from checkd.engine.store import Downtime, Phase, Store
from checkd.operator_api import comment_field, duration_field, str_field


def downtime_json(d: Downtime, now: float) -> dict[str, Any]:
    window = d.window()
    return {"id": d.id, "host": d.host, "service": d.service, "start": d.start, "end": d.end, "author": d.author,
            "comment": d.comment, "phase": d.phase.value, "active": d.covers(d.host, d.service, now),
            "flexible": d.flexible, "duration": d.duration if d.flexible else None, "triggered": d.triggered,
            "in_effect_from": window[0] if window else None, "in_effect_until": window[1] if window else None,
            "series": d.series}


class DowntimesApi:
    def __init__(self, live: Live, operations: Operations, store: Store):
        self.live, self.ops, self.store = live, operations, store

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/downtimes", self.list)
        app.router.add_post("/api/v1/downtimes", self.add)
        app.router.add_get("/api/v1/downtimes/schedules", self.schedules)
        app.router.add_delete("/api/v1/downtimes/schedules/{name}", self.delete_schedule)
        app.router.add_patch("/api/v1/downtimes/{id}", self.change)
        app.router.add_delete("/api/v1/downtimes/{id}", self.delete)

    # --- reading ------------------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.Response:
        """Every downtime not deleted, oldest first; `?host=`, `?series=`, `?ended=hide`."""
        q, now = request.query, time.time()
        out = [downtime_json(d, now) for d in sorted(self.store.downtimes.values(), key=lambda d: d.id)
               if (not q.get("host") or d.host == q["host"]) and (not q.get("series") or d.series == q["series"])
               and not (q.get("ended") == "hide" and d.phase is Phase.ENDED)]
        return json_response({"downtimes": out})

    async def schedules(self, request: web.Request) -> web.Response:
        assert self.ops.engine.recurring is not None
        out = []
        for name, rd in sorted(self.ops.engine.recurring.schedules().items()):
            out.append({"name": name, **rd.scope.json(), "comment": rd.comment, "author": rd.author,
                        "flexible": rd.duration, "source": "api" if rd.where.file == "api" else
                        f"{rd.where.file}:{rd.where.line}",
                        "ranges": json.loads(self.store.schedules[name]).get("ranges")
                        if name in self.store.schedules else None,
                        "made_until": self.store.meta.get(f"recurring:{name}")})
        return json_response({"schedules": out})

    # --- writing ------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        who = self.live.auth.writer(request)
        doc = parse_json(await request.read())
        if type(doc) is not dict:
            raise bad_request("expected a JSON object")
        return who, doc

    async def add(self, request: web.Request) -> web.Response:
        """{"host", "service"?} or scope keys {"hosts"?, "hostgroups"?, "sites"?, "services"?};
        "start"?, "end" | "duration"; "flexible"?: "2h"; "comment", "author"?; or "recurring":
        {"name", "ranges" | "period", "duration"?} with scope keys."""
        who, d = await self._body(request)
        author, comment = str_field(d, "author") or who, comment_field(d)
        if "recurring" in d:
            return await self._add_schedule(d, author, comment)
        targets = self._targets(d)
        start = _time(d, "start", time.time())
        end = _time(d, "end", None)
        window = _duration(d, "duration")
        if end is None and window is not None:
            end = start + window
        if end is None or end <= start:
            raise bad_request("give end (a Unix time after start) or duration (e.g. 2h)")
        flexible = _duration(d, "flexible")
        try:
            made = await self.ops.add_downtimes(targets, start, end, author, comment, flexible is not None,
                                                flexible or 0.0)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        first = made[0]
        answer = {"id": first.id, "host": first.host, "service": first.service, "start": first.start,
                  "end": first.end, "series": first.series, "flexible": flexible,
                  "downtimes": [{"id": m.id, "host": m.host, "service": m.service} for m in made]}
        return json_response(answer, status=201)

    def _targets(self, d: dict[str, Any]) -> list[tuple[str, str | None]]:
        try:
            if any(k in d for k in SCOPE_KEYS):
                if "host" in d or "service" in d:
                    raise bad_request("give host/service, or the scope keys hosts, hostgroups, sites, services")
                return CheckScope.parse(d).targets(self.live.objs)
            host = str_field(d, "host", True, bounds.MAX_CHECK_NAME)
            assert host is not None
            return [self.ops.target(host, str_field(d, "service", False, bounds.MAX_CHECK_NAME))]
        except ScopeError as e:
            raise bad_request(str(e), status=404 if "unknown" in str(e) or "matches no" in str(e) else 400) from None
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None

    async def _add_schedule(self, d: dict[str, Any], author: str, comment: str) -> web.Response:
        spec = d["recurring"]
        if type(spec) is not dict:
            raise bad_request('recurring: expected {"name", "ranges" | "period", "duration"?}')
        body = {**{k: d[k] for k in SCOPE_KEYS if k in d}, **spec, "comment": comment, "author": author}
        try:
            rd = from_mapping(body, self.live.objs)
            await self.ops.add_schedule(rd, json.dumps(body), author)
        except (ValueError, ScopeError) as e:
            raise bad_request(f"recurring: {e}") from None
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return json_response({"schedule": rd.name, **rd.scope.json()}, status=201)

    async def change(self, request: web.Request) -> web.Response:
        """{"start"?, "end"?, "comment"?, "series"?: true (every downtime of its series)}."""
        who, d = await self._body(request)
        ids = self._ids(request, d.get("series") is True)
        comment = comment_field(d) if d.get("comment") is not None else None
        try:
            changed = await self.ops.change_downtimes(ids, who, _time(d, "start", None), _time(d, "end", None),
                                                      comment)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        now = time.time()
        return json_response({"downtimes": [downtime_json(c, now) for c in changed]})

    async def delete(self, request: web.Request) -> web.Response:
        """`?series=1`: every downtime of its series (a scope or a recurring window)."""
        who = self.live.auth.writer(request)
        ids = self._ids(request, request.query.get("series") in ("1", "true", "yes"))
        try:
            gone = await self.ops.delete_downtimes(ids, who)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return json_response({"id": gone[0].id, "deleted": True, "ids": [g.id for g in gone]})

    async def delete_schedule(self, request: web.Request) -> web.Response:
        who = self.live.auth.writer(request)
        try:
            await self.ops.remove_schedule(request.match_info["name"], who)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return json_response({"schedule": request.match_info["name"], "deleted": True})

    def _ids(self, request: web.Request, series: bool) -> list[int]:
        try:
            did = int(request.match_info["id"])
        except ValueError:
            raise bad_request("downtime id must be an integer") from None
        dt = self.store.downtimes.get(did)
        if dt is None:
            raise bad_request(f"no downtime {did}", status=404)
        try:
            return self.ops.series_ids(dt.series) if series and dt.series else [did]
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None


def _time(d: dict[str, Any], key: str, default: float | None) -> float | None:
    v = d.get(key)
    if v is None:
        return default
    try:
        return bounds.unix_time(v, key)
    except ValueError as e:
        raise bad_input(e) from None


def _duration(d: dict[str, Any], key: str) -> float | None:
    return duration_field(d, key, MAX_DOWNTIME)
