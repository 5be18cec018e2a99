"""Metrics about checkd itself, in Prometheus' text format (prometheus-client).

Values are read from the running objects at scrape time (a custom collector),
so nothing in the hot paths counts twice. Central serves them at /metrics;
a poller on its `status_listen` address (/metrics, and /status as JSON).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Collector:
    def __init__(self, collect: Callable[[], Iterable[Metric]]):
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


def exposition(collect: Callable[[], Iterable[Metric]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(collect))     # type: ignore[arg-type]
    return generate_latest(registry)


def gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    if labels:
        g = GaugeMetricFamily(name, doc, labels=list(labels))
        g.add_metric(list(labels.values()), value)
        return g
    return GaugeMetricFamily(name, doc, value=value)


def labelled(name: str, doc: str, label: str, values: dict[str, float]) -> Metric:
    g = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        g.add_metric([key], value)
    return g


def labelled_counter(name: str, doc: str, label: str, values: dict[str, float]) -> Metric:
    c = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        c.add_metric([key], value)
    return c


def counter(name: str, doc: str, value: float) -> Metric:
    return CounterMetricFamily(name, doc, value=value)


def histogram(name: str, doc: str, samples: Sequence[float],
              buckets: Sequence[float] = LATENCY_BUCKETS) -> Metric:
    """A histogram of the recent samples (the scheduler keeps a window of latencies)."""
    ordered = sorted(samples)
    cumulative = [(str(b), bisect.bisect_right(ordered, b)) for b in buckets] + [("+Inf", len(ordered))]
    return HistogramMetricFamily(name, doc, buckets=cumulative, sum_value=sum(ordered))


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> {name: [(labels, value)]}, for `checkd status`."""
    from prometheus_client.parser import text_string_to_metric_families
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def one(m: dict[str, list[tuple[dict[str, str], float]]], name: str, default: float = 0.0) -> float:
    values = m.get(name) or m.get(name + "_total") or []
    return values[0][1] if values else default
