"""Safe names: hosts become directories and (service, label) pairs files, made of
[A-Za-z0-9_.-] only: a readable prefix plus a hash of the exact text, so "Disk /"
and "Disk _" never share a file. No path is ever built from text a request sent;
only from these names and the catalog's record of them.

    {dir}/{host}/{service}__{label}-{hash}.rrd     one file per metric
    {dir}/{host}/labels.json                       the catalog (catalog.py)

e.g. db1.ladc1-5f0c21ab93/Disk______-9a0e61c2f4d1.rrd for label "/" of "Disk /".
One directory per host, not per service: creating 100k files is then mostly
rrdtool's work, not the file system's.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

PREFIX = 40                     # characters of readable prefix per part
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_DS_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
DS_MAX = 19                     # rrdtool's limit on DS names
INDEX = "labels.json"
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.rrd")


def _prefix(text: str) -> str:
    return _UNSAFE.sub("_", text)[:PREFIX].lstrip(".-") or "_"


def _digest(*parts: str) -> str:
    """Of the exact texts, length-prefixed so ("ab", "c") and ("a", "bc") differ."""
    data = "".join(f"{len(p)}:{p}" for p in parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=6).hexdigest()


def safe_name(text: str) -> str:
    """`text` as one path component: never empty, never '.', '..' or hidden, no '/' or ':'."""
    return f"{_prefix(text)}-{_digest(text)}"


def file_name(service: str, label: str) -> str:
    return f"{_prefix(service)}__{_prefix(label)}-{_digest(service, label)}.rrd"


def ds_name(label: str) -> str:
    """The data source name inside a label's file (one DS per file, so no collisions)."""
    name = _DS_UNSAFE.sub("_", label)[:DS_MAX]
    return name if any(ch.isalnum() for ch in name) else "value"


class Layout:
    def __init__(self, root: Path):
        self.root = root

    def host_dir(self, host: str) -> Path:
        return self.root / safe_name(host)

    def index(self, host: str) -> Path:
        return self.host_dir(host) / INDEX

    def path(self, host: str, name: str) -> Path:
        """A metric's file, from the name the catalog recorded; refuses anything but a plain .rrd name."""
        if not _FILE.fullmatch(name):
            raise ValueError(f"not an RRD file name: {name!r}")
        return self.host_dir(host) / name


def rrd_arg(path: Path) -> str:
    """A path inside an rrdtool DEF (where ':' separates fields)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:")
