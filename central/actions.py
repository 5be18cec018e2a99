"""The write side of the HTTP API: ack, reschedule, notifications on/off, downtimes.

Every call needs a token from `api_tokens:`; its name is the default author.
Each change is applied to the store and answered only once it is committed.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from central.db import Op
from central.events import EventError
from central.ids import SET_META
from central.store import Downtime, Mute
from central.validate import bad_request, parse_json
from checkd.durations import parse_duration

if TYPE_CHECKING:
    from central.app import Central

log = logging.getLogger(__name__)
INSERT_COMMENT = "INSERT INTO comments (host, service, ts, author, text) VALUES (?,?,?,?,?)"


def _str(d: dict[str, Any], key: str, required: bool = False) -> str | None:
    v = d.get(key)
    if v is None and not required:
        return None
    if type(v) is not str or not v:
        raise bad_request(f"{key}: expected a non-empty string")
    return v


def _duration(d: dict[str, Any], key: str) -> float | None:
    if d.get(key) is None:
        return None
    try:
        return parse_duration(d[key])
    except ValueError as e:
        raise bad_request(f"{key}: {e}") from None


class WriteApi:
    def __init__(self, central: Central):
        self.c = central

    async def _body(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        who = self.c.auth.writer(request)
        doc = parse_json(await request.read())
        if type(doc) is not dict:
            raise bad_request("expected a JSON object")
        return who, doc

    def _target(self, d: dict[str, Any]) -> tuple[str, str | None]:
        host, service = _str(d, "host", True), _str(d, "service")
        assert host is not None
        if host not in self.c.objs.hosts:
            raise bad_request(f"unknown host {host!r}", status=404)
        if service is not None and (host, service) not in self.c.objs.services:
            raise bad_request(f"unknown service {service!r} on host {host!r}", status=404)
        return host, service

    async def _commit(self, ops: list[Op]) -> None:
        await self.c.ingest._durable(ops)

    async def ack(self, request: web.Request) -> web.Response:
        who, d = await self._body(request)
        eid = d.get("event_id")
        if type(eid) is not int:
            raise bad_request("event_id: expected an integer")
        author = _str(d, "author") or who
        comment = d.get("comment", "")
        if type(comment) is not str:
            raise bad_request("comment: expected a string")
        now = time.time()
        try:
            ops = self.c.events.ack(eid, author, comment, now)
        except EventError as e:
            raise bad_request(str(e), status=404 if eid not in self.c.store.open_events else 409) from None
        ev = self.c.store.open_events[eid]
        ops.append((INSERT_COMMENT, [(ev.host, ev.service, now, author, f"ack #{eid}: {comment}")]))
        await self.c.commit_and_notify(ops, self.c.notifier.on_ack(ev, now))
        log.info("event %d acknowledged by %s: %s", eid, author, comment)
        return web.json_response({"event_id": eid, "acknowledged": True, "author": author})

    async def reschedule(self, request: web.Request) -> web.Response:
        """The owning poller runs the check at once, told in its next heartbeat answer."""
        _, d = await self._body(request)
        if "event_id" in d:
            eid = d["event_id"]
            ev = self.c.store.open_events.get(eid) if type(eid) is int else None
            if ev is None:
                raise bad_request(f"event_id: no open event {eid!r}", status=404)
            host, service = ev.host, ev.service
        else:
            host, service = self._target(d)
        site = self.c.objs.hosts[host].site
        view = self.c.store.checks.get((host, service))
        owners = [view.polled_by] if view is not None and view.polled_by in self.c.node.pollers else \
            [p.name for p in self.c.node.pollers.values() if p.site == site]
        if not owners:
            raise bad_request(f"no poller configured for site {site!r}", status=409)
        for poller in owners:
            self.c.commands.reschedule(poller, host, service)
        return web.json_response({"host": host, "service": service, "pollers": owners})

    async def notifications(self, request: web.Request) -> web.Response:
        """{"host", "service"?, "enabled": bool, "duration"?}: mute or unmute notifications."""
        who, d = await self._body(request)
        host, service = self._target(d)
        enabled = d.get("enabled")
        if type(enabled) is not bool:
            raise bad_request("enabled: expected true or false")
        duration = _duration(d, "duration")
        key = (host, service)
        if enabled:
            self.c.store.mutes.pop(key, None)
            ops: list[Op] = [("DELETE FROM mutes WHERE host = ? AND service = ?", [(host, service or "")])]
        else:
            until = None if duration is None else time.time() + duration
            m = Mute(host, service, until, _str(d, "author") or who)
            self.c.store.mutes[key] = m
            ops = [("INSERT OR REPLACE INTO mutes VALUES (?,?,?,?)", [(host, service or "", until, m.author)])]
        await self._commit(ops)
        m = self.c.store.mutes.get(key)
        return web.json_response({"host": host, "service": service, "enabled": enabled,
                                  "until": m.until if m else None})

    async def add_downtime(self, request: web.Request) -> web.Response:
        """{"host", "service"?, "start"?, "end" | "duration", "comment", "author"?}"""
        who, d = await self._body(request)
        host, service = self._target(d)
        now = time.time()
        start = d.get("start", now)
        if type(start) not in (int, float):
            raise bad_request("start: expected a Unix time")
        end = d.get("end")
        duration = _duration(d, "duration")
        if end is None and duration is not None:
            end = start + duration
        if type(end) not in (int, float) or end <= start:
            raise bad_request("give end (Unix time after start) or duration (e.g. 2h)")
        comment = d.get("comment", "")
        if type(comment) is not str:
            raise bad_request("comment: expected a string")
        did = self.c.store.meta.get("next_downtime_id", 1)
        self.c.store.meta["next_downtime_id"] = did + 1
        dt = Downtime(did, host, service, float(start), float(end), _str(d, "author") or who, comment)
        self.c.store.downtimes[did] = dt
        await self._commit([(SET_META, [("next_downtime_id", did + 1)]),
                            ("INSERT INTO downtimes VALUES (?,?,?,?,?,?,?)",
                             [(did, host, service, dt.start, dt.end, dt.author, comment)]),
                            (INSERT_COMMENT, [(host, service, now, dt.author, f"downtime #{did}: {comment}")])])
        return web.json_response({"id": did, "host": host, "service": service, "start": dt.start, "end": dt.end},
                                 status=201)

    async def delete_downtime(self, request: web.Request) -> web.Response:
        self.c.auth.writer(request)
        try:
            did = int(request.match_info["id"])
        except ValueError:
            raise bad_request("downtime id must be an integer") from None
        if self.c.store.downtimes.pop(did, None) is None:
            raise web.HTTPNotFound(text=json.dumps({"error": f"no downtime {did}"}), content_type="application/json")
        await self._commit([("DELETE FROM downtimes WHERE id = ?", [(did,)])])
        return web.json_response({"id": did, "deleted": True})
