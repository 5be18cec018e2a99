"""The operator calls both daemons answer over HTTP, with the same shapes: ack, run a
check now, notifications on and off. Central's write API adds the rest
(central/write_api.py); a poller answers these while it alerts on its own
(checkd/poller_api.py). JSON in, the daemon's ChatActions (checkd/actions.py) do the
work, OpError becomes the HTTP error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from checkd import bounds
from checkd.actions import ChatActions, OpError
from checkd.api_json import bad_input, bad_request, json_response, parse_json
from checkd.durations import parse_duration

MAX_IDS = 1000                  # event IDs one acknowledgement names
MAX_ACK_EXPIRY = 366 * 86400.0


def str_field(d: dict[str, Any], key: str, required: bool = False, limit: int = bounds.MAX_NAME) -> str | None:
    """A name (author, host, module, ...): a non-empty string of at most `limit` characters."""
    v = d.get(key)
    if v is None and not required:
        return None
    if type(v) is not str or not v:
        raise bad_request(f"{key}: expected a non-empty string")
    try:
        return bounds.text(v, key, limit)
    except ValueError as e:
        raise bad_input(e) from None


def comment_field(d: dict[str, Any], key: str = "comment") -> str:
    try:
        return bounds.text(d.get(key, ""), key, bounds.MAX_COMMENT)
    except ValueError as e:
        raise bad_input(e) from None


def duration_field(d: dict[str, Any], key: str, limit: float = bounds.MAX_SPAN) -> float | None:
    """A duration ("2h", or seconds): finite, above 0 and at most `limit`; None when not given."""
    if d.get(key) is None:
        return None
    try:
        return bounds.span(parse_duration(d[key]), key, limit)
    except ValueError as e:
        raise bad_request(f"{key}: {e}" if not str(e).startswith(key) else str(e)) from None


def event_id_field(d: dict[str, Any]) -> int:
    eid = d.get("event_id")
    if type(eid) is not int or not 0 < eid <= bounds.INT64:
        raise bad_request("event_id: expected an integer (an event ID)")
    return eid


def ack_options(d: dict[str, Any]) -> tuple[bool, float | None]:
    """An acknowledgement's `sticky` (default true) and when it expires, from `expire` (a
    duration from now) or `expires` (a Unix time); None: never."""
    sticky = d.get("sticky", True)
    if type(sticky) is not bool:
        raise bad_request("sticky: expected true or false")
    expires = d.get("expires")
    if d.get("expire") is not None:
        duration = duration_field(d, "expire")
        if duration is None or not 0 < duration <= MAX_ACK_EXPIRY:
            raise bad_request("expire: a duration up to a year, e.g. 2h")
        expires = time.time() + duration
    elif expires is not None and (type(expires) not in (int, float) or not math.isfinite(expires)
                                  or not time.time() < expires <= time.time() + MAX_ACK_EXPIRY):
        raise bad_request("expires: a Unix time within the next year")
    return sticky, None if expires is None else float(expires)


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
        host = str_field(d, "host", True, bounds.MAX_CHECK_NAME)
        service = str_field(d, "service", False, bounds.MAX_CHECK_NAME)
        assert host is not None
        try:
            return self.ops.target(host, service)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None

    async def ack(self, request: web.Request) -> web.Response:
        """{"event_id": N} or {"event_ids": [N, ...]} or {"host": NAME} (its open problems), with
        "comment"?, "author"?, "sticky"? (default true), "expire"? (a duration) or "expires"?
        (a Unix time)."""
        who, d = await self._body(request)
        author, comment = str_field(d, "author") or who, comment_field(d)
        sticky, expires = ack_options(d)
        try:
            if "event_id" in d:
                eids = [event_id_field(d)]
            elif "event_ids" in d:
                eids = d["event_ids"]
                if type(eids) is not list or not 0 < len(eids) <= MAX_IDS or \
                        any(type(e) is not int or not 0 < e <= bounds.INT64 for e in eids):
                    raise bad_request(f"event_ids: expected a list of 1 to {MAX_IDS} event IDs")
            elif "host" in d:
                eids = self.ops.problems_of(str_field(d, "host", True, bounds.MAX_CHECK_NAME) or "")
                if not eids:
                    raise OpError(f"no open problems on {d['host']}", 404)
            else:
                raise bad_request("give event_id, event_ids or host")
            acked, missing = await self.ops.ack_many(eids, author, comment, sticky, expires)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        answer = {"author": author, "sticky": sticky, "expires": expires}
        if "event_id" in d:
            return json_response({"event_id": eids[0], "acknowledged": True, **answer})
        return json_response({"acknowledged": [ev.id for ev in acked], "not_open": missing, **answer})

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
        return json_response({"host": host, "service": service, "pollers": owners})

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
        return json_response({"host": host, "service": service, "enabled": enabled,
                                  "until": mute.until if mute else None})
