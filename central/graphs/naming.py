"""Safe names: every host, service and perfdata label becomes a file name made of
[A-Za-z0-9_.-] (a readable prefix plus a short hash of the exact text, so "Disk /"
and "Disk _" never share a file), and a DS name rrdtool accepts. No path is ever
built from text a request sent; only from these names.

    {dir}/{host}/{service}/{label}.rrd     e.g. db1.ladc1-5f0c.../Disk__-81d2.../_-0c4e....rrd
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

PREFIX = 40                     # characters of readable prefix
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_DS_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
DS_MAX = 19                     # rrdtool's limit on DS names
INDEX = "labels.json"           # per service directory: label -> file (catalog.py)


def safe_name(text: str) -> str:
    """`text` as one path component: never empty, never '.', '..' or hidden, no '/' or ':'."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()
    prefix = _UNSAFE.sub("_", text)[:PREFIX].lstrip(".-")
    return f"{prefix}-{digest}" if prefix else digest


def ds_name(label: str) -> str:
    """The data source name inside a label's file (one DS per file, so no collisions)."""
    name = _DS_UNSAFE.sub("_", label)[:DS_MAX]
    return name if any(ch.isalnum() for ch in name) else "value"


class Layout:
    def __init__(self, root: Path):
        self.root = root

    def service_dir(self, host: str, service: str) -> Path:
        return self.root / safe_name(host) / safe_name(service)

    def index(self, host: str, service: str) -> Path:
        return self.service_dir(host, service) / INDEX

    def file_name(self, label: str) -> str:
        return safe_name(label) + ".rrd"

    def path(self, host: str, service: str, file_name: str) -> Path:
        """A label's file, from the name the catalog recorded; refuses anything but a plain .rrd name."""
        if "/" in file_name or not file_name.endswith(".rrd") or file_name.startswith("."):
            raise ValueError(f"not an RRD file name: {file_name!r}")
        return self.service_dir(host, service) / file_name


def rrd_arg(path: Path) -> str:
    """A path inside an rrdtool DEF (where ':' separates fields)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:")
