"""The `weathermaps:` section: network weather maps drawn by central (docs/weathermap.md).

A map has sites (boxes at x, y on its canvas) and links between them; each link names
the capacity and, per direction, the host/service/perfdata label carrying its traffic,
and the one carrying its latency. Read after the hosts and services, so every name is
checked here, with the file and line of the mistake and its fix.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from checkd.config import fields as f
from checkd.config.errors import Problems, did_you_mean
from checkd.config.model import Objects, Where
from checkd.config.yamlsource import Node, Seq

# Traffic units: what one perfdata number counts, in bits per second. A counter (UOM `c`)
# counts bits or bytes; central turns it into a rate from its RRD file.
TRAFFIC_UNITS = {"bits": 1.0, "kbits": 1e3, "Mbits": 1e6, "Gbits": 1e9,
                 "bytes": 8.0, "kbytes": 8e3, "Mbytes": 8e6, "Gbytes": 8e9}
# Latency units of a unitless value (a value with UOM s, ms or us says its own), in ms.
LATENCY_UNITS = {"ms": 1.0, "s": 1000.0, "us": 0.001}
PREFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_CAPACITY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKMGT]?)(?:bit|bits|bps|b|bit/s)?\s*")
DEFAULT_SCALE = (50.0, 70.0, 90.0)          # % where a link turns yellow, orange, red
CANVAS = (1000, 600)

MAP_KEYS: dict[str, f.Converter] = {"name": f.text, "title": f.text, "width": f.positive_int,
                                    "height": f.positive_int, "sites": f.raw, "links": f.raw,
                                    "scale": f.raw, "compare_window": f.positive_duration}
SITE_KEYS: dict[str, f.Converter] = {"name": f.text, "label": f.text, "x": f.raw, "y": f.raw}
LINK_KEYS: dict[str, f.Converter] = {"name": f.text, "from": f.text, "to": f.text, "capacity": f.raw,
                                     "out": f.raw, "in": f.raw, "latency": f.raw, "scale": f.raw}
METRIC_KEYS: dict[str, f.Converter] = {"host": f.text, "service": f.text, "label": f.text, "unit": f.text}
SCALE_KEYS: dict[str, f.Converter] = {"yellow": f.percent, "orange": f.percent, "red": f.percent}
SHAPE = "{host: router1.ladc1, service: Uplink nydc1, label: out}"


@dataclasses.dataclass(frozen=True, slots=True)
class MetricRef:
    """Where a link's number comes from, and its unit (bits/s or ms per perfdata unit)."""

    host: str
    service: str
    label: str
    unit: str
    factor: float


@dataclasses.dataclass(frozen=True, slots=True)
class MapSite:
    name: str
    x: float
    y: float
    label: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class MapLink:
    """`out` flows from `a` to `b` (what leaves `a` on that link), `in` from `b` to `a`."""

    name: str
    a: str
    b: str
    capacity: float                         # bits per second, each direction
    capacity_text: str
    out: MetricRef | None
    in_: MetricRef | None
    latency: MetricRef | None
    scale: tuple[float, float, float]
    where: Where


@dataclasses.dataclass(frozen=True, slots=True)
class WeatherMap:
    name: str
    title: str
    width: int
    height: int
    sites: Mapping[str, MapSite]
    links: tuple[MapLink, ...]
    compare_window: float = 900.0
    scale: tuple[float, float, float] = DEFAULT_SCALE      # links without a scale: of their own
    where: Where = Where("?", 0)


def capacity(value: Any) -> float:
    """`10Gbit`, `100Mbit`, `2.5G`, `1000000` (bits per second)."""
    text = str(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else ""
    m = _CAPACITY.fullmatch(text)
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"expected a speed in bits per second such as 10Gbit, 100Mbit or 2.5G, got {value!r}")
    return float(m.group(1)) * PREFIXES[m.group(2)]


def read_weathermaps(docs: list[Node], objs: Objects, problems: Problems) -> dict[str, WeatherMap]:
    out: dict[str, WeatherMap] = {}
    for doc in docs:
        value = doc.get("weathermaps")
        if value is None:
            continue
        if not isinstance(value, Seq) or not all(isinstance(v, Node) for v in value):
            problems.add(doc.file, doc.line_of("weathermaps"),
                         "weathermaps: expected a list of maps like {name: backbone, sites: [...], links: [...]}")
            continue
        for node in value:
            wm = _read_map(node, objs, problems)
            if wm is None:
                continue
            if wm.name in out:
                problems.add(node.file, node.line, f"duplicate weathermap {wm.name!r} "
                                                   f"(first defined at {out[wm.name].where}); rename one")
            else:
                out[wm.name] = wm
    return out


def _read_map(node: Node, objs: Objects, problems: Problems) -> WeatherMap | None:
    d = f.convert(node, MAP_KEYS, problems, "weathermap")
    name = d.get("name")
    if not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        problems.add(*node.where_of("name"), "weathermap: give it a name: of letters, digits, . _ - "
                                             "(it is the page's URL: /weathermap/NAME)")
        return None
    width, height = d.get("width", CANVAS[0]), d.get("height", CANVAS[1])
    scale = _scale(node, "scale", DEFAULT_SCALE, problems)
    sites: dict[str, MapSite] = {}
    for s in _items(node, "sites", "{name: ladc1, x: 200, y: 300}", problems):
        site = _read_site(s, width, height, problems)
        if site is None:
            continue
        if site.name in sites:
            problems.add(s.file, s.line, f"weathermap {name!r}: duplicate site {site.name!r}; rename one")
        sites[site.name] = site
    links: list[MapLink] = []
    for ln in _items(node, "links", "{from: ladc1, to: nydc1, capacity: 10Gbit, out: ..., in: ...}", problems):
        link = _read_link(ln, name, sites, objs, scale, problems)
        if link is None:
            continue
        if any(x.name == link.name for x in links):
            problems.add(ln.file, ln.line, f"weathermap {name!r}: two links named {link.name!r}: "
                                           "give one a name: of its own")
            continue
        links.append(link)
    if not sites:
        problems.add(node.file, node.line, f"weathermap {name!r}: no sites: add sites: [{{name:, x:, y:}}, ...]")
    return WeatherMap(name, d.get("title", name), width, height, sites, tuple(links),
                      d.get("compare_window", 900.0), scale, Where(node.file, node.line))


