"""Drawing one metric with rrdtool (blocking: run in central's single rrd thread).

The PNG: the metric as a line with last/avg/max in the legend, the same time one
week earlier as a red line (the file read a week back, SHIFTed by 604800 s), a
dashed line per warning/critical threshold, and a vertical line per deployment:
solid violet for the graph's own host, dashed lilac for others (`rREVISION
@engineer`, own ones named first). The series: the same two lines as numbers.
Units: bytes and seconds are scaled to their base unit so rrdtool's prefixes
(k, M, G / m, u) read right.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

try:
    import rrdtool
except ImportError:             # a central without rrd: needs no librrd (graphs.py says so if it does)
    rrdtool = None

from central.graphs.catalog import DERIVE
from central.graphs.naming import rrd_arg
from checkd.perfdata import Range

WEEK = 604800
COLORS = {"value": "#1F5FBF", "week": "#FF0000", "warn": "#E8A000", "crit": "#A00000", "deploy": "#9400D3",
          "deploy_other": "#C890F0"}
MARKER_LEGENDS = 8              # deployments named in the legend; later ones are drawn unnamed
LEGEND_CHARS = 80               # the longest deployment legend line (a 600 px graph holds ~88) ...
CHAR_PX = 8                     # ... and on narrower graphs, what fits: a character is ~7.2 px
# UOM -> (factor to the base unit, axis label, base for prefixes)
UNITS: dict[str, tuple[float, str, int]] = {
    "B": (1, "bytes", 1024), "KB": (1024, "bytes", 1024), "MB": (1024 ** 2, "bytes", 1024),
    "GB": (1024 ** 3, "bytes", 1024), "TB": (1024 ** 4, "bytes", 1024),
    "s": (1, "seconds", 1000), "ms": (1e-3, "seconds", 1000), "us": (1e-6, "seconds", 1000),
    "%": (1, "percent", 1000), "c": (1, "per second", 1000),
}


class RenderError(Exception):
    """rrdtool could not draw or read the file."""


@dataclasses.dataclass(frozen=True, slots=True)
class Deploy:
    ts: float
    module: str
    revision: str
    engineer: str
    summary: str = ""           # its first line (checkd.engine.deployments.headline)
    hosts: tuple[str, ...] = ()
    own: bool = True            # it touched the graph's host

    @property
    def label(self) -> str:
        return f"r{self.revision} @{self.engineer}"

    def legend(self, day_format: bool, limit: int = LEGEND_CHARS) -> str:
        """`14:05 shop r4711 @alice: Fix the rounding`, with ` on web1 +2` for another host's."""
        when = time.strftime("%b %d %H:%M" if day_format else "%H:%M", time.localtime(self.ts))
        where = ""
        if not self.own and self.hosts:
            where = f" on {self.hosts[0]}" + (f" +{len(self.hosts) - 1}" if len(self.hosts) > 1 else "")
        text = f"{when} {self.module} {self.label}{where}"
        if self.summary:
            text += f": {self.summary}"
        return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


@dataclasses.dataclass(frozen=True, slots=True)
class Graph:
    """One metric of one service over [start, end]: everything rrdtool needs, already checked."""

    host: str
    service: str
    label: str
    path: Path
    ds: str
    uom: str
    kind: str
    start: int
    end: int
    width: int = 800
    height: int = 250
    warn: tuple[float, ...] = ()
    crit: tuple[float, ...] = ()
    deploys: tuple[Deploy, ...] = ()     # in legend order: the host's own first
    deploys_left_out: int = 0           # in the window, but over the bound of lines drawn
    daemon: str = ""            # rrdcached address: it flushes the file before rrdtool reads it

    @property
    def unit(self) -> tuple[float, str, int]:
        if self.kind == DERIVE:
            return UNITS["c"]
        return UNITS.get(self.uom, (1, self.uom, 1000))


def bounds(r: Range | None) -> tuple[float, ...]:
    """Where a threshold range's lines go: its finite ends (`10` is 0..10: only 10)."""
    if r is None:
        return ()
    ends = (r.start, r.end) if ":" in r.text else (r.end,)
    return tuple(v for v in ends if math.isfinite(v))


def legend(text: str) -> str:
    """Text for an rrdtool legend: ':' separates fields there, '\\' starts a layout code."""
    return text.replace("\\", "/").replace(":", "\\:")


def _defs(g: Graph) -> list[str]:
    factor = g.unit[0]
    f = rrd_arg(g.path)
    return [f"DEF:raw={f}:{g.ds}:AVERAGE",
            f"DEF:rawweek={f}:{g.ds}:AVERAGE:start={g.start - WEEK}:end={g.end - WEEK}",
            f"SHIFT:rawweek:{WEEK}",
            f"CDEF:v=raw,{factor!r},*", f"CDEF:w=rawweek,{factor!r},*"]


def _daemon_args(g: Graph) -> list[str]:
    return ["--daemon", g.daemon] if g.daemon else []


