"""Worker-thread side of the spool: appends frames to the active segment.

Every batch of results is written and fdatasync'ed as a whole, or rolled
back as a whole; segments rotate when full. Only one batch runs at a time.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from checkd.spool_format import frame
from checkd.spool_segment import Segment, fsync_dir, segment_path

log = logging.getLogger("checkd.spool")


class SegmentWriter:
    def __init__(self, directory: Path, segment_bytes: int, segments: list[Segment],
                 lock: threading.Lock, next_seq: int):
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.segments = segments  # shared with the Spool; changed under lock
        self.lock = lock
        self.next_seq = next_seq  # advanced only after a durable batch
        self.fd = -1
        # After a failed rollback, garbage may follow the durable size: start
        # the next batch in a fresh segment so it never sits between records.
        self.need_rotate = False

    def write_batch(self, payloads: list[bytes]) -> int:
        """Worker thread: write and fsync a batch, all or nothing."""
        first = seq = self.next_seq
        seg = self.segments[-1]
        base_size = seg.size  # for rollback
        written: list[tuple[Segment, int, int]] = []  # (segment, first seq, new size)
        # New segments are published only with the batch: a reader that saw
        # an empty new segment before the old one's tail was counted would
        # take the tail as read and skip it.
        created: list[Segment] = []
        chunk: list[bytes] = []
        chunk_first, pos = seq, seg.size
        try:
            if self.need_rotate and pos > 0:
                seg = self.rotate(seq)
                created.append(seg)
                pos = 0
            for payload in payloads:
                data = frame(seq, payload)
                if pos > 0 and pos + len(data) > self.segment_bytes:
                    self._write_chunk(chunk)
                    written.append((seg, chunk_first, pos))
                    seg = self.rotate(seq)
                    created.append(seg)
                    chunk, chunk_first, pos = [], seq, 0
                chunk.append(data)
                pos += len(data)
                seq += 1
            self._write_chunk(chunk)
            written.append((seg, chunk_first, pos))
        except BaseException:
            if not self._rollback(base_size, created):
                # Frames of this batch may remain on disk: never give their
                # seqs out again, or a restart could find two records per seq.
                self.next_seq = first + len(payloads)
            raise
        with self.lock:
            self.segments.extend(created)
            for i, (s, s_first, size) in enumerate(written):
                s_next = written[i + 1][1] if i + 1 < len(written) else seq
                s.add(s_first, s_next - s_first)
                s.size = size
        self.next_seq = seq
        self.need_rotate = False
        return first

    def _write_chunk(self, chunk: list[bytes]) -> None:
        data = memoryview(b"".join(chunk))
        while data:
            n = os.write(self.fd, data)
            data = data[n:]
        os.fdatasync(self.fd)

    def rotate(self, seq: int) -> Segment:
        seg = self.create_segment(seq)
        fd = os.open(seg.path, os.O_WRONLY | os.O_APPEND)
        os.close(self.fd)
        self.fd = fd
        return seg

    def create_segment(self, seq: int) -> Segment:
        path = segment_path(self.directory, seq)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
        try:
            fsync_dir(self.directory)  # the name must survive a crash before its records count
        except OSError:
            path.unlink(missing_ok=True)
            raise
        return Segment(path, seq)

    def open_active(self) -> int:
        return os.open(self.segments[-1].path, os.O_WRONLY | os.O_APPEND)

    def _rollback(self, base_size: int, created: list[Segment]) -> bool:
        """Undo a failed batch: its seqs will be given out again, so no byte of
        it may stay. Truncating needs no free space."""
        try:
            if created:
                os.close(self.fd)
                for seg in created:
                    seg.path.unlink(missing_ok=True)
                self.fd = self.open_active()
            os.ftruncate(self.fd, base_size)
            return True
        except OSError as exc:
            # Leftover bytes past the durable size are skipped as garbage by
            # readers and truncated at the next open; a new segment keeps
            # them from sitting between good records.
            log.error("spool %s: could not roll back a failed write: %r", self.directory, exc)
            self.need_rotate = True
            return False

    def seal(self) -> None:
        """Start a new active segment so that all others are immutable."""
        if self.segments[-1].size > 0:
            seg = self.rotate(self.next_seq)
            with self.lock:
                self.segments.append(seg)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
