"""The poller's durable spool: every result lands here before it is forwarded.

append() returns once the result is on disk (group commit, one fsync per
batch); the forwarder read()s unacknowledged results in seq order and trim()s
what central acknowledged. Format, guarantees and limits: docs/spool.md.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
from bisect import bisect_right
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from checkd.spool_compact import TMP_NAME, build, install
from checkd.spool_format import Frame, decode_record, encode_payload
from checkd.spool_segment import (
    Segment, iter_items, list_segments, read_int_file, recover_segment, write_small_file,
)
from checkd.spool_writer import SegmentWriter

log = logging.getLogger("checkd.spool")

LAST_SEQ_FILE = "last_seq"  # highest seq ever assigned; survives a full trim
ACKED_FILE = "acked"  # highest seq central acknowledged; losing it only means re-sending
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class SpoolError(Exception):
    """The spool could not store a result."""


class SpoolFullError(SpoolError):
    """The spool's filesystem is full (or the file size limit is reached)."""


class Spool:
    def __init__(self, directory: Path, max_bytes: int = 1 << 30, segment_bytes: int = 16 << 20,
                 commit_interval: float = 0.02):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.commit_interval = commit_interval
        # Set after every durable batch; the forwarder waits on it when idle.
        self.new_data = asyncio.Event()
        self._segments: list[Segment] = []  # name order == seq order; last is active
        self._lock = threading.Lock()  # guards _segments and sizes against reader threads
        self._maint = threading.Lock()  # serialises trim deletions and compaction
        self._files = threading.Lock()  # readers vs. deleting/replacing segment files
        self._acked = 0
        self._w = SegmentWriter(self.directory, segment_bytes, self._segments, self._lock, 1)
        self._pending: list[bytes] = []
        self._waiters: list[tuple[asyncio.Future[int], int]] = []  # (future, index in batch)
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._compactor: asyncio.Task[None] | None = None
        self._closing = False
        self._full = False
        self._compacted_size = 0
        self._read_cache: tuple[Segment, int, int] | None = None  # (segment, offset, seq read up to)

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        await asyncio.to_thread(self._recover)
        self._writer = asyncio.create_task(self._write_loop(), name="spool-writer")

    def _recover(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        check_format(self.directory)
        (self.directory / TMP_NAME).unlink(missing_ok=True)  # an interrupted compaction's output
        highest = max(read_int_file(self.directory / LAST_SEQ_FILE, "last_seq"), 0)
        self._acked = read_int_file(self.directory / ACKED_FILE, "acked")
        found = list_segments(self.directory)
        for i, (name_seq, path) in enumerate(found):
            seg = recover_segment(path, name_seq)
            is_last = i == len(found) - 1
            if not is_last and (seg.last is None or seg.last <= self._max_seen()):
                # Left over by a compaction interrupted between its rename and
                # its deletes (or an empty file): every seq is in an earlier file.
                log.info("spool: removing redundant segment %s", path)
                path.unlink()
                continue
            self._segments.append(seg)
            highest = max(highest, name_seq - 1)
        highest = max(highest, self._max_seen(), self._acked)
        self._w.next_seq = highest + 1
        if not self._segments or self._segments[-1].size >= self.segment_bytes:
            self._segments.append(self._w.create_segment(self._w.next_seq))
        self._w.fd = self._w.open_active()
        log.info("spool %s opened: %d segments, %d bytes, next seq %d, %d unacknowledged",
                 self.directory, len(self._segments), self._bytes(), self._w.next_seq, self._pending_count())

    def _max_seen(self) -> int:
        lasts = [s.last for s in self._segments if s.last is not None]
        return max(lasts, default=0)

    async def close(self) -> None:
        """Write what is pending, stop the writer, remember the last seq."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
        if self._compactor is not None:
            await self._compactor
        self._w.close()
        await asyncio.to_thread(self._save_last_seq)

    # -- appending ---------------------------------------------------------

    async def append(self, record: dict[str, Any]) -> int:
        """Store one result; returns its seq once it is durable."""
        payload = encode_payload(record)  # fails here, for this caller only
        return await self._enqueue([payload])

    async def append_many(self, records: Iterable[dict[str, Any]]) -> list[int]:
        payloads = [encode_payload(r) for r in records]
        if not payloads:
            return []
        first = await self._enqueue(payloads)
        return list(range(first, first + len(payloads)))

    def _enqueue(self, payloads: list[bytes]) -> asyncio.Future[int]:
        if self._closing or self._writer is None:
            raise SpoolError(f"spool {self.directory} is not open")
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((fut, len(self._pending)))
        self._pending.extend(payloads)
        self._wake.set()
        return fut

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                if self._closing:
                    return
                continue
            payloads, waiters = self._pending, self._waiters
            self._pending, self._waiters = [], []
            started = loop.time()
            try:
                first = await asyncio.to_thread(self._w.write_batch, payloads)
            except Exception as exc:  # the writer must outlive any failed batch
                err = self._batch_error(exc, len(payloads))
                for fut, _ in waiters:
                    if not fut.done():
                        fut.set_exception(err)
            else:
                if self._full:
                    self._full = False
                    log.warning("spool %s is writable again", self.directory)
                for fut, index in waiters:
                    if not fut.done():
                        fut.set_result(first + index)
                self.new_data.set()
                await self._maybe_compact()
            # Group commit: let appends gather for up to commit_interval so
            # that one write + fsync covers all of them.
            if not self._closing:
                await asyncio.sleep(max(0.0, self.commit_interval - (loop.time() - started)))
            self._wake.set()

    def _batch_error(self, exc: BaseException, n: int) -> SpoolError:
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            msg = (f"spool {self.directory} is full ({os.strerror(exc.errno or 0)}): {n} results "
                   f"not stored; everything stored before is intact")
            if not self._full:
                self._full = True
                log.error("%s; appends fail until space is freed", msg)
            return SpoolFullError(msg)
        log.error("spool %s: write failed, %d results not stored: %r", self.directory, n, exc)
        return SpoolError(f"spool {self.directory}: write failed: {exc!r}")

    # -- reading, trimming -------------------------------------------------

    def read(self, after_seq: int, limit: int) -> list[dict[str, Any]]:
        """Durable results with seq > after_seq, in seq order, at most limit.
        Thread-safe and does disk I/O: call it through asyncio.to_thread."""
        out: list[dict[str, Any]] = []
        with self._lock:
            segments = list(self._segments)
            cache = self._read_cache
        if not segments or limit <= 0:
            return out
        start, offset = 0, 0
        if cache is not None and cache[2] == after_seq and any(s is cache[0] for s in segments):
            start = next(i for i, s in enumerate(segments) if s is cache[0])
            offset = cache[1]
        else:
            start = max(0, bisect_right([s.name_seq for s in segments], after_seq + 1) - 1)
        cursor = after_seq
        with self._files:
            cursor = self._read_from(segments, start, offset, cursor, limit, out)
        return out

    def _read_from(self, segments: list[Segment], start: int, offset: int, cursor: int,
                   limit: int, out: list[dict[str, Any]]) -> int:
        for seg in segments[start:]:
            size = seg.size
            end = offset
            for item in iter_items(seg.path, offset, size):
                end = item.end
                if isinstance(item, Frame) and item.seq > cursor:
                    out.append(decode_record(item.seq, item.payload))
                    cursor = item.seq
                    if len(out) >= limit:
                        break
            if len(out) >= limit or seg is segments[-1]:
                with self._lock:
                    self._read_cache = (seg, max(end, offset), cursor)
                break
            offset = 0
        return cursor

    @property
    def acked_seq(self) -> int:
        return self._acked

    @property
    def last_seq(self) -> int:
        return self._w.next_seq - 1

    def trim(self, upto_seq: int) -> None:
        """Central has stored everything up to upto_seq: remember that, and
        delete whole segments holding nothing newer. Call via to_thread."""
        upto = min(upto_seq, self.last_seq)
        if upto > self._acked:
            self._acked = upto
            try:
                write_small_file(self.directory / ACKED_FILE, str(upto), durable=False)
            except OSError as exc:  # only costs re-sending after a restart
                log.warning("spool %s: could not save acked seq: %r", self.directory, exc)
        if self._maint.acquire(blocking=False):  # else compaction trims when done
            try:
                self._delete_acked()
            finally:
                self._maint.release()

    def _delete_acked(self) -> None:
        with self._lock:
            victims = [s for s in self._segments[:-1] if s.last is None or s.last <= self._acked]
        if not victims:
            return
        self._save_last_seq()  # the seq must go on even if no segment is left
        with self._files:
            with self._lock:
                for seg in victims:
                    self._segments.remove(seg)
            for seg in victims:
                seg.path.unlink(missing_ok=True)

    def _save_last_seq(self) -> None:
        try:
            write_small_file(self.directory / LAST_SEQ_FILE, str(self.last_seq), durable=True)
        except OSError as exc:
            log.warning("spool %s: could not save last seq: %r", self.directory, exc)

    # -- size bound --------------------------------------------------------

    async def _maybe_compact(self) -> None:
        total = self._bytes()
        if total <= self.max_bytes or self._compactor is not None:
            return
        if total - self._compacted_size < self.max_bytes // 4:
            return  # compaction cannot shrink it further yet; don't loop on it
        log.error("spool %s is over its size bound: %d bytes > max %d, %d unacknowledged results; "
                  "compacting to the newest result per check (older history is dropped)",
                  self.directory, total, self.max_bytes, self._pending_count())
        try:
            await asyncio.to_thread(self._w.seal)  # compaction only sees sealed files
        except OSError as exc:
            log.error("spool %s: cannot start compaction: %r", self.directory, exc)
            return
        self._compactor = asyncio.create_task(self._compact(), name="spool-compact")

    async def _compact(self) -> None:
        try:
            await asyncio.to_thread(self._compact_sync)
        except Exception as exc:  # keep spooling even if compaction fails
            log.error("spool %s: compaction failed: %r", self.directory, exc)
        finally:
            self._compactor = None

    def _compact_sync(self) -> None:
        with self._maint:
            with self._lock:
                sealed = list(self._segments[:-1])
            self._save_last_seq()
            result = build(self.directory, sealed, self._acked)
            with self._files:
                install(self.directory, sealed, result)
                with self._lock:
                    keep = [result.segment] if result.segment is not None else []
                    self._segments[:] = keep + [s for s in self._segments if s not in sealed]
            self._compacted_size = self._bytes()
            log.warning("spool %s compacted: %d -> %d results, %d -> %d bytes",
                      self.directory, result.records_before, result.records_after,
                      result.bytes_before, self._compacted_size)
            self._delete_acked()

    # -- figures -----------------------------------------------------------

    def _bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    def _pending_count(self) -> int:
        with self._lock:
            return sum(s.pending_after(self._acked) for s in self._segments)

    @property
    def backlog(self) -> int:
        return self._pending_count()

    def stats(self) -> dict[str, int]:
        return {"bytes": self._bytes(), "records_pending": self._pending_count(),
                "last_seq": self.last_seq, "acked_seq": self._acked, "segments": len(self._segments)}


FORMAT_FILE = "format"
FORMAT = 1                      # frames with magic CKr1 (checkd/spool_format.py)


class SpoolFormatError(SpoolError):
    """A spool written by a newer checkd: refuse rather than misread it."""


def check_format(directory: Path) -> None:
    """The spool's format version: written on first use, a newer one refused (a downgrade)."""
    path = directory / FORMAT_FILE
    try:
        found = int(path.read_text().strip())
    except FileNotFoundError:
        path.write_text(f"{FORMAT}\n")
        return
    except ValueError:
        raise SpoolFormatError(f"{path}: not a spool format number; this file says which checkd wrote "
                               f"the spool (this one writes format {FORMAT})") from None
    if found > FORMAT:
        raise SpoolFormatError(
            f"spool {directory} has format {found}, written by a newer checkd; this one reads format "
            f"{FORMAT}. Install the newer checkd again (its results are still in the spool), or move the "
            f"spool away to start empty.")
