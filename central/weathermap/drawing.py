"""A weather map as the page draws it: each link as two half-arrows meeting in its
middle (`out` from its first site, `in` from the other), each coloured by its own
utilisation and labelled with its rate, share of capacity and change against a week
earlier; the latency at the middle; the sites as boxes on top. Plain data for the
template (templates/web/_weathermap_live.html.j2); the SVG scales by its viewBox.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from central.weathermap.values import Reading
from checkd.config.weathermaps import MapLink, MetricRef, WeatherMap
from checkd.durations import format_duration

SHAFT, HEAD, HEAD_LEN = 9.0, 17.0, 22.0     # half-widths and head length of an arrow, map units
FONT, SITE_FONT = 15.0, 17.0                # label and site font sizes, map units
# The phone's map (shown instead under 760 px): only the share and the latency, twice the size,
# so they read at a third of the canvas' scale; the cards under the map say the rest.
SHORT_FONT, SHORT_SITE_FONT = 30.0, 28.0
CHAR = 0.6                                   # a character's width per font size (DejaVu Sans, about)
LABEL_AT = 0.3                               # labels at 30% and 70% along the link
PARALLEL_GAP = 64.0                          # between links joining the same two sites: a phone label's height and more


@dataclasses.dataclass(frozen=True, slots=True)
class Box:
    """A label centred at (x, y): its background's size and each line as (baseline, text, font size)."""

    x: float
    y: float
    w: float
    h: float
    rows: tuple[tuple[float, str, float], ...]

    @property
    def left(self) -> float:
        return round(self.x - self.w / 2, 1)

    @property
    def top(self) -> float:
        return round(self.y - self.h / 2, 1)


@dataclasses.dataclass(frozen=True, slots=True)
class Half:
    direction: str                  # "out" or "in"
    src: str                        # the site the traffic leaves
    dst: str
    band: str
    points: str                     # the arrow's polygon
    label: Box
    short: Box                      # the phone's label: the share alone
    stale: bool
    rate: str                       # "3.2 Gb/s", or "no data"
    pct: str                        # "32%"
    change: str                     # "+12% vs last week"
    why: str                        # why there is no data
    graph: str                      # URL of its graph on the link's page


@dataclasses.dataclass(frozen=True, slots=True)
class LinkDrawing:
    name: str
    a: str
    b: str
    capacity: str
    url: str
    halves: tuple[Half, ...]
    latency: Box | None
    latency_short: Box | None
    latency_text: str
    latency_change: str
    latency_graph: str


def band(pct: float | None, scale: tuple[float, float, float]) -> str:
    """nodata, then green, yellow and orange up to the scale's edges, red at or above its last."""
    if pct is None:
        return "nodata"
    if pct >= scale[2]:
        return "red"
    if pct >= scale[1]:
        return "orange"
    return "yellow" if pct >= scale[0] else "green"


def rate_text(bps: float | None) -> str:
    """Bits per second with SI prefixes: `950 b/s`, `3.2 Gb/s`, `12 Mb/s`."""
    if bps is None:
        return "no data"
    for prefix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(bps) >= size:
            v = bps / size
            return f"{v:.1f} {prefix}b/s" if v < 100 else f"{v:.0f} {prefix}b/s"
    return f"{bps:.0f} b/s"


def latency_text(ms: float | None) -> str:
    if ms is None:
        return "no data"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.1f} ms" if ms >= 1 else f"{ms * 1000:.0f} µs"


def change_text(pct: float | None) -> str:
    if pct is None:
        return ""
    return "±0% vs last week" if abs(pct) < 0.5 else f"{pct:+.0f}% vs last week"


def _box(x: float, y: float, lines: tuple[str, ...], font: float = FONT) -> Box:
    """The first line at `font`, the others smaller; widths estimated (no font metrics here)."""
    sizes = [font] + [round(font * 0.85, 1)] * (len(lines) - 1)
    w = max(len(t) * s * CHAR for t, s in zip(lines, sizes)) + font * 0.8
    h = sum(s * 1.2 for s in sizes) + font * 0.4
    rows, base = [], y - h / 2 + font * 0.2
    for text, size in zip(lines, sizes):
        base += size * 1.2
        rows.append((round(base - size * 0.28, 1), text, size))
    return Box(round(x, 1), round(y, 1), round(w, 1), round(h, 1), tuple(rows))


