"""The kept mapping from perfdata labels to files: one labels.json per host
directory, {service: {label: {file, ds, uom, kind, step, created}}}, written by
the writer when it creates files (new labels of a host in one write per flush:
write a new file, rename it over; no fsync, since after a crash the writer
records a file again on its next value), read by central to know which metrics
a service has, their units and files. Readers cache it by mtime.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from central.graphs.naming import Layout

log = logging.getLogger(__name__)
GAUGE, DERIVE = "GAUGE", "DERIVE"
Services = dict[str, dict[str, "Entry"]]


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    service: str
    label: str                  # exactly as the plugin wrote it
    file: str                   # the file's name in the host directory (naming.file_name)
    ds: str
    uom: str
    kind: str                   # GAUGE, or DERIVE for counters (UOM `c`)
    step: int
    created: float


class Catalog:
    def __init__(self, layout: Layout):
        self.layout = layout
        self._cache: dict[str, tuple[int, Services]] = {}
        self._lock = threading.Lock()       # readers run in threads

    def labels(self, host: str, service: str) -> dict[str, Entry]:
        """Every label of the service with a file (blocking: a small file read; run it in a thread)."""
        path = self.layout.index(host)
        try:
            mtime = path.stat().st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):     # no file yet, or no rrd dir at all
            return {}
        with self._lock:
            cached = self._cache.get(host)
        if cached is None or cached[0] != mtime:
            cached = (mtime, self._read(path))
            with self._lock:
                self._cache[host] = cached
        return cached[1].get(service, {})

    def _read(self, path: Path) -> Services:
        try:
            doc = json.loads(path.read_text())
            return {service: {label: Entry(service=service, label=label, **fields) for label, fields in labels.items()}
                    for service, labels in doc["services"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            # The writer rewrites it whole when it next creates a file; until then no metrics here.
            log.error("%s is unreadable (%s): its graphs are unknown until the writer rewrites it", path, e)
            return {}

    def add(self, host: str, entries: list[Entry]) -> None:
        """Writer side: record files of one host (read, add, write a new file, rename it over)."""
        path = self.layout.index(host)
        known = self._read(path)
        for e in entries:
            known.setdefault(e.service, {})[e.label] = e
        doc: dict[str, Any] = {"host": host, "services": {
            service: {e.label: {k: v for k, v in dataclasses.asdict(e).items() if k not in ("service", "label")}
                      for e in labels.values()}
            for service, labels in known.items()}}
        self._write(path, doc)

    def forget(self, host: str, services: set[str]) -> None:
        """Central's pruning: services whose files were deleted (their checks were removed
        from the configuration long ago). The writer never adds to those, so it does not
        race this read-change-rename."""
        path = self.layout.index(host)
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        doc["services"] = {s: labels for s, labels in doc.get("services", {}).items() if s not in services}
        self._write(path, doc)

    @staticmethod
    def _write(path: Path, doc: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        os.replace(tmp, path)
