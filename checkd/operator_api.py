"""The operator calls both daemons answer over HTTP, with the same shapes: ack, run a
check now, notifications on and off. Central's write API adds the rest
(central/write_api.py); a poller answers these while it alerts on its own
(checkd/poller_api.py). JSON in, the daemon's ChatActions (checkd/actions.py) do the
work, OpError becomes the HTTP error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from checkd.actions import ChatActions, OpError
from checkd.api_json import bad_request, parse_json
from checkd.durations import parse_duration


def str_field(d: dict[str, Any], key: str, required: bool = False) -> str | None:
    v = d.get(key)
    if v is None and not required:
        return None
    if type(v) is not str or not v:
        raise bad_request(f"{key}: expected a non-empty string")
    return v


def comment_field(d: dict[str, Any]) -> str:
    comment = d.get("comment", "")
    if type(comment) is not str:
        raise bad_request("comment: expected a string")
    return comment


def duration_field(d: dict[str, Any], key: str) -> float | None:
    if d.get(key) is None:
        return None
    try:
        return parse_duration(d[key])
    except ValueError as e:
        raise bad_request(f"{key}: {e}") from None


def event_id_field(d: dict[str, Any]) -> int:
    eid = d.get("event_id")
    if type(eid) is not int:
        raise bad_request("event_id: expected an integer")
    return eid


class OperatorApi:
    def __init__(self, ops: ChatActions, writer: Callable[[web.Request], str]):
        """`writer`: the name of the token a write call carries (or raises 401)."""
        self.ops, self.writer = ops, writer

    async def _body(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        who = self.writer(request)
        doc = parse_json(await request.read())
        if type(doc) is not dict:
            raise bad_request("expected a JSON object")
        return who, doc

    def _target(self, d: dict[str, Any]) -> tuple[str, str | None]:
        host, service = str_field(d, "host", True), str_field(d, "service")
        assert host is not None
        try:
            return self.ops.target(host, service)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None

    async def ack(self, request: web.Request) -> web.Response:
        who, d = await self._body(request)
        eid, author, comment = event_id_field(d), str_field(d, "author") or who, comment_field(d)
        try:
            await self.ops.ack(eid, author, comment)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return web.json_response({"event_id": eid, "acknowledged": True, "author": author})

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
            owners = await self.ops.reschedule(host, service, str_field(d, "author") or who)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return web.json_response({"host": host, "service": service, "pollers": owners})

    async def notifications(self, request: web.Request) -> web.Response:
        """{"host", "service"?, "enabled": bool, "duration"?}, or {"event_id", ...} for that
        event's host or service: mute or unmute notifications."""
        who, d = await self._body(request)
        if "event_id" in d:
            try:
                host, service = await self.ops.event_target(event_id_field(d))
            except OpError as e:
                raise bad_request(str(e), status=e.status) from None
        else:
            host, service = self._target(d)
        enabled = d.get("enabled")
        if type(enabled) is not bool:
            raise bad_request("enabled: expected true or false")
        try:
            mute = await self.ops.set_notifications(host, service, enabled, duration_field(d, "duration"),
                                                    str_field(d, "author") or who)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return web.json_response({"host": host, "service": service, "enabled": enabled,
                                  "until": mute.until if mute else None})
