"""`export:` in central's node file: the time-series databases that get a copy of every
graphed perfdata value besides the RRD files (docs/metrics-export.md). A list of
targets, each with its type, where it listens, a name prefix and which metrics it takes.
"""

from __future__ import annotations

import dataclasses
import re
from fnmatch import fnmatchcase
from typing import Any

from checkd.config import fields as f
from checkd.config.errors import Problems, did_you_mean
from checkd.config.yamlsource import Node, Seq

TYPES = ("graphite", "prometheus_remote_write", "influx")
DEFAULT_PREFIX = "checkd"
_PROM_PREFIX = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_GRAPHITE_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def patterns(value: Any) -> tuple[str, ...]:
    """A pattern or a list of them (no comma splitting: a service name may hold one)."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v for v in items):
        raise ValueError(f'expected a pattern or a list of patterns like "*.ladc1/Disk */*", got {value!r}')
    return tuple(items)


EXPORT_KEYS: dict[str, f.Converter] = {
    "type": f.text, "name": f.text, "address": f.text, "url": f.url, "prefix": f.text,
    "include": patterns, "exclude": patterns, "deployments": f.boolean, "queue": f.positive_int,
    "batch": f.positive_int, "timeout": f.positive_duration, "headers": f.string_map}


@dataclasses.dataclass(frozen=True, slots=True)
class ExportTarget:
    """One receiver. Patterns match `HOST/SERVICE/LABEL` (shell-style, case-sensitive)."""

    name: str
    type: str
    address: tuple[str, int] = ("", 0)      # graphite: where carbon's plaintext listener is
    url: str = ""                           # prometheus_remote_write, influx: where to POST
    prefix: str = DEFAULT_PREFIX
    include: tuple[str, ...] = ()           # empty: every metric
    exclude: tuple[str, ...] = ()           # wins over include
    deployments: bool = True                # deployment markers as a series (for annotations)
    queue: int = 100_000                    # values waiting while the receiver is slow or away
    batch: int = 1000                       # values per send
    timeout: float = 10.0                   # one send, connect included
    headers: tuple[tuple[str, str], ...] = ()

    def wants(self, host: str, service: str, label: str) -> bool:
        path = f"{host}/{service}/{label}"
        if self.include and not any(fnmatchcase(path, p) for p in self.include):
            return False
        return not any(fnmatchcase(path, p) for p in self.exclude)


def read_exports(value: Any, node: Node, problems: Problems) -> tuple[ExportTarget, ...]:
    """`export: [{type: graphite, address: HOST:PORT, ...}, {type: prometheus_remote_write, url: ...}]`."""
    if value is None:
        return ()
    if not isinstance(value, Seq):
        problems.add(*node.where_of("export"), "export: expected a list of targets, e.g. "
                     "[{type: graphite, address: 127.0.0.1:2003}]")
        return ()
    out: list[ExportTarget] = []
    for spec in value:
        target = _target(spec, value, problems, len(out))
        if target is None:
            continue
        if any(t.name == target.name for t in out):
            problems.add(spec.file, spec.line, f"export: two targets named {target.name!r}; give each its own "
                                               "`name:` (it labels checkd_export_dropped_total)")
            continue
        out.append(target)
    return tuple(out)


def _target(spec: Any, seq: Seq, problems: Problems, index: int) -> ExportTarget | None:
    if not isinstance(spec, Node):
        problems.add(seq.file, seq.line, f"export: item {index + 1}: expected a mapping like "
                                         "{type: graphite, address: 127.0.0.1:2003}")
        return None
    d = f.convert(spec, EXPORT_KEYS, problems, "an export target")
    kind = d.get("type")
    if kind not in TYPES:
        problems.add(*spec.where_of("type"), f"export: type: one of {', '.join(TYPES)}"
                     + (did_you_mean(kind, TYPES) if kind else " (missing)"))
        return None
    kw: dict[str, Any] = {k: d[k] for k in ("include", "exclude", "deployments", "queue", "batch", "timeout")
                          if k in d}
    prefix = d.get("prefix", DEFAULT_PREFIX)
    if kind == "graphite":
        address = _address(d.get("address", ""))
        if address is None:
            problems.add(*spec.where_of("address"), "export: graphite needs `address: HOST:PORT` "
                         "(carbon's plaintext listener, usually 127.0.0.1:2003)")
            return None
        for key in ("url", "headers"):
            if key in d:
                problems.add(*spec.where_of(key), f"export: {key}: not used by graphite (it takes address:)")
        if not _GRAPHITE_PREFIX.fullmatch(prefix):
            problems.add(*spec.where_of("prefix"), "export: prefix: dot-separated words of A-Z a-z 0-9 _ -, "
                                                   "e.g. checkd or monitoring.checkd")
        kw["address"] = address
    else:
        if not d.get("url"):
            example = ("http://127.0.0.1:8428/api/v1/write" if kind == "prometheus_remote_write"
                       else "http://127.0.0.1:8428/write")
            problems.add(*spec.where_of("url"), f"export: {kind} needs `url: {example}`")
            return None
        if "address" in d:
            problems.add(*spec.where_of("address"), f"export: address: not used by {kind} (it takes url:)")
        if not _PROM_PREFIX.fullmatch(prefix):
            problems.add(*spec.where_of("prefix"), "export: prefix: a metric name start, [a-zA-Z_:][a-zA-Z0-9_:]* "
                                                   "(e.g. checkd)")
        kw["url"], kw["headers"] = d["url"], tuple(sorted(d.get("headers", {}).items()))
    name = d.get("name") or f"{kind}-{index + 1}"
    return ExportTarget(name=name, type=kind, prefix=prefix, **kw)


def _address(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)
