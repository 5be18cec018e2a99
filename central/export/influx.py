"""InfluxDB line protocol, POSTed to /write (InfluxDB 1.x, VictoriaMetrics):
measurement PREFIX, field `perfdata` or `deployment`, nanosecond timestamps. In
VictoriaMetrics these read as `PREFIX_perfdata` and `PREFIX_deployment`, the names
remote write gives them, so dashboards work with either.
"""

from __future__ import annotations

import re

from central.export.items import Item, Sample

HEADERS = {"Content-Type": "text/plain; charset=utf-8"}
_TAG_ESCAPE = re.compile(r"([,= \\])")


def _tag(text: str) -> str:
    """Tag values escape comma, equals, space (and backslash); newlines cannot be sent."""
    return _TAG_ESCAPE.sub(r"\\\1", text.replace("\n", " "))


def line(prefix: str, item: Item) -> str:
    if isinstance(item, Sample):
        tags = {"host": item.host, "service": item.service, "label": item.label, "unit": item.unit}
        field, value = "perfdata", item.value
    else:
        tags = {"host": item.host, "module": item.module, "revision": item.revision,
                "engineer": item.engineer, "phase": item.phase}
        field, value = "deployment", 1.0
    tag_text = "".join(f",{k}={_tag(v)}" for k, v in sorted(tags.items()) if v)
    return f"{_tag(prefix)}{tag_text} {field}={value!r} {round(item.ts * 1e6) * 1000}\n"


def encode(prefix: str, items: list[Item]) -> bytes:
    return "".join(line(prefix, item) for item in items).encode("utf-8", "replace")