def _items(node: Node, key: str, shape: str, problems: Problems) -> list[Node]:
    value = node.get(key)
    if value is None:
        return []
    if not isinstance(value, Seq) or not all(isinstance(v, Node) for v in value):
        problems.add(*node.where_of(key), f"{key}: expected a list of mappings like {shape}")
        return []
    return list(value)


def _scale(node: Node, key: str, default: tuple[float, float, float],
           problems: Problems) -> tuple[float, float, float]:
    value = node.get(key)
    if value is None:
        return default
    if not isinstance(value, Node):
        problems.add(*node.where_of(key), f"{key}: expected {{yellow: 50, orange: 70, red: 90}} (percent of capacity)")
        return default
    d = f.convert(value, SCALE_KEYS, problems, key)
    scale = (d.get("yellow", default[0]), d.get("orange", default[1]), d.get("red", default[2]))
    if not scale[0] <= scale[1] <= scale[2]:
        problems.add(value.file, value.line, f"{key}: yellow <= orange <= red, got {scale[0]:g}, "
                                             f"{scale[1]:g}, {scale[2]:g}")
        return default
    return scale


def _read_site(node: Node, width: int, height: int, problems: Problems) -> MapSite | None:
    d = f.convert(node, SITE_KEYS, problems, "weathermap site")
    if not d.get("name"):
        problems.add(node.file, node.line, "weathermap site without a name: add name:")
        return None
    pos = []
    for key, limit in (("x", width), ("y", height)):
        v = node.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= limit:
            problems.add(*node.where_of(key), f"site {d['name']!r}: {key}: a position from 0 to {limit} on the "
                                              f"map's canvas ({width}x{height}), got {v!r}")
            return None
        pos.append(float(v))
    return MapSite(d["name"], pos[0], pos[1], d.get("label", d["name"]))


def _read_link(node: Node, map_name: str, sites: Mapping[str, MapSite], objs: Objects,
               scale: tuple[float, float, float], problems: Problems) -> MapLink | None:
    d = f.convert(node, LINK_KEYS, problems, "weathermap link")
    ok = True
    for key in ("from", "to"):
        site = d.get(key)
        if site is None:
            problems.add(node.file, node.line, f"weathermap {map_name!r}: link without {key}: (a site of this map)")
            ok = False
        elif site not in sites:
            problems.add(*node.where_of(key), f"weathermap {map_name!r}: link {key}: {site!r} is not a site of "
                                              f"this map{did_you_mean(site, sites)}; add it under sites:")
            ok = False
    cap = 0.0
    if "capacity" not in node:
        problems.add(node.file, node.line, "weathermap link without capacity: (e.g. capacity: 10Gbit)")
        ok = False
    else:
        try:
            cap = capacity(node["capacity"])
        except ValueError as e:
            problems.add(*node.where_of("capacity"), f"capacity: {e}")
            ok = False
    refs = {k: _metric(node, k, TRAFFIC_UNITS if k != "latency" else LATENCY_UNITS, objs, problems)
            for k in ("out", "in", "latency")}
    if not ok:
        return None
    if "out" not in node and "in" not in node:
        problems.add(node.file, node.line, f"weathermap link {d['from']}-{d['to']}: say where its traffic comes "
                                           f"from: out: {SHAPE} and/or in: (the other direction)")
    return MapLink(d.get("name", f"{d['from']}-{d['to']}"), d["from"], d["to"], cap, str(node["capacity"]),
                   refs["out"], refs["in"], refs["latency"], _scale(node, "scale", scale, problems),
                   Where(node.file, node.line))


def _metric(link: Node, key: str, units: Mapping[str, float], objs: Objects, problems: Problems) -> MetricRef | None:
    node = link.get(key)
    if node is None:
        return None
    if not isinstance(node, Node):
        problems.add(*link.where_of(key), f"{key}: expected {SHAPE}")
        return None
    d = f.convert(node, METRIC_KEYS, problems, f"link {key}")
    for part in ("host", "service", "label"):
        if not d.get(part):
            problems.add(node.file, node.line, f"{key}: needs {part}: ({SHAPE})")
            return None
    host, service = d["host"], d["service"]
    if host not in objs.hosts:
        problems.add(*node.where_of("host"), f"{key}: undefined host {host!r}{did_you_mean(host, objs.hosts)}")
        return None
    svc = objs.services.get((host, service))
    if svc is None:
        names = [s for h, s in objs.services if h == host]
        problems.add(*node.where_of("service"), f"{key}: host {host!r} has no service {service!r}"
                                                f"{did_you_mean(service, names)}")
        return None
    if not svc.graph:
        problems.add(*node.where_of("service"), f"{key}: {host}/{service} has graph: false; the map reads its "
                                                "week-before values and links to its graphs: remove graph: false")
    default = "bits" if key != "latency" else "ms"
    unit = d.get("unit", default)
    if unit not in units:
        problems.add(*node.where_of("unit"), f"{key}: unit: one of {', '.join(units)}, got {unit!r}"
                                             f"{did_you_mean(unit, units)}")
        return None
    return MetricRef(host, service, d["label"], unit, units[unit])
