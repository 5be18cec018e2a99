"""The RRD writer: a child process of central (`python -m central.graphs.writer`).

Central hands it results as length-prefixed frames on stdin (marshal: plain tuples
between two processes of the same interpreter, never from the network). Here, off
central's event loop and its interpreter lock: perfdata is parsed, a label's file
is created on its first value (and recorded in the catalog), and values go out
every FLUSH_EVERY seconds: to rrdcached in BATCH mode when configured, otherwise
straight into the files with librrd. Counters go to stdout as JSON lines for central.
EOF on stdin: flush and exit; after central's STOP frame quietly, without it (central
was killed) with one line saying so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import marshal
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import rrdtool

from central.graphs.catalog import DERIVE, Catalog, Entry
from central.graphs.feed import FRAME, Item
from central.graphs.naming import Layout, ds_name, file_name
from central.graphs.rra import create_args, kind_of
from central.graphs.rrdcached import Rrdcached, RrdcachedError
from central.graphs.settings import RrdSettings
from checkd import perfdata
from checkd.escape import log_to_stderr

log = logging.getLogger("central.graphs.writer")

FLUSH_EVERY = 0.25              # seconds a value may wait here before it is written
FLUSH_AT = 20_000               # ... or this many values
REPORT_EVERY = 0.5              # seconds between counter lines to central
RETRY_MAX = 30.0                # longest wait before trying rrdcached again
LOG_EVERY = 10.0                # at most one line per kind of trouble this often
STOP_GRACE = 20.0               # after SIGTERM, how long to wait for central's last frames


@dataclasses.dataclass(slots=True, eq=False)
class FileState:
    path: str
    last: int                   # newest timestamp sent (0: unknown, rrdcached will judge)
    counter: bool


@dataclasses.dataclass(slots=True)
class Counters:
    received: int = 0           # results from central
    values: int = 0             # metric values read from their perfdata
    written: int = 0            # values stored (accepted by rrdcached, or written to the file)
    created: int = 0            # files created
    old: int = 0                # values not newer than the file's last one (RRD needs rising time)
    rejected: int = 0           # values rrdtool/rrdcached refused
    dropped: int = 0            # values given up while rrdcached stayed unreachable
    parse_errors: int = 0       # perfdata items that could not be read
    errors: int = 0             # files that could not be created


class Writer:
    def __init__(self, settings: RrdSettings, out: TextIO | None = None):
        self.s = settings
        self.layout = Layout(settings.dir)
        self.catalog = Catalog(self.layout)
        self.daemon = Rrdcached(settings.rrdcached) if settings.rrdcached else None
        self.out = out
        self.n = Counters()
        self.files: dict[tuple[str, str, str], FileState] = {}
        self.dirs: set[Path] = set()
        self.pending: dict[FileState, list[str]] = {}
        self.unlisted: dict[str, list[Entry]] = {}      # per host: new files, for the catalog at the next flush
        self.pending_values = 0
        self.first_pending = 0.0
        self.retry_at = 0.0
        self.retry_wait = 1.0
        self.last_error = ""
        self._logged: dict[str, float] = {}
        self.central = os.getppid()
        self.told_to_stop = False   # central's STOP frame came: its EOF is a stop, not a death

    # --- in -------------------------------------------------------------------------------

    def take(self, items: list[Item]) -> None:
        self.n.received += len(items)
        for host, service, step, finished, text in items:
            metrics, errors = perfdata.values(text)
            if errors:
                self.n.parse_errors += len(errors)
                self._log("parse", "%s/%s: perfdata skipped: %s", host, service, errors[0])
            ts = int(finished)
            for label, number, uom in metrics:
                self.n.values += 1
                f = self.files.get((host, service, label))
                if f is None:
                    f = self._open(host, service, label, uom, step, ts)
                    if f is None:
                        continue
                if ts <= f.last:
                    self.n.old += 1
                    continue
                f.last = ts
                if number is None:
                    value = "U"
                elif f.counter:
                    value = str(int(round(number)))       # DERIVE takes whole numbers only
                else:
                    value = repr(number)
                vals = self.pending.get(f)
                if vals is None:
                    vals = self.pending[f] = []
                    if not self.pending_values:
                        self.first_pending = time.monotonic()
                vals.append(f"{ts}:{value}")
                self.pending_values += 1

    def _open(self, host: str, service: str, label: str, uom: str, step: int, ts: int) -> FileState | None:
        """A label seen for the first time since start: its file, created if needed."""
        path = self.layout.path(host, file_name(service, label))
        try:
            known = self.catalog.labels(host, service).get(label)
            name = known.file if known else path.name
            path = self.layout.path(host, name)
            kind = known.kind if known else kind_of(uom)
            last = 0
            if path.exists():
                if self.daemon is None:
                    last = rrdtool.last(str(path))   # rrdcached knows better: it refuses what is old
            else:
                if path.parent not in self.dirs:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    self.dirs.add(path.parent)
                rrdtool.create(str(path), "--start", str(ts - 1), "--no-overwrite",
                               *create_args(step, kind, ds_name(label), self.s))
                self.n.created += 1
                last = ts - 1
            if known is None or known.uom != uom:
                self.unlisted.setdefault(host, []).append(
                    Entry(service, label, name, ds_name(label), uom, kind, known.step if known else step,
                          known.created if known else time.time()))
        except (OSError, rrdtool.OperationalError) as e:
            self.n.errors += 1
            why = str(e) or _no_reason(path)
            self.last_error = f"{path}: {why}"
            self._log("create", "cannot create %s (%s/%s %r): %s; its values are not stored until it can be",
                      path, host, service, label, why)
            return None
        f = self.files[(host, service, label)] = FileState(str(path), last, kind == DERIVE)
        return f

    # --- out ------------------------------------------------------------------------------

    def due(self, now: float) -> float | None:
        """Seconds until the next flush (None: nothing pending)."""
        if not self.pending_values:
            return 0.0 if self.unlisted else None
        if self.pending_values >= FLUSH_AT:
            return max(0.0, self.retry_at - now)
        return max(0.0, self.first_pending + FLUSH_EVERY - now, self.retry_at - now)

    def flush(self) -> None:
        for host, entries in self.unlisted.items():
            try:
                self.catalog.add(host, entries)
            except OSError as e:
                self.n.errors += 1
                self.last_error = f"catalog of {host}: {e}"
                self._log("catalog", "cannot record the metrics of %s: %s", host, e)
        self.unlisted.clear()
        if not self.pending:
            return
        pending, count = self.pending, self.pending_values
        if self.daemon is not None:
            try:
                self._to_daemon(pending, count)
            except RrdcachedError as e:
                self._unreachable(e, count)
                return
        else:
            self._to_files(pending)
        self.pending, self.pending_values = {}, 0
        self.retry_wait = 1.0

    def _to_daemon(self, pending: dict[FileState, list[str]], count: int) -> None:
        files = list(pending)
        errors = self.daemon.batch([f"UPDATE {f.path} {' '.join(pending[f])}" for f in files])  # type: ignore[union-attr]
        bad = 0
        for num, message in errors:
            if 1 <= num <= len(files):
                bad += len(pending[files[num - 1]])     # rrdcached stops at a command's first bad value
            self.last_error = message
        if errors:
            self.n.rejected += bad
            self._log("rejected", "rrdcached refused %d update(s), first: %s", len(errors), errors[0][1])
        self.n.written += count - bad

    def _to_files(self, pending: dict[FileState, list[str]]) -> None:
        for f, vals in pending.items():
            try:
                rrdtool.update(f.path, *vals)
                self.n.written += len(vals)
            except rrdtool.OperationalError as e:
                self.n.rejected += len(vals)
                self.last_error = str(e)
                self._log("rejected", "update refused: %s", e)

    def _unreachable(self, e: RrdcachedError, count: int) -> None:
        """Keep the values and try again later; past the queue bound, give them up (counted)."""
        self.last_error = str(e)
        self.retry_at = time.monotonic() + self.retry_wait
        self.retry_wait = min(RETRY_MAX, self.retry_wait * 2)
        if count > self.s.queue:
            self.n.dropped += count
            self.pending, self.pending_values = {}, 0
            log.error("%s: gave up %d value(s) waiting for it (over the queue bound of %d)", e, count,
                      self.s.queue)
        else:
            self._log("unreachable", "%s: %d value(s) kept, trying again in %.0fs", e, count,
                      self.retry_at - time.monotonic())

    def _log(self, kind: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._logged.get(kind, -LOG_EVERY) >= LOG_EVERY:
            self._logged[kind] = now
            log.warning(msg, *args)

    def report(self) -> None:
        if self.out is None:
            return
        try:
            self.out.write(json.dumps({**dataclasses.asdict(self.n), "pending": self.pending_values,
                                       "files": len(self.files), "last_error": self.last_error}) + "\n")
            self.out.flush()
        except BrokenPipeError:
            # Central is gone; what is still in stdin is stored all the same (run() reads to EOF).
            # The unflushed line would fail again at exit, with a traceback: point stdout at
            # /dev/null (Python's own advice for EPIPE, in the signal module's docs).
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.out.fileno())
            self.out = None

    # --- the loop -------------------------------------------------------------------------

    def run(self, fd: int, stop_by: list[float]) -> None:
        """Until EOF, or past the deadline a signal set in `stop_by`."""
        buf = bytearray()
        next_report = 0.0
        eof = False
        while not eof and not (stop_by and time.monotonic() > stop_by[0]):
            now = time.monotonic()
            wait = self.due(now)
            timeout = REPORT_EVERY if wait is None else min(wait, REPORT_EVERY)
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
            except InterruptedError:
                ready = []
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    eof = True
                buf += chunk
                while len(buf) >= FRAME.size:
                    (size,) = FRAME.unpack_from(buf)
                    if len(buf) < FRAME.size + size:
                        break
                    if size == 0:
                        self.told_to_stop = True
                    else:
                        self.take(marshal.loads(bytes(buf[FRAME.size:FRAME.size + size])))
                    del buf[:FRAME.size + size]
            now = time.monotonic()
            wait = self.due(now)
            if wait is not None and wait <= 0:
                self.flush()
            if now >= next_report:
                self.report()
                next_report = now + REPORT_EVERY
        self.flush()
        if self.pending_values and self.daemon is not None:
            log.error("stopping with %d value(s) rrdcached never took: %s", self.pending_values, self.last_error)
            self.n.dropped += self.pending_values
        self.report()
        if self.daemon is not None:
            self.daemon.close()
        if not eof:
            log.warning("stopping: a signal came %.0fs ago and central has not closed the feed since",
                        STOP_GRACE)
        elif not self.told_to_stop:
            log.warning("central (pid %d) went away without stopping the feed (killed?): stored what it "
                        "had sent (%d value(s) since start), exiting", self.central, self.n.written)


def _no_reason(path: Path) -> str:
    """rrdtool create says nothing when the disk is full: say what the file system has left."""
    try:
        st = os.statvfs(next(p for p in (path.parent, *path.parents) if p.exists()))
    except (OSError, StopIteration):
        return "rrdtool gave no reason"
    return (f"rrdtool gave no reason; the file system has {st.f_bavail * st.f_frsize // 1024} KiB "
            f"and {st.f_favail} inodes free (full?)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="checkd's RRD writer (started by central)")
    ap.add_argument("--settings", required=True, help="RrdSettings as JSON")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    log_to_stderr(args.log_level)
    # SIGTERM/SIGINT reach the whole process group (systemd, a terminal): central is then
    # stopping too and sends what it still holds before closing stdin; wait for that a while.
    stop_by: list[float] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_by.append(time.monotonic() + STOP_GRACE) if not stop_by else None)
    settings = RrdSettings.from_json(args.settings)
    # No mkdir of settings.dir here: each new file makes its directories, so an rrd dir that
    # cannot be made (yet) costs the values of those files (counted, logged), not the writer.
    Writer(settings, sys.stdout).run(sys.stdin.buffer.fileno(), stop_by)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
