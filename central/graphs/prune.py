"""RRD files of checks that are no longer configured: kept for `retention: {rrd_removed}`
after their last value (a check taken out by mistake and put back keeps its history),
then deleted, with their catalog entries, and a host directory left empty removed.
Files of configured checks are never touched, however old."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from central.graphs.catalog import Catalog
from central.graphs.naming import INDEX, Layout
from checkd.config.model import Objects

log = logging.getLogger(__name__)


def prune_removed(layout: Layout, catalog: Catalog, objs: Objects, keep: float, now: float | None = None) -> int:
    """Blocking (run it in a thread): the number of files deleted."""
    now = time.time() if now is None else now
    deleted = 0
    try:
        host_dirs = [d for d in layout.root.iterdir() if d.is_dir()]
    except OSError:
        return 0        # no directory, or not one: the writer already says so in the log and the API
    for d in host_dirs:
        try:
            doc = json.loads((d / INDEX).read_text())
        except (OSError, ValueError):
            continue                # no catalog (yet): nothing known to be removed
        host = doc.get("host")
        gone: set[str] = set()
        for service, labels in doc.get("services", {}).items():
            if host in objs.hosts and (host, service) in objs.services:
                continue
            files = [d / entry["file"] for entry in labels.values() if isinstance(entry, dict) and "file" in entry]
            if all(_older(f, now - keep) for f in files):
                try:
                    for f in files:
                        f.unlink(missing_ok=True)
                        deleted += 1
                except OSError as e:
                    log.warning("rrd: cannot delete %s (%s): kept; the next round tries again", f, e.strerror or e)
                    continue
                gone.add(service)
                log.info("rrd: %s/%s is no longer configured and had no value for %.0f days: %d file(s) deleted",
                         host, service, keep / 86400, len(files))
        if gone:
            catalog.forget(host, gone)
        try:
            if gone and not any(p.suffix == ".rrd" for p in d.iterdir()):
                for p in d.iterdir():
                    p.unlink()
                d.rmdir()
        except OSError as e:
            log.warning("rrd: cannot remove the empty directory %s (%s)", d, e.strerror or e)
    return deleted


def _older(path: Path, cutoff: float) -> bool:
    try:
        return os.stat(path).st_mtime < cutoff
    except FileNotFoundError:
        return True
