"""Local stand-ins for PagerDuty's Events API v2, Opsgenie's Alert API v2, Slack's Web API
(chat.postMessage, chat.update) and incoming webhooks, and a generic webhook: aiohttp on
127.0.0.1 in a thread, answering as each service documents (status codes, required
fields, the answer's body) and recording every request. `fail[key]` makes the next
requests for a routing key, an API key or a Slack channel fail with the HTTP statuses (or
Slack errors) listed."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.helpers import free_port

PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}
SLACK_TOKEN = "xoxb-test-token"
SLACK_CHANNELS = {"#ops": "C0OPS", "#flaky": "C0FLAKY", "#gone": "C0GONE"}   # name -> the ID Slack answers
SLACK_HOOK = "/services/T000/B000/hooksecret"


@dataclass
class Request:
    api: str                    # pagerduty, opsgenie, slack, slack-hook, webhook
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int                 # what the receiver answered


@dataclass
class Receivers:
    port: int = field(default_factory=free_port)
    seen: list[Request] = field(default_factory=list)
    fail: dict[str, list[Any]] = field(default_factory=dict)    # key -> statuses to answer first
    genie_keys: set[str] = field(default_factory=lambda: {"og-key", "og-flaky", "og-refused"})
    _ts: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def of(self, api: str, status: int | None = 202) -> list[Request]:
        with self._lock:
            return [s for s in self.seen if s.api == api and (status is None or s.status == status)]

    # --- the server -----------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_post("/v2/enqueue", self._pagerduty)
            app.router.add_post("/v2/alerts", self._opsgenie)
            app.router.add_post("/v2/alerts/{alias}/{action}", self._opsgenie)
            app.router.add_post("/api/{method}", self._slack)
            app.router.add_post(SLACK_HOOK, self._slack_hook)
            app.router.add_post("/hook", self._webhook)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "receivers did not start"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _record(self, api: str, request: web.Request, body: Any, status: int) -> None:
        with self._lock:
            self.seen.append(Request(api, request.path, dict(request.query), dict(request.headers), body, status))

    def _planned(self, key: str) -> Any:
        with self._lock:
            plan = self.fail.get(key)
            return plan.pop(0) if plan else None

    async def _json(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.read())
        except ValueError:
            return None

    # --- PagerDuty Events API v2: 202 {"status": "success", ...}; 400 "invalid event" ------------

    async def _pagerduty(self, request: web.Request) -> web.Response:
        doc = await self._json(request)
        status, answer = self._pd_answer(doc)
        self._record("pagerduty", request, doc, status)
        return web.json_response(answer, status=status)

    def _pd_answer(self, doc: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(doc, dict):
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["not JSON"]}
        planned = self._planned(str(doc.get("routing_key")))
        if planned is not None and planned < 500:
            return planned, {"status": "invalid event", "message": "Event object is invalid",
                             "errors": ["routing_key: integration not found"]}
        if planned is not None:
            return planned, {"status": "unavailable", "message": "try again"}
        errors = []
        if not doc.get("routing_key"):
            errors.append("'routing_key' is missing or blank")
        if doc.get("event_action") not in PD_ACTIONS:
            errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
        if doc.get("event_action") in ("acknowledge", "resolve") and not doc.get("dedup_key"):
            errors.append("'dedup_key' is required to acknowledge or resolve")
        if doc.get("event_action") == "trigger":
            p = doc.get("payload") or {}
            for key in ("summary", "source", "severity"):
                if not p.get(key):
                    errors.append(f"'payload.{key}' is missing or blank")
            if p.get("severity") and p["severity"] not in PD_SEVERITIES:
                errors.append("'payload.severity' is invalid")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        return 202, {"status": "success", "message": "Event processed", "dedup_key": doc.get("dedup_key")}

    # --- Opsgenie Alert API v2: GenieKey auth; 202 {"result": "Request will be processed"} --------

    async def _opsgenie(self, request: web.Request) -> web.Response:
        doc = await self._json(request)
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        action = request.match_info.get("action", "create")
        planned = self._planned(key)
        if scheme != "GenieKey" or key not in self.genie_keys:
            status, answer = 401, {"message": "Could not authenticate", "took": 0.0, "requestId": "r"}
        elif planned is not None:
            status, answer = planned, {"message": "Internal Server Error", "took": 0.0, "requestId": "r"}
        elif action == "create" and not (isinstance(doc, dict) and doc.get("message")):
            status, answer = 422, {"message": "Request body is not processable", "errors": {"message": "required"}}
        elif action != "create" and (action not in ("acknowledge", "close")
                                     or request.query.get("identifierType") != "alias"):
            status, answer = 400, {"message": "identifierType must be alias here", "took": 0.0}
        else:
            status, answer = 202, {"result": "Request will be processed", "took": 0.01, "requestId": "r"}
        self._record("opsgenie", request, doc, status)
        return web.json_response(answer, status=status)

    # --- Slack Web API: always 200 with {"ok": ...}; incoming webhook: 200 "ok" ------------------

    async def _slack(self, request: web.Request) -> web.Response:
        doc = await self._json(request)
        method = request.match_info["method"]
        answer: dict[str, Any]
        planned = self._planned(str(doc.get("channel"))) if isinstance(doc, dict) else None
        if isinstance(planned, int):        # HTTP 429 (rate limited, with Retry-After) or 5xx
            self._record("slack", request, doc, planned)
            return web.json_response({"ok": False, "error": "ratelimited"}, status=planned,
                                     headers={"Retry-After": "1"})
        if planned is not None:
            answer = {"ok": False, "error": planned}
        elif request.headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
            answer = {"ok": False, "error": "invalid_auth"}
        elif not isinstance(doc, dict) or not doc.get("channel") or not doc.get("text"):
            answer = {"ok": False, "error": "no_text" if isinstance(doc, dict) and doc.get("channel")
                      else "channel_not_found"}
        elif method == "chat.postMessage":
            channel = SLACK_CHANNELS.get(doc["channel"], doc["channel"])
            answer = {"ok": True, "channel": channel, "ts": f"1700000000.{next(self._ts):06d}",
                      "message": {"text": doc["text"]}}
        elif method == "chat.update":
            answer = ({"ok": True, "channel": doc["channel"], "ts": doc.get("ts"), "text": doc["text"]}
                      if doc["channel"] in SLACK_CHANNELS.values() and doc.get("ts")
                      else {"ok": False, "error": "channel_not_found"})
        else:
            answer = {"ok": False, "error": "unknown_method"}
        self._record("slack", request, {**(doc if isinstance(doc, dict) else {}), "_answer": answer}, 200)
        return web.json_response(answer)

    async def _slack_hook(self, request: web.Request) -> web.Response:
        doc = await self._json(request)
        ok = isinstance(doc, dict) and bool(doc.get("text"))
        self._record("slack-hook", request, doc, 200 if ok else 400)
        return web.Response(text="ok" if ok else "invalid_payload", status=200 if ok else 400)

    async def _webhook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            doc: Any = json.loads(raw)
        except ValueError:
            doc = raw.decode(errors="replace")
        self._record("webhook", request, doc, 204)
        return web.Response(status=204)
