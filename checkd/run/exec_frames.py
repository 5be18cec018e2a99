"""The wire format between the poller and its workers: small binary frames.

A job is (id, kind, timeout, argv) - kind EXEC runs argv as a process,
EMBEDDED runs the Python plugin argv[0] with argv[1:], HANDLER runs argv as an
event handler (what it starts may go on running); a result is
(id, RawRun). Binary with length prefixes because plugin output is arbitrary
bytes; no pickle on any wire.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable, Iterator, Sequence

from checkd.plugin_output import RawRun

_LEN = struct.Struct("<I")
_JOB = struct.Struct("<QBd")                # id, kind, timeout
EXEC, EMBEDDED, HANDLER = 0, 1, 2
_RESULT = struct.Struct("<QiiBIId")         # id, exit_code, signal, flags, len(stdout), len(stderr), ended
_TIMED_OUT, _TRUNCATED, _ERROR = 1, 2, 4


def job_frame(job_id: int, timeout: float, argv: Sequence[str], kind: int = EXEC) -> bytes:
    body = _JOB.pack(job_id, kind, timeout) + b"\0".join(a.encode("utf-8", "surrogateescape") for a in argv)
    return _LEN.pack(len(body)) + body


def parse_job(body: bytes) -> tuple[int, int, float, list[str]]:
    job_id, kind, timeout = _JOB.unpack_from(body)
    argv = [a.decode("utf-8", "surrogateescape") for a in body[_JOB.size:].split(b"\0")]
    return job_id, kind, timeout, argv


def result_frame(job_id: int, raw: RawRun, ended: float = 0.0) -> bytes:
    """`ended`: when the run ended (wall clock), so a result read late keeps its own time."""
    flags = (_TIMED_OUT if raw.timed_out else 0) | (_TRUNCATED if raw.truncated else 0) | \
        (_ERROR if raw.error is not None else 0)
    err = raw.error.encode() if raw.error is not None else raw.stderr
    # The timeout travels in the exit code slot when timed out (ms), so the text can say it.
    code = int(raw.timeout * 1000) if raw.timed_out else (-1 if raw.exit_code is None else raw.exit_code)
    head = _RESULT.pack(job_id, code, -1 if raw.signal is None else raw.signal, flags, len(raw.stdout), len(err),
                        ended)
    body = head + raw.stdout + err
    return _LEN.pack(len(body)) + body


def parse_result(body: bytes) -> tuple[int, RawRun]:
    job_id, code, sig, flags, n_out, n_err, ended = _RESULT.unpack_from(body)
    start = _RESULT.size
    out, err = body[start:start + n_out], body[start + n_out:start + n_out + n_err]
    if flags & _ERROR:
        return job_id, RawRun(error=err.decode(errors="replace"), ended=ended)
    if flags & _TIMED_OUT:
        return job_id, RawRun(timed_out=True, timeout=code / 1000, stdout=out, ended=ended)
    return job_id, RawRun(exit_code=None if code < 0 else code, signal=None if sig < 0 else sig,
                          stdout=out, stderr=err, truncated=bool(flags & _TRUNCATED), ended=ended)


class FrameReader:
    """Splits a byte stream into frame bodies."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.buf += data
        while len(self.buf) >= _LEN.size:
            (n,) = _LEN.unpack_from(self.buf)
            if len(self.buf) < _LEN.size + n:
                return
            body = bytes(self.buf[_LEN.size:_LEN.size + n])
            del self.buf[:_LEN.size + n]
            yield body


class FrameWriter:
    """Frames for a non-blocking pipe: written once per loop iteration, the rest when it is
    writable. The frames of one iteration (the jobs a burst of due checks started, the
    results of plugins that ended together) leave in one write and wake the other side once:
    one write and one wake-up per frame cost more than the frame at a thousand checks/s.

    A write error other than "would block" drops the buffer and goes to `on_error`
    (the reading side notices the peer is gone); without `on_error` it is raised.
    """

    def __init__(self, fd: int, on_error: Callable[[OSError], None] | None = None):
        self.fd, self.on_error = fd, on_error
        self.buf = bytearray()
        self._soon = False          # a flush is planned for the end of this iteration
        self._waiting = False       # the pipe was full: flush when it is writable
        self.closed = False

    def send(self, frame: bytes) -> None:
        if self.closed:             # the peer is gone or being let go: nobody reads it
            return
        self.buf += frame
        if not self._soon and not self._waiting:
            self._soon = True
            asyncio.get_running_loop().call_soon(self._flush_soon)

    def close(self) -> bytes:
        """Write nothing more (the fd is about to be closed, and its number reused);
        returns what was still unwritten."""
        rest = bytes(self.buf)
        self.buf.clear()
        self._stop_waiting()
        self.closed = True
        return rest

    def _flush_soon(self) -> None:
        self._soon = False
        if self._waiting or self.closed:
            return
        self.flush()
        if self.buf:
            self._waiting = True
            asyncio.get_running_loop().add_writer(self.fd, self.flush)

    def flush(self) -> None:
        if not self.buf or self.closed:
            self._stop_waiting()
            return
        try:
            n = os.write(self.fd, self.buf)
        except BlockingIOError:
            return
        except OSError as e:
            self.buf.clear()
            self._stop_waiting()
            if self.on_error is None:
                raise
            self.on_error(e)
            return
        del self.buf[:n]
        if not self.buf:
            self._stop_waiting()

    def _stop_waiting(self) -> None:
        if self._waiting:
            self._waiting = False
            asyncio.get_running_loop().remove_writer(self.fd)
