"""Who may read: with `web: {read: login}`, every page, the read API, /metrics and the
graphs need a web login (a session of api_tokens or read_tokens) or `Authorization:
Bearer` with one of those tokens; `read: open` (the default) serves them to anyone who
reaches the port, as before (docs/security.md, "Reading").

A page asked for without a login redirects to the login form; the API answers 401.
The login form, the static files (CSS and script, nothing secret) and NRDP (its own
token) stay open; ingest and every write check their own tokens as before.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from central.live import Live
from central.web.session import COOKIE, READER, Sessions
from checkd.bearer import bearer, match

OPEN = ("/login", "/static/", "/nrdp")
API = ("/api/", "/metrics", "/graph/")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def read_mode(live: Live) -> str:
    return str(live.node.section("web").get("read", "open"))


class ReadAccess:
    def __init__(self, live: Live, sessions: Sessions):
        self.live, self.sessions = live, sessions

    def allowed(self, request: web.Request) -> bool:
        token = bearer(request)
        if token is not None:
            node = self.live.node
            readers = {**node.api_tokens, **{READER + k: v for k, v in node.read_tokens.items()}}
            return match(token, readers) is not None
        return self.sessions.load(request.cookies.get(COOKIE)) is not None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD") or read_mode(self.live) == "open" \
                or request.path.startswith(OPEN) or self.allowed(request):
            return await handler(request)
        if request.path.startswith(API) or "Authorization" in request.headers:
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": "reads need a token from read_tokens or api_tokens (web: read: login)"}),
                content_type="application/json", headers={"WWW-Authenticate": "Bearer"})
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
