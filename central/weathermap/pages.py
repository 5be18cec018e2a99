"""The weather map pages (docs/weathermap.md):

    GET /weathermap                     the maps (the only one: straight to it)
    GET /weathermap/{map}               the map, live like the overview (X-Checkd-Live: 1, ETag/304)
    GET /weathermap/{map}/link/{link}   one link's graphs: both directions and its latency

Server-rendered SVG in the pages' own templates, so the map reads without script;
checkd.js keeps it current the same way as every other page.
"""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

from aiohttp import web

from central.graphs.graphs import Graphs
from central.live import Live
from central.web.pages import Pages
from central.web.views import service_url
from central.weathermap.drawing import draw_link, link_path, parallel_offsets, site_boxes
from central.weathermap.values import MapValues
from checkd.config.weathermaps import MetricRef, WeatherMap

GRAPH_PERIODS = ("4h", "day", "week", "month")


class WeathermapPages:
    def __init__(self, live: Live, pages: Pages, graphs: Graphs | None):
        self.live, self.pages, self.graphs = live, pages, graphs
        self.values = MapValues(pages.store, graphs)
        self._sites: tuple[object, set[str]] = (None, set())

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/weathermap", self.index)
        app.router.add_get("/weathermap/{map}", self.map)
        app.router.add_get("/weathermap/{map}/link/{link}", self.link)

    def _checkd_sites(self) -> set[str]:
        """The sites of the configured hosts (a map's site by that name links to its overview),
        worked out once per configuration."""
        objs = self.live.objs
        if self._sites[0] is not objs:
            self._sites = (objs, {h.site for h in objs.hosts.values()})
        return self._sites[1]

    def _map(self, request: web.Request) -> WeatherMap | None:
        return self.live.objs.weathermaps.get(request.match_info["map"])

    async def index(self, request: web.Request) -> web.Response:
        maps = self.live.objs.weathermaps
        if len(maps) == 1:
            raise web.HTTPSeeOther("/weathermap/" + quote(next(iter(maps)), safe=""))
        if not maps:
            return self.pages.not_found(request, "no weather map is configured (weathermaps: in the objects, "
                                                 "docs/weathermap.md)")
        ctx = self.pages.context(request, time.time())
        return self.pages.html("weathermaps.html.j2", maps=sorted(maps.values(), key=lambda m: m.name), **ctx)

    async def map(self, request: web.Request) -> web.Response:
        wm = self._map(request)
        if wm is None:
            return self.pages.not_found(request, f"no weather map {request.match_info['map']!r}")
        now = time.time()
        readings = await self.values.read(wm, self.live.objs.services, now)
        links = [draw_link(wm, link, readings, link_path(wm.name, link.name), offset)
                 for link, offset in zip(wm.links, parallel_offsets(wm.links))]
        checkd_sites = self._checkd_sites()
        sites = [{"name": s.name, "boxes": site_boxes(s.x, s.y, s.label, s.name),
                  "url": "/?" + urlencode({"site": s.name}) if s.name in checkd_sites else ""}
                 for s in wm.sites.values()]
        ctx = self.pages.context(request, now)
        ctx.update(wm=wm, links=links, sites=sites, legend=legend(wm.scale),
                   map_title=f"{wm.title} · {self.pages.title}")
        # What is drawn is the digest: values, bands, and a stale value's age (in minutes).
        shown = repr((links, sites))
        return self.pages._live(request, shown, ctx, "weathermap.html.j2", "_weathermap_region.html.j2")

    async def link(self, request: web.Request) -> web.Response:
        wm = self._map(request)
        link = next((x for x in wm.links if x.name == request.match_info["link"]), None) if wm else None
        if wm is None or link is None:
            return self.pages.not_found(request, f"no link {request.match_info['link']!r} on weather map "
                                                 f"{request.match_info['map']!r}")
        period = request.query.get("period", "day")
        period = period if period in GRAPH_PERIODS else "day"
        parts = []
        for key, title, ref in (("out", f"{link.a} → {link.b}", link.out), ("in", f"{link.b} → {link.a}", link.in_),
                                ("latency", "latency", link.latency)):
            if ref is not None:
                parts.append({"id": key, "title": title, "ref": ref, "service_url": service_url(ref.host, ref.service),
                              "graph": self._graph_url(ref, period)})
        ctx = self.pages.context(request, time.time())
        return self.pages.html("weathermap_link.html.j2", wm=wm, link=link, parts=parts, period=period,
                               periods=GRAPH_PERIODS, map_url="/weathermap/" + quote(wm.name, safe=""), **ctx)

    def _graph_url(self, ref: MetricRef, period: str) -> str:
        if self.graphs is None:
            return ""
        query = urlencode({"metric": ref.label, "period": period, "width": 800, "height": 200})
        return f"/graph/{quote(ref.host, safe='')}/{quote(ref.service, safe='')}.png?{query}"


def legend(scale: tuple[float, float, float]) -> list[tuple[str, str]]:
    """(band, text) in the order of the scale."""
    y, o, r = (f"{v:g}" for v in scale)
    return [("nodata", "no data"), ("green", f"under {y}%"), ("yellow", f"{y}–{o}%"), ("orange", f"{o}–{r}%"),
            ("red", f"{r}% and more")]
