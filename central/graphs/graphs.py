"""Graphs as central sees them: results with perfdata go to the feed (and on to the
writer process); graph, series and metric requests are answered from the files
through one rrd thread. librrd 1.7 (Debian 12) is not safe for concurrent graphing
in one process (pango font maps; fixed in 1.8), so rrdtool calls run one at a time
there, with at most MAX_WAITING requests queued behind them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from central.graphs import prune, render, shared
from central.graphs.catalog import Catalog, Entry
from central.graphs.feed import Feed, Item
from central.graphs.naming import Layout
from central.graphs.render import Deploy, Graph, average, bounds, png, series
from central.graphs.request import DeployScope, Window
from central.graphs.rra import step_of
from central.graphs.settings import RrdSettings
from central.live import Live
from checkd import perfdata
from checkd.engine.db import Op
from checkd.engine.deployments import headline
from checkd.engine.store import Store

if TYPE_CHECKING:
    from checkd.engine.store import CheckView

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_WAITING = 32
MAX_RULES = 300                 # deployment lines one graph draws (a year of them would be a wall)
WEEK = 604800


class NoGraph(LookupError):
    """No such host, service or metric (a 404)."""


class Busy(RuntimeError):
    """Too many graph requests waiting (a 503)."""


class Graphs:
    def __init__(self, live: Live, store: Store, settings: RrdSettings):
        self.live, self.store, self.s = live, store, settings
        self.layout = Layout(settings.dir)
        self.catalog = Catalog(self.layout)
        self.feed = Feed(settings, live.node.log_level)
        self._rrd = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rrd")
        self._waiting = 0
        self.rendered = 0
        # Two centrals on one database: the items of the batch being stored, for the shared
        # feed the standby follows (shared.py); None for a central on its own.
        self.shared: list[Item] | None = None

    @classmethod
    def from_node(cls, live: Live, store: Store) -> Graphs | None:
        """None without an `rrd:` section: no graphs."""
        node = live.node
        if "rrd" not in node.sections:
            return None
        if render.rrdtool is None:
            raise RuntimeError("rrd: is configured, but the rrdtool Python binding is missing "
                               "(apt-get install python3-rrdtool, or pip install rrdtool with librrd-dev)")
        base = Path(node.file).resolve().parent
        return cls(live, store, RrdSettings.from_section(node.section("rrd"), base, node.state_dir))

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.s.dir.mkdir, parents=True, exist_ok=True)
        except OSError as e:
            # Checks and alerts matter more than graphs: central runs, the writer tries again
            # for each new file, and GET /api/v1/graphs shows its last error.
            log.error("rrd: cannot create the directory %s (%s): no graphs are stored until it can be",
                      self.s.dir, e.strerror or e)
        await self.feed.start()

    def prune_removed(self, keep: float, now: float) -> int:
        """Blocking: RRD files of checks no longer configured, older than `keep`, deleted."""
        return prune.prune_removed(self.layout, self.catalog, self.live.objs, keep, now)

    async def stop(self) -> None:
        await self.feed.stop()
        await asyncio.to_thread(self._rrd.shutdown, wait=True)

    # --- ingest's side --------------------------------------------------------------------

    def record(self, view: CheckView) -> None:
        """A service result just stored, with perfdata: to the writer if the service is graphed."""
        svc = self.live.objs.services.get((view.host, view.service))     # type: ignore[arg-type]
        if svc is not None and svc.graph:
            item: Item = (view.host, view.service, step_of(svc.schedule.interval), view.last_check,  # type: ignore[assignment]
                          view.perfdata)
            self.feed.put(item)
            if self.shared is not None:
                self.shared.append(item)

    def shared_ops(self, now: float) -> list[Op]:
        """The graph items recorded since the last call, as a write to the shared feed
        (committed with the results they came from); none for a central on its own."""
        if not self.shared:
            return []
        items, self.shared = self.shared, []
        return [shared.append_op(items, now)]

    # --- reading ----------------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the rrd thread, after those already waiting."""
        if self._waiting >= MAX_WAITING:
            raise Busy(f"{self._waiting} graph requests already waiting")
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._rrd, fn, *args)
        finally:
            self._waiting -= 1

    def service(self, host: str, service: str) -> None:
        if host not in self.live.objs.hosts:
            raise NoGraph(f"unknown host {host!r}")
        svc = self.live.objs.services.get((host, service))
        if svc is None:
            raise NoGraph(f"unknown service {service!r} on host {host!r}")
        if not svc.graph:
            raise NoGraph(f"{host}/{service} is not graphed (graph: false)")

    async def labels(self, host: str, service: str) -> dict[str, Entry]:
        """The service's metrics with a file, in the order its latest perfdata names them."""
        self.service(host, service)
        entries = await asyncio.to_thread(self.catalog.labels, host, service)
        order = [m.label for m in self.latest(host, service)]
        return dict(sorted(entries.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order),
                                                            kv[0])))

    def latest(self, host: str, service: str) -> list[perfdata.Metric]:
        view = self.store.checks.get((host, service))
        return perfdata.parse(view.perfdata)[0] if view is not None and view.perfdata else []

    async def graph(self, host: str, service: str, label: str | None, w: Window) -> Graph:
        labels = await self.labels(host, service)
        if not labels:
            raise NoGraph(f"{host}/{service} has no metrics stored yet")
        if label is None:
            label = next(iter(labels))
        entry = labels.get(label)
        if entry is None:
            raise NoGraph(f"{host}/{service} has no metric {label!r}; it has: {', '.join(labels)}")
        m = next((m for m in self.latest(host, service) if m.label == label), None)
        deploys = self.deploys(host, w)
        return Graph(host, service, label, self.layout.path(host, entry.file), entry.ds, entry.uom,
                     entry.kind, w.start, w.end, w.width, w.height,
                     warn=bounds(m.warn) if m else (), crit=bounds(m.crit) if m else (),
                     deploys=tuple(deploys[:MAX_RULES]), deploys_left_out=max(0, len(deploys) - MAX_RULES),
                     daemon=self.s.rrdcached)

    def deploys(self, host: str, w: Window) -> list[Deploy]:
        """The window's deployments as `?deploys=` asks: the host's own first, then the
        others, each newest first (the legend names the first few, the newest matter most)."""
        if w.deploys is DeployScope.NONE:
            return []
        marks = self.store.deployments.markers(w.start, w.end, host if w.deploys is DeployScope.HOST else None)
        out = [Deploy(d.ts, d.module, d.revision, d.engineer, headline(d.summary), d.hosts,
                      host in d.hosts) for d in marks]
        return sorted(out, key=lambda d: (not d.own, -d.ts))

    async def png(self, g: Graph) -> bytes:
        image, _ = await self.run(png, g)
        self.rendered += 1
        return image

    async def series(self, g: Graph) -> dict[str, Any]:
        return await self.run(series, g, g.width)

    async def metrics(self, host: str, service: str, span: int, now: float) -> list[dict[str, Any]]:
        """Every label's latest value, its mean over the last `span` seconds and over the same
        span a week earlier, and the difference: what a weather map colours a link by."""
        labels = await self.labels(host, service)
        latest = {m.label: m for m in self.latest(host, service)}
        view = self.store.checks.get((host, service))
        end = int(now)
        jobs = [(self.layout.path(host, e.file), e.ds) for e in labels.values()]

        def read() -> list[tuple[float | None, float | None]]:
            return [(average(p, ds, end - span, end, self.s.rrdcached), average(p, ds, end - span - WEEK, end - WEEK))
                    for p, ds in jobs]

        means = await self.run(read)
        out = []
        for (label, e), (mean, before) in zip(labels.items(), means):
            m = latest.get(label)
            delta = None if mean is None or before is None else mean - before
            out.append({"label": label, "uom": e.uom, "kind": e.kind, "ds": e.ds,
                        "file": str(self.layout.path(host, e.file).relative_to(self.s.dir)),
                        "value": m.value if m else None, "time": view.last_check if view and m else None,
                        "warn": m.warn.text if m and m.warn else None, "crit": m.crit.text if m and m.crit else None,
                        "min": m.min if m else None, "max": m.max if m else None,
                        "mean": mean, "week_before": before, "delta": delta,
                        "delta_pct": None if delta is None or not before else 100.0 * delta / abs(before)})
        return out

    def counters(self) -> dict[str, Any]:
        return {"dir": str(self.s.dir), "rrdcached": self.s.rrdcached or None, "rendered": self.rendered,
                "render_waiting": self._waiting, **self.feed.counters()}
