"""The GET side of the web pages: the overview (`/`), host and service pages,
and the live part of each, which the page's script fetches again every few
seconds with `X-Checkd-Live: 1` (answered 304 while nothing shown has changed);
the history search (`/history`), which is not live.

Templates are autoescaped Jinja2; every answer carries a Content-Security-Policy
that allows no inline script, so text from plugins or people can only ever be text.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from importlib import resources
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from central.history_query import MAX_LIMIT, BadQuery, HistoryQuery
from central.availability_api import ReportQuery, compute
from central.live import Live
from central.read_api import ReadApi
from central.web import availability, checks, views
from central.web.forms import DONE
from central.web.rows import Rows, row_key
from central.web.session import COOKIE, DEFAULT_LIFETIME, Session, Sessions
from checkd import bounds
from checkd.durations import format_duration
from checkd.engine import history
from checkd.report_periods import DEFAULT as DEFAULT_PERIOD, PERIODS

STATIC = Path(str(resources.files("central") / "static"))
DEFAULT_REFRESH = 5.0
DEFAULT_ROWS = 500              # problem rows on the overview unless ?limit= says otherwise
COMPRESS_ABOVE = 16 << 10       # bytes; a phone on a slow link should not fetch megabytes
REFRESH_RANGE = (1.0, 300.0)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def clock(ts: float | None) -> str:
    return _strftime("%Y-%m-%d %H:%M:%S UTC", ts)


def iso(ts: float | None) -> str:
    return _strftime("%Y-%m-%dT%H:%M:%SZ", ts)


def _strftime(fmt: str, ts: float | None) -> str:
    """A time no clock shows (NaN, 1e308: stored before inputs were bounded) shows as nothing,
    rather than failing the whole page."""
    try:
        return "" if not ts else time.strftime(fmt, time.gmtime(ts))
    except (OverflowError, ValueError, OSError):
        return ""


def _state_class(state: str) -> str:
    return state.lower()


class Pages:
    def __init__(self, live: Live, read: ReadApi, *, graphing: bool):
        self.live, self.read, self.graphing = live, read, graphing
        self.store, self.db = read.store, read.db
        # Settings and tokens are read at each use: a reload (SIGHUP) may change them.
        self.sessions = Sessions(live.node.state_dir, lambda: live.node.api_tokens,
                                 lambda: float(self.settings.get("session_lifetime", DEFAULT_LIFETIME)),
                                 lambda: live.node.read_tokens)
        self.env = jinja2.Environment(loader=jinja2.PackageLoader("central", "templates/web"),
                                      autoescape=True, trim_blocks=True, lstrip_blocks=True,
                                      undefined=jinja2.StrictUndefined)
        self.env.filters.update(dur=lambda s: format_duration(max(0.0, s)), clock=clock, iso=iso,
                                cls=_state_class, q=lambda s: quote(s, safe=""))
        self.env.globals.update(static=self.static_url, host_url=views.host_url, check_url=views.check_url,
                                title_text=self.title_text, messages=DONE,
                                weathermaps=lambda: bool(live.objs.weathermaps))
        self._versions: dict[str, str] = {}
        self.rows = Rows()

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.live.node.section("web")

    @property
    def refresh(self) -> float:
        return float(self.settings.get("refresh", DEFAULT_REFRESH))

    @property
    def title(self) -> str:
        return str(self.settings.get("title", "checkd"))

    @property
    def max_rows(self) -> int:
        return int(self.settings.get("max_rows", DEFAULT_ROWS))

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.overview)
        app.router.add_get("/host/{host}", self.host)
        app.router.add_get("/service/{host}/{service:.+}", self.service)
        app.router.add_get("/event/{id}", self.event)
        app.router.add_get("/history", self.history)
        app.router.add_get("/availability", self.availability)
        app.router.add_static("/static/", STATIC)

    # --- helpers -----------------------------------------------------------------------------

    def static_url(self, name: str) -> str:
        """With a content hash, so a new version is never served from a stale cache."""
        v = self._versions.get(name)
        if v is None:
            v = self._versions[name] = hashlib.blake2b((STATIC / name).read_bytes(), digest_size=6).hexdigest()
        return f"/static/{name}?v={v}"

    def title_text(self, m: dict[str, Any]) -> str:
        """The tab's title: what is wrong, so a background tab tells it too."""
        if not m["problems"]:
            return f"{'NO PROBLEMS KNOWN' if m['caveats'] else 'ALL OK'} · {self.title}"
        worst = m["problems"][0]["state"] if m["unhandled"] else "handled"
        return f"{m['unhandled']} unhandled ({worst}) · {len(m['problems'])} problems · {self.title}"

    def session(self, request: web.Request) -> Session | None:
        return self.sessions.load(request.cookies.get(COOKIE))

    def refresh_of(self, request: web.Request) -> float:
        try:
            r = float(request.query.get("refresh", self.refresh))
        except ValueError:
            r = self.refresh
        return min(max(r, REFRESH_RANGE[0]), REFRESH_RANGE[1])

    def context(self, request: web.Request, now: float) -> dict[str, Any]:
        s = self.session(request)
        return {"now": now, "user": s.who if s else None, "can_act": s is not None and s.can_act,
                "csrf": self.sessions.csrf(s) if s else "",
                "default_refresh": self.refresh, "lifetime": self.sessions.lifetime,
                "login_enabled": self.sessions.enabled, "site_title": self.title,
                "refresh": self.refresh_of(request), "here": request.path_qs, "done": request.query.get("done", "")}

    def html(self, template: str, status: int = 200, **ctx: Any) -> web.Response:
        text = self.env.get_template(template).render(**ctx)
        resp = web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)
        if len(text) > COMPRESS_ABOVE:
            resp.enable_compression()       # only when the browser accepts gzip/deflate
        return resp

    def _live(self, request: web.Request, shown: str, ctx: dict[str, Any], full: str, fragment: str,
              late: Callable[[], dict[str, Any]] | None = None) -> web.Response:
        """The whole page, or with `X-Checkd-Live: 1` only its live part. The ETag digests `shown`,
        a digest of what the page shows but its durations (the script counts those on by itself);
        when it matches, the answer is 304 and nothing is rendered (`late` adds to the context then)."""
        etag = '"' + hashlib.blake2b(f"{shown}\0{ctx['user']}\0{ctx['csrf']}".encode(),
                                     digest_size=12).hexdigest() + '"'
        ctx["etag"] = etag
        live = request.headers.get("X-Checkd-Live") == "1"
        if live and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={**HEADERS, "ETag": etag})
        if late is not None:
            ctx.update(late())
        if live:
            resp = self.html(fragment, **ctx)
        else:
            resp = self.html(full, **ctx)
        resp.headers["ETag"] = etag
        return resp

    def sites(self) -> list[str]:
        return sorted({h.site for h in self.live.objs.hosts.values()})

    def not_found(self, request: web.Request, message: str) -> web.Response:
        return self.html("error.html.j2", status=404, message=message, **self.context(request, time.time()))

    # --- pages ---------------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.Response:
        now = time.time()
        f = views.Filters.from_query(request.query)
        model = views.overview(self.read, f, now)
        limit = f.rows(self.max_rows)
        shown = model["problems"] if limit is None else model["problems"][:limit]
        keys = [row_key(p) for p in shown]
        # hash(): fast over 5,000 rows, and an ETag need only be stable within one central process.
        digest = f"{hash(tuple(keys)):x}:{len(model['problems'])}:" \
                 f"{repr((model['totals'], model['sites'], model['unhandled_by_state']))}"
        ctx = self.context(request, now)
        all_sites = self.sites()
        groups = sorted({*self.live.objs.host_groups, *(g for h in self.live.objs.hosts.values() for g in h.groups),
                         *(g for s in self.live.objs.services.values() for g in s.groups)})
        more = len(model["problems"]) - len(shown)
        ctx.update(m=model, f=f, all_sites=all_sites, all_groups=groups, all_states=views.TOTALS_ORDER,
                   more=more, shown=shown, all_url="/?" + urlencode([*((k, v) for k, v in f.pairs() if k != "limit"),
                                                        ("limit", "all")]))
        return self._live(request, digest, ctx, "overview.html.j2", "_overview_region.html.j2",
                          late=lambda: {"rows": self.rows.render(shown, keys, now)})

    async def _check(self, request: web.Request, host: str, service: str | None) -> web.Response:
        now = time.time()
        try:
            model = await checks.page(self.read, host, service, now, graphing=self.graphing)
        except checks.UnknownCheck as e:
            return self.not_found(request, str(e))
        ctx = self.context(request, now)
        ctx.update(m=model, period=request.query.get("period", "day") if request.query.get("period") in
                   ("day", "week", "month") else "day",
                   deploys=request.query["deploys"] if request.query.get("deploys") in ("host", "none") else "all")
        return self._live(request, repr(model), ctx, "check.html.j2", "_check_live.html.j2")

    async def host(self, request: web.Request) -> web.Response:
        return await self._check(request, request.match_info["host"], None)

    async def service(self, request: web.Request) -> web.Response:
        return await self._check(request, request.match_info["host"], request.match_info["service"])

    async def event(self, request: web.Request) -> web.Response:
        """/event/ID: the page of the host or service the event is about (links in messages)."""
        try:
            eid = int(request.match_info["id"])
        except ValueError:
            return self.not_found(request, "an event ID is a number")
        if not 0 < eid <= bounds.INT64:
            return self.not_found(request, f"no event {eid}")
        eid = self.store.aliases.get(eid, eid)
        ev = self.store.open_events.get(eid)
        if ev is None:
            key = await asyncio.to_thread(history.event_key, self.db, eid)
            if key is None:
                return self.not_found(request, f"no event {eid}")
            host, service = key
        else:
            host, service = ev.host, ev.service
        if host not in self.live.objs.hosts:
            return self.not_found(request, f"event {eid} is about {host}, which has no page")
        raise web.HTTPSeeOther(views.check_url(host, service))

    async def history(self, request: web.Request) -> web.Response:
        """/history: the history search (GET /api/v1/history) with its filters in the URL; a
        mistake in them is said above the form, which keeps what was typed."""
        now = time.time()
        rows: list[dict[str, Any]] = []
        more, error = False, ""
        try:
            hq = HistoryQuery.parse(request.query, now, ignore=("done",))
            rows, more = await self.read.search_history(hq)
        except BadQuery as e:
            hq, error = HistoryQuery.given(request.query), str(e)
        objs = self.live.objs
        ctx = self.context(request, now)
        ctx.update(hq=hq, rows=rows, error=error, all_sites=self.sites(), all_states=(*views.SERVICE_STATES, *views.HOST_STATES),
                   all_hostgroups=sorted({*objs.host_groups, *(g for h in objs.hosts.values() for g in h.groups)}),
                   kinds=history.KINDS, limits=sorted({50, 100, 500, MAX_LIMIT, hq.limit}),
                   has_page=lambda host, service: (host, service) in objs.services if service else host in objs.hosts,
                   newer=hq.url("/history", max(0, hq.offset - hq.limit)) if hq.offset else "",
                   older=hq.url("/history", hq.offset + hq.limit) if more else "")
        return self.html("history.html.j2", status=400 if error else 200, **ctx)

    async def availability(self, request: web.Request) -> web.Response:
        """/availability: the report of GET /api/v1/availability, with its filters in the URL."""
        now = time.time()
        q = ReportQuery.from_query(request.query)
        ctx = self.context(request, now)
        objs = self.live.objs
        ctx.update(q=q, m=None, error="", periods=PERIODS, default_period=DEFAULT_PERIOD,
                   all_sites=sorted({h.site for h in objs.hosts.values()}),
                   all_groups=sorted({*objs.host_groups, *(g for h in objs.hosts.values() for g in h.groups)}),
                   csv_url=q.url("/api/v1/availability", format="csv"), json_url=q.url("/api/v1/availability"))
        status = 200
        try:
            ctx["m"] = availability.page(await compute(self.live, self.db, q, now), self.max_rows)
        except LookupError as e:
            ctx["error"], status = str(e.args[0]), 404
        except ValueError as e:
            ctx["error"], status = str(e), 400
        return self.html("availability.html.j2", status=status, **ctx)
