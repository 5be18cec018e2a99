"""The write side of central's HTTP API: ack, unack, reschedule, notifications on/off,
comments, deployments (downtimes: central/downtimes_api.py).

Every call needs a token from `api_tokens:`; its name is the default author.
The work is done by central.operations (shared with the Jabber bot); this
module turns JSON into arguments and OpError into HTTP errors. The calls a poller
answers too live in checkd/operator_api.py.
"""

from __future__ import annotations


from aiohttp import web

from central.live import Live
from central.operations import Operations
from checkd.actions import OpError
from checkd.api_json import bad_request, json_response, parse_json
from checkd.engine.deployments import DEFAULT_MUTE, MAX_MUTE, SUMMARY_MAX
from checkd.operator_api import OperatorApi, comment_field, duration_field, event_id_field, str_field


class WriteApi(OperatorApi):
    ops: Operations                     # all of central's operations

    def __init__(self, live: Live, operations: Operations):
        super().__init__(operations, live.auth.writer)
        self.live = live

    async def unack(self, request: web.Request) -> web.Response:
        who, d = await self._body(request)
        eid, author = event_id_field(d), str_field(d, "author") or who
        try:
            await self.ops.unack(eid, author)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return json_response({"event_id": eid, "acknowledged": False, "author": author})

    async def add_comment(self, request: web.Request) -> web.Response:
        """{"host", "service"?, "text", "author"?} or {"event_id", "text", ...} (that problem's check)."""
        who, d = await self._body(request)
        text = comment_field(d, "text")
        try:
            if "event_id" in d:
                eid: int | None = event_id_field(d)
                assert eid is not None
                host, service = await self.ops.event_target(eid)
            else:
                (host, service), eid = self._target(d), None
            eid = await self.ops.add_comment(host, service, str_field(d, "author") or who, text, eid)
        except OpError as e:
            raise bad_request(str(e), status=e.status) from None
        return json_response({"host": host, "service": service, "event_id": eid}, status=201)

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
        did = str_field(d, "id")
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
        module = str_field(d, "module", action == "start") or ""
        revision = str_field(d, "revision", action == "start") or ""
        engineer = str_field(d, "engineer") or who
        summary = d.get("summary") or ""
        if type(summary) is not str:
            raise bad_request("summary: expected a string (the commit message, or a line about the rollout)")
        if len(summary) > 64 * SUMMARY_MAX:         # kept: its first SUMMARY_MAX characters
            raise bad_request(f"summary: at most {64 * SUMMARY_MAX:,} characters (got {len(summary):,})", status=413)
        if summary.strip() and action != "start":
            raise bad_request("summary: give it with start (a deployment's summary is set when it starts)")
        mute_for = duration_field(d, "mute_for", MAX_MUTE)
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
        return json_response({**dep.json(), "changed": changed}, status=201 if changed and action == "start"
                                 else 200)
