"""The kept mapping from perfdata labels to files: one labels.json per service
directory, written by the writer when it creates a label's file (atomically:
write, fsync, rename), read by central to know which metrics a service has, what
unit they are in and which file holds them. Readers cache it by mtime.
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


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    label: str                  # exactly as the plugin wrote it
    file: str                   # the file's name in the service directory (naming.safe_name + .rrd)
    ds: str
    uom: str
    kind: str                   # GAUGE, or DERIVE for counters (UOM `c`)
    step: int
    created: float


class Catalog:
    def __init__(self, layout: Layout):
        self.layout = layout
        self._cache: dict[tuple[str, str], tuple[int, dict[str, Entry]]] = {}
        self._lock = threading.Lock()       # readers run in threads

    def labels(self, host: str, service: str) -> dict[str, Entry]:
        """Every label with a file (blocking: small file read; run it in a thread)."""
        path = self.layout.index(host, service)
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        with self._lock:
            cached = self._cache.get((host, service))
            if cached is not None and cached[0] == mtime:
                return cached[1]
        entries = self._read(path)
        with self._lock:
            self._cache[(host, service)] = (mtime, entries)
        return entries

    def _read(self, path: Path) -> dict[str, Entry]:
        try:
            doc = json.loads(path.read_text())
            return {label: Entry(label=label, **fields) for label, fields in doc["labels"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as e:
            # The writer rewrites it whole when it next creates a file; until then no metrics here.
            log.error("%s is unreadable (%s): its graphs are unknown until the writer rewrites it", path, e)
            return {}

    def add(self, host: str, service: str, entry: Entry) -> None:
        """Writer side: record one label's file (read, add, write a new file, rename over)."""
        path = self.layout.index(host, service)
        entries = self._read(path)
        entries[entry.label] = entry
        doc: dict[str, Any] = {"host": host, "service": service,
                               "labels": {e.label: {k: v for k, v in dataclasses.asdict(e).items() if k != "label"}
                                          for e in entries.values()}}
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
