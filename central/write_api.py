"""The write side of the HTTP API: ack, unack, reschedule, notifications on/off, downtimes.

Every call needs a token from `api_tokens:`; its name is the default author.
The work is done by central.operations (shared with the Jabber bot); this
module turns JSON into arguments and OpError into HTTP errors.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from central.live import Live
from central.operations import Operations
from central.validate import bad_request, parse_json
from checkd.actions import OpError
from checkd.durations import parse_duration
from checkd.engine.deployments import DEFAULT_MUTE


def _str(d: dict[str, Any], key: str, required: bool = False) -> str | None:
    v = d.get(key)
    if v is None and not required:
        return None
    if type(v) is not str or not v:
        raise bad_request(f"{key}: expected a non-empty string")
    return v


def _comment(d: dict[str, Any]) -> str:
    comment = d.get("comment", "")
    if type(comment) is not str:
        raise bad_request("comment: expected a string")
    return comment


def _duration(d: dict[str, Any], key: str) -> float | None:
    if d.get(key) is None:
        return None
    try:
        return parse_duration(d[key])
    except ValueError as e:
        raise bad_request(f"{key}: {e}") from None


def _event_id(d: dict[str, Any]) -> int:
    eid = d.get("event_id")
    if type(eid) is not int:
        raise bad_request("event_id: expected an integer")
    return eid


class WriteApi:
    def __init__(self, live: Live, operations: Operations):
        self.live, self.ops = live, operations

    async def _body(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        who = self.live.auth.writer(request)
        doc = parse_json(await request.read())
        if type(doc) is not dict:
            raise bad_request("expected a JSON object")
        return who, doc

    def _target(self, d: dict[str, Any]) -> tuple[str, str | None]:
        host, service = _str(d, "host", True), _str(d, "service")
        assert host is not None
        try:
            return self.ops.target(host, service)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None

    async def ack(self, request: web.Request) -> web.Response:
        who, d = await self._body(request)
        eid, author, comment = _event_id(d), _str(d, "author") or who, _comment(d)
        try:
            await self.ops.ack(eid, author, comment)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return web.json_response({"event_id": eid, "acknowledged": True, "author": author})

    async def unack(self, request: web.Request) -> web.Response:
        who, d = await self._body(request)
        eid, author = _event_id(d), _str(d, "author") or who
        try:
            await self.ops.unack(eid, author)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return web.json_response({"event_id": eid, "acknowledged": False, "author": author})

    async def reschedule(self, request: web.Request) -> web.Response:
        """The owning poller runs the check at once, told in its next heartbeat answer."""
        who, d = await self._body(request)
        try:
            if "event_id" in d:
                eid = d["event_id"]
                if type(eid) is not int:
                    raise OpError(f"event_id: no open event {eid!r}", 404)
                ev = self.ops.open_event(eid)
                host, service = ev.host, ev.service
            else:
                host, service = self._target(d)
            owners = await self.ops.reschedule(host, service, _str(d, "author") or who)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return web.json_response({"host": host, "service": service, "pollers": owners})

    async def notifications(self, request: web.Request) -> web.Response:
        """{"host", "service"?, "enabled": bool, "duration"?}, or {"event_id", ...} for that
        event's host or service: mute or unmute notifications."""
        who, d = await self._body(request)
        if "event_id" in d:
            try:
                host, service = await self.ops.event_target(_event_id(d))
            except OpError as e:
                raise bad_request(str(e), status=e.status) from None
        else:
            host, service = self._target(d)
        enabled = d.get("enabled")
        if type(enabled) is not bool:
            raise bad_request("enabled: expected true or false")
        mute = await self.ops.set_notifications(host, service, enabled, _duration(d, "duration"),
                                                _str(d, "author") or who)
        return web.json_response({"host": host, "service": service, "enabled": enabled,
                                  "until": mute.until if mute else None})

    async def add_downtime(self, request: web.Request) -> web.Response:
        """{"host", "service"?, "start"?, "end" | "duration", "comment", "author"?}"""
        who, d = await self._body(request)
        host, service = self._target(d)
        start = d.get("start", time.time())
        if type(start) not in (int, float):
            raise bad_request("start: expected a Unix time")
        end = d.get("end")
        duration = _duration(d, "duration")
        if end is None and duration is not None:
            end = start + duration
        if type(end) not in (int, float) or end <= start:
            raise bad_request("give end (Unix time after start) or duration (e.g. 2h)")
        dt = await self.ops.add_downtime(host, service, start, end, _str(d, "author") or who, _comment(d))
        return web.json_response({"id": dt.id, "host": host, "service": service, "start": dt.start, "end": dt.end},
                                 status=201)

    async def delete_downtime(self, request: web.Request) -> web.Response:
        who = self.live.auth.writer(request)
        try:
            did = int(request.match_info["id"])
        except ValueError:
            raise bad_request("downtime id must be an integer") from None
        try:
            await self.ops.delete_downtime(did, who)
        except OpError as e:
            raise web.HTTPNotFound(text=json.dumps({"error": str(e)}), content_type="application/json") from None
        return web.json_response({"id": did, "deleted": True})

    async def deployment(self, request: web.Request) -> web.Response:
        """The deploy hook: {"action": start|finish|abort, "hosts"?, "hostgroups"?, "module", "revision",
        "engineer", "summary"?, "mute_for"?, "id"?}."""
        who = self.live.auth.deployer(request)
        d = parse_json(await request.read())
        if type(d) is not dict:
            raise bad_request("expected a JSON object")
        action = d.get("action")
        if action not in ("start", "finish", "abort"):
            raise bad_request("action: one of start, finish, abort")
        did = _str(d, "id")
        if did is not None and (len(did) > 64 or not did.isprintable()):
            raise bad_request("id: at most 64 printable characters")
        names = {}
        for key in ("hosts", "hostgroups"):
            v = d.get(key, [])
            if isinstance(v, str):
                v = [p for p in v.split(",") if p]
            if type(v) is not list or not all(type(x) is str and x for x in v):
                raise bad_request(f"{key}: expected a list of names (or a comma-separated string)")
            names[key] = v
        module = _str(d, "module", action == "start") or ""
        revision = _str(d, "revision", action == "start") or ""
        engineer = _str(d, "engineer") or who
        summary = d.get("summary") or ""
        if type(summary) is not str:
            raise bad_request("summary: expected a string (the commit message, or a line about the rollout)")
        if summary.strip() and action != "start":
            raise bad_request("summary: give it with start (a deployment's summary is set when it starts)")
        mute_for = _duration(d, "mute_for")
        try:
            if action == "start":
                hosts = self.ops.hosts_of(names["hosts"], names["hostgroups"])
                dep, changed = await self.ops.deploy("start", hosts, module, revision, engineer,
                                                     DEFAULT_MUTE if mute_for is None else mute_for, did,
                                                     summary.strip())
            else:
                dep, changed = await self.ops.deploy(action, (), module, revision, engineer, 0.0, did)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return web.json_response({**dep.json(), "changed": changed}, status=201 if changed and action == "start"
                                 else 200)
