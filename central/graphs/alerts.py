"""The graph an alert email or Jabber message carries: the metric that crossed
its threshold (critical before warning; else the service's first metric), over
the last TREND seconds with the week-over-week line. The dispatcher calls this
once per message; one problem sent to several contacts and channels is drawn
once (a short cache that also shares a drawing still under way).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from central.graphs.graphs import Graphs, NoGraph
from central.graphs.request import Window
from checkd.perfdata import Metric

if TYPE_CHECKING:
    from checkd.engine.notify.notification import Notification

TREND = 4 * 3600
SIZE = (600, 200)
CACHE_FOR = 60.0
CACHE_MAX = 256


def crossed(metrics: list[Metric]) -> Metric | None:
    """The metric the alert is about: outside its critical range, else its warning range."""
    for attr in ("crit", "warn"):
        for m in metrics:
            r = getattr(m, attr)
            if r is not None and m.value is not None and r.alerts(m.value):
                return m
    return None


class AlertGraphs:
    def __init__(self, graphs: Graphs, clock: Callable[[], float] = time.time):
        self.graphs, self.clock = graphs, clock
        self._cache: dict[tuple[int, str, int], tuple[float, asyncio.Future[bytes | None]]] = {}

    async def __call__(self, n: Notification) -> bytes | None:
        if n.service is None:
            return None
        now = self.clock()
        key = (n.event_id, n.kind.value, n.escalation_level)
        hit = self._cache.get(key)
        if hit is None or now - hit[0] >= CACHE_FOR:
            if len(self._cache) >= CACHE_MAX:
                self._cache = {k: v for k, v in self._cache.items() if now - v[0] < CACHE_FOR}
            drawing = asyncio.ensure_future(self._draw(n.host, n.service, now))
            drawing.add_done_callback(lambda d: self._forget_failed(key, d))
            hit = self._cache[key] = (now, drawing)
        # Shielded: a caller that stops waiting (the dispatcher's bound) leaves it to the others.
        return await asyncio.shield(hit[1])

    def _forget_failed(self, key: tuple[int, str, int], drawing: asyncio.Future[bytes | None]) -> None:
        """A failed drawing is not kept: the next recipient's message tries again."""
        if (drawing.cancelled() or drawing.exception() is not None) and self._cache.get(key, (0, None))[1] is drawing:
            del self._cache[key]

    async def _draw(self, host: str, service: str, now: float) -> bytes | None:
        try:
            labels = await self.graphs.labels(host, service)
        except NoGraph:
            return None                 # not graphed
        if not labels:
            return None
        metrics = [m for m in self.graphs.latest(host, service) if m.label in labels]
        m = crossed(metrics)
        label = m.label if m is not None else (metrics[0].label if metrics else next(iter(labels)))
        g = await self.graphs.graph(host, service, label, Window(int(now - TREND), int(now), *SIZE))
        return await self.graphs.png(g)
