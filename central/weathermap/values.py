"""The numbers of a weather map: for each link direction (and its latency) the latest
value from the check's perfdata, in bits per second or milliseconds, how old it is,
and the mean of the last `compare_window` against the same window a week earlier,
read from the RRD files. A counter (UOM `c`) has no rate of its own: its rate is the
mean of its RRD file over its last three intervals.

RRD reads run in the graphs' single rrd thread and are kept for RRD_TTL seconds, so
a wall screen refreshing every few seconds costs rrdtool nothing most of the time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from central.graphs.graphs import Busy, Graphs
from central.graphs.render import RenderError, average
from checkd import perfdata
from checkd.config.model import Service
from checkd.config.weathermaps import MetricRef, WeatherMap
from checkd.engine.store import Store

WEEK = 604800
RRD_TTL = 30                    # seconds an RRD mean is reused
MIN_STALE = 60.0                # a value is stale after 3 intervals of its service, at least this long
LATENCY_UOM = {"s": 1000.0, "ms": 1.0, "us": 0.001}
CACHE_MAX = 20_000


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """One number of the map; `value` None means no data, and `why` says why."""

    value: float | None = None
    age: float | None = None            # seconds since the result it came from
    stale: bool = False
    mean: float | None = None           # the last compare window, from the RRD file
    week_before: float | None = None    # the same window a week earlier
    why: str = ""

    @property
    def change(self) -> float | None:
        """Percent change against a week earlier (the window's mean, else the latest value)."""
        now = self.mean if self.mean is not None else self.value
        if now is None or not self.week_before:
            return None
        return 100.0 * (now - self.week_before) / abs(self.week_before)


@dataclasses.dataclass(frozen=True, slots=True)
class _Job:
    """What to read from the RRD files for one reference."""

    ref: MetricRef
    value: float | None             # from the perfdata (None for a counter)
    factor: float
    counter: bool
    age: float
    stale: bool
    step: int


class MapValues:
    def __init__(self, store: Store, graphs: Graphs | None):
        self.store, self.graphs = store, graphs
        self._cache: dict[tuple[str, str, int, int], float | None] = {}

    async def read(self, wm: WeatherMap, services: Mapping[tuple[str, str], Service],
                   now: float) -> dict[MetricRef, Reading]:
        refs = list(dict.fromkeys(r for link in wm.links for r in (link.out, link.in_, link.latency) if r))
        jobs: list[_Job] = []
        out: dict[MetricRef, Reading] = {}
        for ref in refs:
            job = self._job(ref, services.get((ref.host, ref.service)), now)
            if isinstance(job, Reading):
                out[ref] = job
            else:
                jobs.append(job)
        means = await self._means(jobs, wm.compare_window, now)
        for job, (rate, mean, before) in zip(jobs, means):
            value = job.value if not job.counter else (None if rate is None else rate * job.factor)
            why = "" if value is not None else ("no rate yet: a counter needs two results"
                                                if self.graphs is not None else
                                                "a counter needs graphs (rrd: in central's node file)")
            out[job.ref] = Reading(value, job.age, job.stale, _times(mean, job.factor),
                                   _times(before, job.factor), why)
        return out

    def _job(self, ref: MetricRef, svc: Service | None, now: float) -> _Job | Reading:
        view = self.store.checks.get((ref.host, ref.service))
        if svc is None:
            return Reading(why=f"{ref.host}/{ref.service} is not configured")
        if view is None or not view.last_check:
            return Reading(why="no result yet")
        metrics, _ = perfdata.parse(view.perfdata)
        m = next((m for m in metrics if m.label == ref.label), None)
        age = max(0.0, now - view.last_check)
        limit = svc.schedule.freshness_threshold or max(3 * svc.schedule.interval, MIN_STALE)
        if m is None:
            has = ", ".join(repr(x.label) for x in metrics[:6]) or "none"
            return Reading(age=age, why=f"no {ref.label!r} in its perfdata (it has {has})")
        if m.value is None or not math.isfinite(m.value):
            return Reading(age=age, why=f"{ref.label!r} is unknown (U)")
        factor = LATENCY_UOM.get(m.uom, ref.factor) if ref.unit in LATENCY_UOM else ref.factor
        counter = m.uom == "c"
        return _Job(ref, None if counter else m.value * factor, factor, counter, age, age > limit,
                    max(1, int(round(svc.schedule.interval))))

    async def _means(self, jobs: list[_Job], window: float,
                     now: float) -> list[tuple[float | None, float | None, float | None]]:
        """Per job: the counter's current rate, the window's mean and the week-before mean."""
        if self.graphs is None or not jobs:
            return [(None, None, None)] * len(jobs)
        graphs, end, span = self.graphs, int(now) // RRD_TTL * RRD_TTL, int(window)

        def read() -> list[tuple[float | None, float | None, float | None]]:
            results = []
            for job in jobs:
                entry = graphs.catalog.labels(job.ref.host, job.ref.service).get(job.ref.label)
                if entry is None:           # no file yet: nothing stored for this label
                    results.append((None, None, None))
                    continue
                path = str(graphs.layout.path(job.ref.host, entry.file))
                spans = [(end - span, end), (end - span - WEEK, end - WEEK)]
                recent = int(now) // 5 * 5
                rate_span = (recent - 3 * job.step, recent)
                results.append((self._mean(path, entry.ds, *rate_span) if job.counter else None,
                                *(self._mean(path, entry.ds, a, b) for a, b in spans)))
            return results
        try:
            return await graphs.run(read)
        except Busy:                # graphs are being drawn in a crowd: this refresh shows the latest values only
            return [(None, None, None)] * len(jobs)

    def _mean(self, path: str, ds: str, start: int, end: int) -> float | None:
        key = (path, ds, start, end)
        if key in self._cache:
            return self._cache[key]
        if len(self._cache) > CACHE_MAX:
            self._cache.clear()
        try:
            value = average(path, ds, start, end, self.graphs.s.rrdcached if self.graphs else "")
        except RenderError:
            value = None
        self._cache[key] = value
        return value


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor
