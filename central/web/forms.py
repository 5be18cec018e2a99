"""The POST side of the web pages: log in and out, and the operators' buttons
(acknowledge, unacknowledge, check now, notifications off/on, downtime).

Every action goes through central.operations, the same functions as the HTTP
API and the Jabber bot, with the session's api_tokens name as the author. A
form is accepted only with the session's CSRF token and from this site
(Origin / Sec-Fetch-Site); the answer is a redirect back (303), so a reload
never repeats an action.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from central.live import Live
from central.operations import Operations
from central.web.session import COOKIE, Session
from checkd.actions import OpError
from checkd.durations import parse_duration

if TYPE_CHECKING:
    from central.web.pages import Pages

MAX_COMMENT = 2000
MAX_ACK = 5000                  # rows one "Acknowledge all shown" may name
MAX_DOWNTIME = 30 * 86400.0
# What a redirect back says happened (the URL carries only this key, never text).
DONE = {"ack": "Acknowledged.", "unack": "Acknowledgement taken back.",
        "reschedule": "Check requested: the new result appears here when it arrives.",
        "muted": "Notifications disabled.", "unmuted": "Notifications enabled.",
        "downtime": "Downtime scheduled.", "comment": "Comment added.",
        "downtime_cancelled": "Downtime cancelled.", "downtime_changed": "Downtime made an hour longer.", "login": "Logged in.", "logout": "Logged out."}


class FormError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def safe_next(value: str | None) -> str:
    """Only a path on this site: never //host or a scheme (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value \
            or any(ord(c) < 32 for c in value):
        return "/"
    return value


def _with_done(path: str, code: str) -> str:
    base = "&".join(p for p in urlsplit(path).query.split("&") if p and not p.startswith("done="))
    return f"{urlsplit(path).path}?{base + '&' if base else ''}done={code}"


def _field(form: Any, key: str, required: bool = True, limit: int = 500) -> str:
    v = form.get(key)
    if v is None or not isinstance(v, str) or (required and not v.strip()):
        if required:
            raise FormError(f"{key}: missing")
        return ""
    if len(v) > limit:
        raise FormError(f"{key}: at most {limit} characters")
    return v.strip()