def graph_args(g: Graph) -> list[str]:
    factor, axis, base = g.unit
    args = ["--start", str(g.start), "--end", str(g.end), "--width", str(g.width), "--height", str(g.height),
            "--imgformat", "PNG", "--title", f"{g.host} / {g.service}: {g.label}", "--base", str(base)]
    if axis:
        args += ["--vertical-label", axis]
    lines = [v * factor for v in g.warn + g.crit]
    if lines and max(lines) > 0:
        args += ["--upper-limit", repr(max(lines))]     # thresholds stay in view (data may go above)
    args += _defs(g)
    args += [f"LINE1:w{COLORS['week']}:{legend('same time a week before')}",
             "GPRINT:w:AVERAGE:avg %7.2lf%s\\l",
             f"LINE2:v{COLORS['value']}:{legend(g.label)}",
             "GPRINT:v:LAST:last %7.2lf%s", "GPRINT:v:AVERAGE:avg %7.2lf%s", "GPRINT:v:MAX:max %7.2lf%s\\l"]
    for kind, values in (("warn", g.warn), ("crit", g.crit)):
        for value in values:
            name = "warning" if kind == "warn" else "critical"
            args.append(f"HRULE:{value * factor!r}{COLORS[kind]}:{legend(f'{name} {value:g}{g.uom}')}:dashes")
    return args + _deploy_args(g)


def _deploy_args(g: Graph) -> list[str]:
    """One VRULE per deployment; the first MARKER_LEGENDS named, one a line, then a count."""
    args = ["COMMENT:\\l"] if g.deploys and (g.warn or g.crit) else []     # end the thresholds' line
    long_range = g.end - g.start > 86400
    pixel = (g.end - g.start) / g.width
    chars = min(LEGEND_CHARS, (g.width + 40) // CHAR_PX)      # the image is ~80 px wider than the graph
    for i, d in enumerate(g.deploys):
        text = f"{legend(d.legend(long_range, chars))}\\l" if i < MARKER_LEGENDS else ""
        if d.own:
            args.append(f"VRULE:{int(d.ts)}{COLORS['deploy']}:{text}")
            if pixel >= 1:      # 2 px: VRULE has no width (and whole seconds only), so a second one
                args.append(f"VRULE:{int(d.ts) + math.ceil(pixel)}{COLORS['deploy']}")
        else:
            args.append(f"VRULE:{int(d.ts)}{COLORS['deploy_other']}:{text}:dashes=6,3")
    unnamed = max(0, len(g.deploys) - MARKER_LEGENDS) + g.deploys_left_out
    if unnamed:
        drawn = f" ({g.deploys_left_out} of them not drawn)" if g.deploys_left_out else ""
        args.append(f"COMMENT:{legend(f'and {unnamed} more deployment(s), not named{drawn}')}\\l")
    return args


def _call(fn: Any, g: Graph, args: list[str]) -> Any:
    try:
        return fn(*_daemon_args(g), *args)
    except rrdtool.OperationalError as e:
        if g.daemon and "rrdcached" in str(e).lower():
            # rrdcached is down: the files still hold all but its unflushed values.
            try:
                return fn(*args)
            except rrdtool.OperationalError as e2:
                raise RenderError(str(e2)) from None
        raise RenderError(str(e)) from None


def png(g: Graph) -> tuple[bytes, dict[str, Any]]:
    """The image, and rrdtool's facts about it (where the graph area is, its time range)."""
    info = _call(lambda *a: rrdtool.graphv("-", *a), g, graph_args(g))
    image = info.pop("image")
    return image, info


def series(g: Graph, rows: int) -> dict[str, Any]:
    """The metric and the week-before line as columns: times, value, week_before (null: no data)."""
    args = ["--start", str(g.start), "--end", str(g.end), "--maxrows", str(rows)] + _defs(g)[:3] + [
        "XPORT:raw:value", "XPORT:rawweek:week_before"]
    out = _call(rrdtool.xport, g, args)
    meta, data = out["meta"], out["data"]
    step = meta["step"]
    times = [meta["start"] + (i + 1) * step for i in range(len(data))]
    values = [row[0] for row in data]
    known = [v for v in values if v is not None]
    return {"start": meta["start"], "end": meta["end"], "step": step, "times": times, "value": values,
            "week_before": [row[1] for row in data],
            "summary": {"last": known[-1] if known else None, "avg": sum(known) / len(known) if known else None,
                        "max": max(known) if known else None}}


def average(path: Path, ds: str, start: int, end: int, daemon: str = "") -> float | None:
    """The mean of the stored values in [start, end] (None: no data)."""
    args = [str(path), "AVERAGE", "--start", str(start), "--end", str(end)]
    try:
        (_, _, _), names, rows = rrdtool.fetch(*(["--daemon", daemon] if daemon else []), *args)
    except rrdtool.OperationalError as e:
        if not daemon:
            raise RenderError(str(e)) from None
        try:
            (_, _, _), names, rows = rrdtool.fetch(*args)
        except rrdtool.OperationalError as e2:
            raise RenderError(str(e2)) from None
    i = names.index(ds) if ds in names else 0
    known = [r[i] for r in rows if r[i] is not None]
    return sum(known) / len(known) if known else None