def _arrow(x0: float, y0: float, x1: float, y1: float) -> str:
    """A half-link from (x0, y0) with its head's tip at (x1, y1), the link's middle."""
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    nx, ny = -uy, ux
    head = min(HEAD_LEN, length / 2)
    qx, qy = x1 - ux * head, y1 - uy * head
    pts = [(x0 + nx * SHAFT, y0 + ny * SHAFT), (qx + nx * SHAFT, qy + ny * SHAFT), (qx + nx * HEAD, qy + ny * HEAD),
           (x1, y1), (qx - nx * HEAD, qy - ny * HEAD), (qx - nx * SHAFT, qy - ny * SHAFT),
           (x0 - nx * SHAFT, y0 - ny * SHAFT)]
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)


def parallel_offsets(links: Sequence[MapLink]) -> list[float]:
    """How far each link is moved sideways: links between the same two sites side by side,
    PARALLEL_GAP apart and centred on the line between them; a link alone stays on it."""
    pairs: dict[frozenset[str], list[int]] = {}
    for i, link in enumerate(links):
        pairs.setdefault(frozenset((link.a, link.b)), []).append(i)
    out = [0.0] * len(links)
    for members in pairs.values():
        for k, i in enumerate(members):
            out[i] = (k - (len(members) - 1) / 2) * PARALLEL_GAP
    return out


def _ends(wm: WeatherMap, link: MapLink, offset: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The link's two ends, moved `offset` along the normal of the pair's line (the same normal
    whichever way round a link names its sites, so parallel links never cross)."""
    a, b = wm.sites[link.a], wm.sites[link.b]
    p, q = sorted(((a.x, a.y, a.name), (b.x, b.y, b.name)), key=lambda s: s[2])
    length = math.hypot(q[0] - p[0], q[1] - p[1]) or 1.0
    nx, ny = -(q[1] - p[1]) / length * offset, (q[0] - p[0]) / length * offset
    return (a.x + nx, a.y + ny), (b.x + nx, b.y + ny)


def draw_link(wm: WeatherMap, link: MapLink, readings: Mapping[MetricRef, Reading], url: str,
              offset: float = 0.0) -> LinkDrawing:
    """`url`: the link's page (its graphs); each half and the latency link to their part of it.
    `offset`: sideways, for links between the same two sites (parallel_offsets)."""
    (ax, ay), (bx, by) = _ends(wm, link, offset)
    mx, my = (ax + bx) / 2, (ay + by) / 2
    halves = []
    for direction, ref, (sx, sy), src, dst in (("out", link.out, (ax, ay), link.a, link.b),
                                               ("in", link.in_, (bx, by), link.b, link.a)):
        r = readings.get(ref, Reading(why="not configured")) if ref else Reading(why="not configured")
        pct = None if r.value is None else 100.0 * r.value / link.capacity
        rate = rate_text(r.value)
        pct_text = "" if pct is None else f"{pct:.0f}%"
        change = change_text(r.change)
        first = f"{rate} {pct_text}".strip()
        if r.stale and r.age is not None:
            first += f" (stale {format_duration(r.age)})"
        lines = (first, change) if change else (first,)
        lx, ly = sx + (mx - sx) * 2 * LABEL_AT, sy + (my - sy) * 2 * LABEL_AT
        short = _box(lx, ly, (pct_text or "–",), SHORT_FONT)
        halves.append(Half(direction, src, dst, band(pct, link.scale), _arrow(sx, sy, mx, my), _box(lx, ly, lines),
                           short, r.stale, rate, pct_text, change, r.why, f"{url}#{direction}"))
    lat = readings.get(link.latency) if link.latency else None
    lat_text = latency_text(lat.value if lat else None)
    lat_box = _box(mx, my, (lat_text,)) if link.latency else None
    lat_short = None
    if link.latency:
        ms = lat.value if lat else None
        lat_short = _box(mx, my, ("–" if ms is None else f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms",),
                         SHORT_FONT * 0.8)
    return LinkDrawing(link.name, link.a, link.b, link.capacity_text, url, tuple(halves), lat_box, lat_short,
                       lat_text if link.latency else "", change_text(lat.change) if lat else "",
                       f"{url}#latency" if link.latency else "")


def site_boxes(x: float, y: float, label: str, name: str) -> tuple[Box, Box]:
    """The site's box on the full map (its label) and on the phone's (its name, larger)."""
    return _box(x, y, (label,), SITE_FONT), _box(x, y, (name,), SHORT_SITE_FONT)


def link_path(map_name: str, link_name: str) -> str:
    return f"/weathermap/{quote(map_name, safe='')}/link/{quote(link_name, safe='')}"
