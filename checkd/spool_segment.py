"""Segment files of the spool and the small files beside them.

A segment is one append-only file of frames, named by the seq it was created
for. This module knows what a segment holds (seq range, size), how to recover
one after a crash, and how to write the spool's small state files safely.
"""

from __future__ import annotations

import logging
import mmap
import os
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from checkd.spool_format import Frame, Garbage, scan

log = logging.getLogger("checkd.spool")

SUFFIX = ".seg"


def segment_path(directory: Path, name_seq: int) -> Path:
    # Zero-padded so that name order is seq order.
    return directory / f"{name_seq:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.iterdir():
        if path.suffix == SUFFIX and path.stem.isdigit():
            found.append((int(path.stem), path))
    return sorted(found)


@dataclass(eq=False)
class Segment:
    """What one segment file holds. size counts durable bytes only: readers
    never look past it, so they never see a half-written batch."""

    path: Path
    name_seq: int
    size: int = 0
    count: int = 0
    first: int | None = None
    last: int | None = None
    # Explicit seq list, only once the seqs in this file have gaps (after
    # compaction or skipped corruption); None means first..last, all present.
    seqs: array | None = field(default=None, repr=False)

    def add(self, first: int, n: int) -> None:
        """Record n frames with seqs first..first+n-1 appended to the file."""
        if n <= 0:
            return
        if self.last is None:
            self.first = first
        elif first != self.last + 1 and self.seqs is None:
            self.seqs = array("q", range(self.first or first, self.last + 1))
        if self.seqs is not None:
            self.seqs.extend(range(first, first + n))
        self.last = first + n - 1
        self.count += n

    def pending_after(self, acked: int) -> int:
        """How many records in this segment have seq > acked."""
        if self.last is None or self.last <= acked:
            return 0
        assert self.first is not None
        if self.first > acked:
            return self.count
        if self.seqs is None:
            return self.last - acked
        return len(self.seqs) - bisect_right(self.seqs, acked)


def iter_items(path: Path, start: int, end: int) -> Iterator[Frame | Garbage]:
    """Frames (and garbage) of a segment file between two offsets, via mmap."""
    if end <= start:
        return
    with open(path, "rb") as f, mmap.mmap(f.fileno(), end, access=mmap.ACCESS_READ) as mm:
        yield from scan(mm, start, end)


def recover_segment(path: Path, name_seq: int) -> Segment:
    """Scan a segment after a restart: index it, log and skip garbage in the
    middle, and truncate a torn tail (a frame cut short by a crash mid-write)."""
    seg = Segment(path, name_seq)
    size = path.stat().st_size
    torn_at: int | None = None
    for item in iter_items(path, 0, size):
        if isinstance(item, Garbage):
            if item.end >= size:
                torn_at = item.offset
            else:
                log.warning(
                    "spool: corrupt data in %s at offset %d (%d bytes) skipped; "
                    "records after it are read normally",
                    path, item.offset, item.end - item.offset,
                )
            continue
        if seg.last is not None and item.seq <= seg.last:
            log.warning("spool: out-of-order seq %d in %s at offset %d ignored", item.seq, path, item.offset)
            continue
        seg.add(item.seq, 1)
    if torn_at is not None:
        log.warning(
            "spool: torn record at end of %s at offset %d (%d bytes), truncated; "
            "every record before it is intact",
            path, torn_at, size - torn_at,
        )
        # Truncate so the next append does not follow garbage.
        with open(path, "r+b") as f:
            f.truncate(torn_at)
            os.fsync(f.fileno())
        size = torn_at
    seg.size = size
    return seg


def fsync_dir(directory: Path) -> None:
    """Make created, renamed or deleted names durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_small_file(path: Path, text: str, durable: bool) -> None:
    """Replace a small state file atomically (write a temp file, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def read_int_file(path: Path, key: str) -> int:
    """A seq kept in a small state file; 0 when missing, a warning when garbled."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    try:
        return int(text)
    except ValueError:
        log.warning("spool: ignoring unreadable %s file %s: %r", key, path, text[:80])
        return 0
