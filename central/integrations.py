"""Acknowledgements coming back from paging and chat tools: PagerDuty's V3 webhooks,
Opsgenie's outgoing webhook and Slack's Acknowledge button, each authenticated by
the secret the node file gives it, each acking through central.operations (so the
event's history shows who, "via PagerDuty").

Answers: 200 (done, or nothing to do: another event type, already acknowledged),
401 (no or bad signature/token, logged with the client's address), 404 (not a
checkd event, or no open event with that ID), 400 (not the tool's JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from central.live import Live
from central.operations import Operations
from checkd import bounds
from checkd.actions import OpError
from checkd.api_json import json_response
from checkd.engine.notify.slack import ACK_ACTION

log = logging.getLogger(__name__)

DEDUP = re.compile(r"checkd-(\d+)")
SLACK_WINDOW = 300.0            # Slack's advice: refuse a request signed more than 5 minutes ago
OPSGENIE_HEADER = "X-Checkd-Token"


def _answer(status: int, **doc: Any) -> web.Response:
    return json_response(doc, status=status)


def event_of(key: Any) -> int | None:
    """The checkd event ID in a dedup key / alias (`checkd-367768`), or None."""
    m = DEDUP.fullmatch(key) if isinstance(key, str) else None
    return int(m.group(1)) if m else None


class Integrations:
    def __init__(self, live: Live, operations: Operations):
        self.live, self.ops = live, operations

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/integrations/pagerduty", self.pagerduty)
        app.router.add_post("/api/v1/integrations/opsgenie", self.opsgenie)
        app.router.add_post("/api/v1/integrations/slack", self.slack)

    def _secret(self, section: str, key: str) -> str:
        return str(self.live.node.section(section).get(key) or "")

    def _refuse(self, request: web.Request, tool: str, why: str) -> web.Response:
        log.warning("%s webhook from %s refused: %s", tool, request.remote, why)
        return _answer(401, error=f"{tool}: {why}")

    async def _ack(self, key: Any, who: str, tool: str, note: str) -> web.Response:
        eid = event_of(key)
        if eid is None:
            return _answer(404, error=f"{key!r} is not a checkd dedup key (checkd-<event ID>): not ours")
        ev = self.ops.engine.store.open_events.get(self.ops.engine.store.aliases.get(eid, eid))
        if ev is not None and ev.acknowledged:
            # Our own acknowledge echoed back, or a second ack: nobody is told twice.
            return _answer(200, event_id=ev.id, acknowledged=True, already=True)
        # A paging tool's words, not an operator's input: cut to the limits rather than lose the ack.
        author = f"{(who or 'someone')[:bounds.MAX_NAME - 20]} via {tool}"
        try:
            await self.ops.ack(eid, author, note[:bounds.MAX_COMMENT])
        except OpError as e:
            return _answer(e.status, error=str(e))
        return _answer(200, event_id=eid, acknowledged=True, author=author)

    # --- PagerDuty: V3 webhook, X-PagerDuty-Signature: v1=HEX[,v1=HEX] over the raw body ---------

    async def pagerduty(self, request: web.Request) -> web.Response:
        secret = self._secret("pagerduty", "webhook_secret")
        raw = await request.read()
        if not secret:
            return self._refuse(request, "pagerduty", "no webhook_secret under pagerduty: in the node file")
        expected = "v1=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        given = [s.strip() for s in request.headers.get("X-PagerDuty-Signature", "").split(",")]
        if not any(hmac.compare_digest(expected, s) for s in given):
            return self._refuse(request, "pagerduty", "bad or missing X-PagerDuty-Signature")
        try:
            event = json.loads(raw)["event"]
            kind = event["event_type"]
        except (ValueError, KeyError, TypeError):
            return _answer(400, error="pagerduty: expected a V3 webhook: {\"event\": {\"event_type\": ...}}")
        if kind != "incident.acknowledged":
            return _answer(200, ignored=kind)
        data = event.get("data") or {}
        agent = event.get("agent") or {}
        who = agent.get("summary") or agent.get("email") or ""
        key = data.get("incident_key") or (data.get("alert") or {}).get("alert_key")
        return await self._ack(key, str(who), "PagerDuty", f"acknowledged in PagerDuty (incident "
                                                           f"#{data.get('number', '?')})")

    # --- Opsgenie: outgoing webhook with a shared token in a header --------------------------

    async def opsgenie(self, request: web.Request) -> web.Response:
        section = self.live.node.section("opsgenie")
        secret = str(section.get("webhook_token") or "")
        header = str(section.get("webhook_header") or OPSGENIE_HEADER)
        if not secret:
            return self._refuse(request, "opsgenie", "no webhook_token under opsgenie: in the node file")
        given = request.headers.get(header, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return self._refuse(request, "opsgenie", f"bad or missing {header}")
        try:
            doc = json.loads(await request.read())
            action, alert = doc["action"], doc["alert"]
        except (ValueError, KeyError, TypeError):
            return _answer(400, error="opsgenie: expected {\"action\": ..., \"alert\": {\"alias\": ...}}")
        if action != "Acknowledge":
            return _answer(200, ignored=action)
        who = alert.get("username") or doc.get("source", {}).get("name") or ""
        return await self._ack(alert.get("alias"), str(who), "Opsgenie", "acknowledged in Opsgenie")

    # --- Slack: interactivity (the Acknowledge button), signed v0 with the signing secret ------

    async def slack(self, request: web.Request) -> web.Response:
        secret = self._secret("slack", "signing_secret")
        raw = await request.read()
        if not secret:
            return self._refuse(request, "slack", "no signing_secret under slack: in the node file")
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > SLACK_WINDOW:
            return self._refuse(request, "slack", "X-Slack-Request-Timestamp missing or over 5 minutes off")
        base = b"v0:" + stamp.encode() + b":" + raw
        expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Slack-Signature", "")):
            return self._refuse(request, "slack", "bad or missing X-Slack-Signature")
        try:
            doc = json.loads(parse_qs(raw.decode())["payload"][0])
            actions = doc.get("actions") or []
            user = doc.get("user") or {}
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return _answer(400, error="slack: expected an interactivity form with a payload= JSON")
        action = next((a for a in actions if isinstance(a, dict) and a.get("action_id") == ACK_ACTION), None)
        if action is None:
            return _answer(200, ignored=doc.get("type"))
        who = user.get("name") or user.get("username") or user.get("id") or ""
        return await self._ack(f"checkd-{action.get('value')}", str(who), "Slack", "acknowledged in Slack")
