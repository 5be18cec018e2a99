"""Compaction: what the spool does when it outgrows its size bound.

Results that central has not acknowledged are squeezed down to the newest one
per (host, service): the operator loses history, never the current state.
Runs in a worker thread on sealed segments only; the writer keeps appending.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from checkd.spool_format import Frame, frame
from checkd.spool_segment import Segment, fsync_dir, iter_items

log = logging.getLogger("checkd.spool")

TMP_NAME = "compact.tmp"


@dataclass(frozen=True)
class Compacted:
    segment: Segment | None  # None when nothing unacknowledged was left
    records_before: int
    records_after: int
    bytes_before: int


def _key(payload: bytes) -> tuple[object, object]:
    try:
        record = json.loads(payload)
    except ValueError:
        return ("?", None)
    return (record.get("host"), record.get("service"))


def build(directory: Path, sealed: list[Segment], acked: int) -> Compacted:
    """Write the newest unacked result per check of the sealed segments to a
    temporary file; install() then swaps it in."""
    newest: dict[tuple[object, object], Frame] = {}
    before = 0
    for seg in sealed:
        for item in iter_items(seg.path, 0, seg.size):
            if isinstance(item, Frame):
                before += 1
                if item.seq > acked:
                    # Later frames win: files and frames are in seq order.
                    newest[_key(item.payload)] = item
    kept = sorted(newest.values(), key=lambda f: f.seq)
    bytes_before = sum(s.size for s in sealed)
    if not kept:
        return Compacted(None, before, 0, bytes_before)
    out = Segment(sealed[0].path, sealed[0].name_seq)
    tmp = directory / TMP_NAME
    try:
        with open(tmp, "wb") as f:
            for item in kept:
                data = frame(item.seq, item.payload)
                f.write(data)
                out.add(item.seq, 1)
                out.size += len(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return Compacted(out, before, len(kept), bytes_before)


def install(directory: Path, sealed: list[Segment], result: Compacted) -> None:
    """Replace the sealed segments by the compacted one. Crash-safe: the new
    file replaces the oldest sealed file by rename, and every seq in the other
    sealed files is <= its last seq (the newest result overall is always
    kept), so after a crash before they are deleted, recovery drops them as
    redundant. With nothing unacked left, this is just a trim."""
    rest = sealed
    if result.segment is not None:
        os.replace(directory / TMP_NAME, result.segment.path)
        fsync_dir(directory)
        rest = sealed[1:]
    for seg in rest:
        seg.path.unlink(missing_ok=True)
    fsync_dir(directory)
