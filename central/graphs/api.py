"""The graph routes:

    GET /graph/{host}/{service}.png    ?metric=&period=|start=&end=&width=&height=&deploys=all|host|none
    GET /graph/{host}/{service}.json   the same lines as numbers, with thresholds and deployments
    GET /api/v1/metrics/{host}/{service}   ?window=15m  latest values and week-over-week deltas
    GET /api/v1/graphs                 the writer's counters

The service is URL-quoted (`Disk%20%2F`), as the chat bot's `graph` links are.
docs/graphs.md is the reference.
"""

from __future__ import annotations

import json
import time
from typing import Any, NoReturn

from aiohttp import web

from central.graphs.graphs import Busy, Graphs, NoGraph
from central.graphs.render import RenderError
from central.graphs.request import BadRequest, window
from checkd.api_json import json_response
from checkd.durations import parse_duration

SPAN = (60, 86400)              # ?window= of the metrics call
DEFAULT_SPAN = 900


def _fail(status: type[web.HTTPException], message: str, **headers: str) -> NoReturn:
    raise status(text=json.dumps({"error": message}), content_type="application/json", headers=headers or None)


class GraphsApi:
    def __init__(self, graphs: Graphs | None):
        self.graphs = graphs        # None: no rrd: section, every route answers 404

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/graph/{host}/{service}.png", self.png)
        app.router.add_get("/graph/{host}/{service}.json", self.series)
        app.router.add_get("/api/v1/metrics/{host}/{service}", self.metrics)
        app.router.add_get("/api/v1/graphs", self.counters)

    def _graphs(self) -> Graphs:
        if self.graphs is None:
            _fail(web.HTTPNotFound, "graphs are not configured (no rrd: section in central's node file)")
        return self.graphs

    async def _answer(self, request: web.Request, fn: Any) -> Any:
        """Shared error mapping: 400 bad input, 404 unknown, 503 busy, 500 rrdtool failed."""
        graphs = self._graphs()
        try:
            return await fn(graphs, request.match_info["host"], request.match_info["service"])
        except BadRequest as e:
            _fail(web.HTTPBadRequest, str(e))
        except NoGraph as e:
            _fail(web.HTTPNotFound, str(e))
        except Busy as e:
            _fail(web.HTTPServiceUnavailable, f"{e}; try again shortly", **{"Retry-After": "1"})
        except RenderError as e:
            _fail(web.HTTPInternalServerError, f"rrdtool: {e}")

    async def png(self, request: web.Request) -> web.Response:
        async def draw(graphs: Graphs, host: str, service: str) -> bytes:
            w = window(request.query, time.time())
            g = await graphs.graph(host, service, request.query.get("metric"), w)
            return await graphs.png(g)
        image = await self._answer(request, draw)
        return web.Response(body=image, content_type="image/png", headers={"Cache-Control": "max-age=10"})

    async def series(self, request: web.Request) -> web.Response:
        async def read(graphs: Graphs, host: str, service: str) -> dict[str, Any]:
            w = window(request.query, time.time())
            g = await graphs.graph(host, service, request.query.get("metric"), w)
            data = await graphs.series(g)
            return {"host": host, "service": service, "metric": g.label, "uom": g.uom, "kind": g.kind,
                    "unit": g.unit[1], **data, "thresholds": {"warn": list(g.warn), "crit": list(g.crit)},
                    "deploys": w.deploys.value, "deployments_not_drawn": g.deploys_left_out,
                    "deployments": [{"ts": d.ts, "module": d.module, "revision": d.revision,
                                     "engineer": d.engineer, "summary": d.summary, "hosts": list(d.hosts),
                                     "own": d.own, "label": d.label} for d in g.deploys]}
        return json_response(await self._answer(request, read))

    async def metrics(self, request: web.Request) -> web.Response:
        async def read(graphs: Graphs, host: str, service: str) -> dict[str, Any]:
            span = DEFAULT_SPAN
            if "window" in request.query:
                try:
                    span = int(parse_duration(request.query["window"]))
                except ValueError as e:
                    raise BadRequest(f"window: {e}") from None
                if not SPAN[0] <= span <= SPAN[1]:
                    raise BadRequest(f"window: between {SPAN[0]}s and {SPAN[1] // 3600}h")
            now = time.time()
            return {"host": host, "service": service, "time": now, "window": span,
                    "metrics": await graphs.metrics(host, service, span, now)}
        return json_response(await self._answer(request, read))

    async def counters(self, request: web.Request) -> web.Response:
        return json_response(self._graphs().counters())
