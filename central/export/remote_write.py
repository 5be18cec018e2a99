"""Prometheus remote write 1.0: a protobuf WriteRequest, snappy-compressed, POSTed.
The message is four small types, encoded here by hand (no protobuf package in the
project's Python):

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds

Perfdata values are `PREFIX_perfdata{host, service, label, unit}`; deployment markers
`PREFIX_deployment{host, module, revision, engineer, phase} 1`.
"""

from __future__ import annotations

import struct

from central.export import snappy
from central.export.items import Item, Sample

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}
Labels = tuple[tuple[str, str], ...]


def labels(prefix: str, item: Item) -> Labels:
    """Sorted by name, as the protocol requires; empty values left out (Prometheus'
    meaning of an empty label)."""
    if isinstance(item, Sample):
        pairs = {"__name__": f"{prefix}_perfdata", "host": item.host, "service": item.service,
                 "label": item.label, "unit": item.unit}
    else:
        pairs = {"__name__": f"{prefix}_deployment", "host": item.host, "module": item.module,
                 "revision": item.revision, "engineer": item.engineer, "phase": item.phase}
    return tuple(sorted((k, v) for k, v in pairs.items() if v))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return snappy.varint(number << 3 | 2) + snappy.varint(len(payload)) + payload


def _sample(value: float, ts_ms: int) -> bytes:
    return b"\x09" + struct.pack("<d", value) + b"\x10" + snappy.varint(ts_ms)


def _utf8(text: str) -> bytes:
    """Names as UTF-8; a byte a plugin wrote that is not UTF-8 becomes U+FFFD."""
    return text.encode("utf-8", "replace")


def write_request(prefix: str, items: list[Item]) -> bytes:
    """The uncompressed message: one TimeSeries per series, its samples oldest first."""
    series: dict[Labels, list[tuple[int, float]]] = {}
    for item in items:
        value = item.value if isinstance(item, Sample) else 1.0
        series.setdefault(labels(prefix, item), []).append((round(item.ts * 1000), value))
    out = bytearray()
    for names, samples in series.items():
        body = b"".join(_field(1, _field(1, _utf8(k)) + _field(2, _utf8(v))) for k, v in names)
        body += b"".join(_field(2, _sample(v, ts)) for ts, v in sorted(samples))
        out += _field(1, body)
    return bytes(out)


def encode(prefix: str, items: list[Item]) -> bytes:
    return snappy.compress(write_request(prefix, items))