class Forms:
    def __init__(self, live: Live, operations: Operations, pages: Pages):
        self.live, self.ops, self.pages = live, operations, pages
        self.sessions = pages.sessions

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_post("/action/{action}", self.action)

    # --- request checks ------------------------------------------------------------------------

    def _same_site(self, request: web.Request) -> None:
        """Refuse a form posted from another site (belt and braces with SameSite and CSRF tokens)."""
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise FormError("this form was sent from another site", 403)
        origin = request.headers.get("Origin")
        if origin is None:
            return
        allowed = {request.host}
        if self.live.node.public_url:
            allowed.add(urlsplit(self.live.node.public_url).netloc)
        if urlsplit(origin).netloc not in allowed:
            raise FormError("this form was sent from another site", 403)

    def _secure(self, request: web.Request) -> bool:
        return request.secure or self.live.node.public_url.startswith("https:")

    def _error(self, request: web.Request, message: str, status: int) -> web.Response:
        ctx = self.pages.context(request, time.time())
        ctx["here"] = "/"
        return self.pages.html("error.html.j2", status=status, message=message, **ctx)

    # --- login ---------------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        nxt = safe_next(request.query.get("next"))
        if self.pages.session(request) is not None:
            raise web.HTTPSeeOther(nxt)
        return self.pages.html("login.html.j2", next=nxt, failed=False,
                               **self.pages.context(request, time.time()))

    async def login(self, request: web.Request) -> web.Response:
        try:
            self._same_site(request)
        except FormError as e:
            return self._error(request, str(e), e.status)
        form = await request.post()
        nxt = safe_next(form.get("next") if isinstance(form.get("next"), str) else None)  # type: ignore[arg-type]
        token = form.get("token")
        name = self.sessions.operator(token) if isinstance(token, str) and token.strip() else None
        if name is None:
            return self.pages.html("login.html.j2", status=401, next=nxt, failed=True,
                                   **self.pages.context(request, time.time()))
        resp = web.HTTPSeeOther(_with_done(nxt, "login"))
        resp.set_cookie(COOKIE, self.sessions.issue(name), max_age=int(self.sessions.lifetime), path="/",
                        httponly=True, samesite="Strict", secure=self._secure(request))
        raise resp

    async def logout(self, request: web.Request) -> web.Response:
        """Ends the session for good (central forgets its ID). Like every form, only with the
        session's CSRF token: another site cannot log an operator out."""
        form = await request.post()
        if self.pages.session(request) is not None:
            try:
                self.sessions.end(self._session(request, form))
            except FormError as e:
                return self._error(request, str(e), e.status)
        resp = web.HTTPSeeOther("/?done=logout")
        resp.del_cookie(COOKIE, path="/")
        raise resp

    # --- actions -------------------------------------------------------------------------------

    def _session(self, request: web.Request, form: Any) -> Session:
        self._same_site(request)
        s = self.pages.session(request)
        if s is None:
            raise FormError("log in first: the page is read-only without a login", 401)
        csrf = form.get("csrf")
        if not isinstance(csrf, str) or not self.sessions.csrf_ok(s, csrf):
            raise FormError("this form has expired (or did not come from this page): reload and try again", 403)
        return s

    def _target(self, form: Any) -> tuple[str, str | None]:
        host, service = _field(form, "host"), _field(form, "service", required=False) or None
        return self.ops.target(host, service)

    async def action(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            s = self._session(request, form)
            if not s.can_act:
                raise FormError(f"{s.who} logged in with a read token (read_tokens): it may look, not act", 403)
            code = await self._do(request.match_info["action"], form, s.name)
        except FormError as e:
            return self._error(request, str(e), e.status)
        except OpError as e:
            return self._error(request, str(e), e.status)
        raise web.HTTPSeeOther(_with_done(safe_next(form.get("next")), code))  # type: ignore[arg-type]

    async def _do(self, action: str, form: Any, author: str) -> str:
        if action == "ack":
            # One problem's button, or "Acknowledge all shown" after a storm (every row's ID).
            eids = form.getall("event_id", [])
            if not eids or len(eids) > MAX_ACK or not all(isinstance(e, str) and e.isdigit() for e in eids):
                raise FormError(f"event_id: 1 to {MAX_ACK} event numbers (nothing to acknowledge?)")
            await self.ops.ack_many([int(e) for e in eids], author,
                                    _field(form, "comment", required=False, limit=MAX_COMMENT))
            return action
        if action == "unack":
            try:
                eid = int(_field(form, "event_id"))
            except ValueError:
                raise FormError("event_id: expected a number") from None
            await self.ops.unack(eid, author)
            return action
        if action == "reschedule":
            await self.ops.reschedule(*self._target(form), author)
            return "reschedule"
        if action == "notifications":
            host, service = self._target(form)
            enabled = _field(form, "enabled") == "1"
            duration = _duration(_field(form, "duration", required=False)) if not enabled else None
            await self.ops.set_notifications(host, service, enabled, duration, author)
            return "unmuted" if enabled else "muted"
        if action == "downtime_end":
            try:
                did = int(_field(form, "downtime_id"))
            except ValueError:
                raise FormError("downtime_id: expected a number") from None
            if _field(form, "change") == "cancel":
                await self.ops.delete_downtimes([did], author)
                return "downtime_cancelled"
            dt = self.ops.engine.store.downtimes.get(did)
            if dt is None:
                raise FormError(f"no downtime {did}", 404)
            await self.ops.change_downtimes([did], author, end=dt.end + 3600)
            return "downtime_changed"
        if action == "comment":
            host, service = self._target(form)
            await self.ops.add_comment(host, service, author, _field(form, "text", limit=MAX_COMMENT))
            return "comment"
        if action == "downtime":
            host, service = self._target(form)
            duration = _duration(_field(form, "duration"))
            if duration is None or not 0 < duration <= MAX_DOWNTIME:
                raise FormError("duration: from a minute to 30 days, e.g. 2h")
            now = time.time()
            await self.ops.add_downtime(host, service, now, now + duration, author,
                                        _field(form, "comment", required=False, limit=MAX_COMMENT))
            return "downtime"
        raise FormError(f"no action {action!r}", 404)


def _duration(text: str) -> float | None:
    if not text:
        return None
    try:
        return parse_duration(text)
    except ValueError as e:
        raise FormError(f"duration: {e}") from None
