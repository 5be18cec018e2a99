"""A minimal central for benchmarks: acknowledges every batch and keeps timing figures.

Run as its own process (`python bench/sink_central.py PORT`), so what the poller
benchmark measures is the poller, not a shared event loop.
GET /stats?since=T&until=T -> results finished in [T, T), latency median/p99/max, and when
the first result arrived (`first_arrival`, time.time(); what "first result within 3 s of the
poller's start" is measured with, not the bench's polling of this page).
"""

from __future__ import annotations

import array
import statistics
import sys
import time

from aiohttp import web

finished = array.array("d")
latency = array.array("d")
max_seq = 0
first_arrival: float | None = None


async def results(request: web.Request) -> web.Response:
    global max_seq, first_arrival
    body = await request.json()
    if first_arrival is None and body["batch"]:
        first_arrival = time.time()
    for r in body["batch"]:
        finished.append(r["finished"])
        latency.append(max(0.0, r["started"] - r["scheduled"]))
        max_seq = max(max_seq, r["seq"])
    return web.json_response({"acked": max_seq, "commands": []})


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def stats(request: web.Request) -> web.Response:
    since, until = float(request.query["since"]), float(request.query["until"])
    lat = [latency[i] for i in range(len(finished)) if since <= finished[i] < until]
    return web.json_response({"count": len(lat), "latency_median": statistics.median(lat) if lat else None,
                              "latency_p99": quantile(lat, 0.99), "latency_max": max(lat, default=None),
                              "received": len(finished), "first_arrival": first_arrival})


def main() -> None:
    app = web.Application(client_max_size=256 << 20)
    app.router.add_post("/api/v1/results", results)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
