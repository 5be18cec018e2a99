"""The Livestatus listeners: a unix socket (its mode and group are the access control,
as with Nagios) and optionally TCP, where only allowlisted addresses are served.

One connection: read a request up to its empty line (or EOF), answer it, close,
or with `KeepAlive: on` wait for the next (a minute at most). A client that sends nothing
for `timeout` is dropped; one silent for `timeout` mid-request,
or one sending more than `max_request` bytes, gets an error line and is dropped;
a bad request gets a clear error line (with fixed16 its status code), never a hang.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import os
import shutil
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from central.livestatus import commands, output
from central.livestatus.lql import CommandLine, LqlError, Query, answer_flags, parse
from central.livestatus.query import log_terms, plan, run
from central.livestatus.snapshot import HistoryLine, ObjectIndex, Snapshot
from central.livestatus.about import comment_row
from checkd.config.livestatus import LivestatusConfig

if TYPE_CHECKING:
    from central.live import Live
    from central.operations import Operations
    from checkd.engine.engine import Engine

log = logging.getLogger(__name__)
COMMENTS = "SELECT id, host, service, ts, author, text FROM comments ORDER BY id"
LOG = ("SELECT h.ts, h.kind, h.status, h.output, h.author, e.host, e.service, h.event_id "
       "FROM event_history h JOIN events e ON h.event_id = e.id{where} ORDER BY h.ts DESC{limit}")
MAX_LINE = 64 * 1024
WORKERS = 2                    # queries answered at once; more wait their turn (each holds its own copy)
SEND_PIECE = 256 * 1024         # bytes of an answer handed to the transport at once
KEEPALIVE_IDLE = 60.0          # seconds a kept-alive connection may wait for its next request
CHECK_TABLES = ("hosts", "services", "downtimes", "log")       # with a comments column (or host_comments)


class LivestatusError(Exception):
    """The socket or port cannot be opened (central stops with this one line)."""


class Livestatus:
    def __init__(self, conf: LivestatusConfig, live: Live, engine: Engine, operations: Operations):
        self.conf, self.live, self.engine, self.operations = conf, live, engine, operations
        self.started = time.time()
        self.counters = {"connections": 0, "requests": 0}
        self._servers: list[asyncio.AbstractServer] = []
        self._own_socket = False        # the unix socket is ours to remove at stop
        self._clients: set[asyncio.Task[None]] = set()
        self._index: ObjectIndex | None = None
        # While this central is the standby of a pair: the active one's URL ("" during a takeover).
        self.standby: Callable[[], Awaitable[str]] | None = None
        # Two at a time: a map's small query is not stuck behind someone reading every column.
        self._worker = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="livestatus")
        self._slots = asyncio.Semaphore(WORKERS)

    async def start(self) -> None:
        c = self.conf
        if c.socket is not None:
            try:
                if c.socket.exists() and stat.S_ISSOCK(c.socket.stat().st_mode):
                    if _answers(c.socket):
                        raise LivestatusError(f"livestatus: another process answers on the socket {c.socket}: "
                                              "give each central its own socket: path")
                    c.socket.unlink()       # left by a central that did not stop cleanly
                server = await asyncio.start_unix_server(lambda r, w: self._serve(r, w, "unix socket"),
                                                         str(c.socket), limit=MAX_LINE)
                self._servers.append(server)
                self._own_socket = True
                os.chmod(c.socket, c.mode)
                if c.group is not None:
                    shutil.chown(c.socket, group=c.group)
            except OSError as e:
                raise LivestatusError(f"livestatus: cannot open the socket {c.socket}: {e.strerror or e}") from None
            log.info("livestatus: unix socket %s (mode %04o%s)", c.socket, c.mode,
                     f", group {c.group}" if c.group else "")
        if c.listen is not None:
            try:
                server = await asyncio.start_server(self._tcp, c.listen[0], c.listen[1], limit=MAX_LINE)
            except OSError as e:
                raise LivestatusError(f"livestatus: cannot listen on {c.listen[0]}:{c.listen[1]}: "
                                      f"{e.strerror or e}") from None
            self._servers.append(server)
            log.info("livestatus: TCP %s:%d for %s", c.listen[0], self.tcp_port or c.listen[1],
                     ", ".join(map(str, c.allow)))

    @property
    def listening(self) -> bool:
        return bool(self._servers)

    @property
    def tcp_port(self) -> int | None:
        for s in self._servers:
            for sock in s.sockets:
                if sock.family != socket.AF_UNIX:
                    return int(sock.getsockname()[1])
        return None

    async def stop(self) -> None:
        for s in self._servers:
            s.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        for s in self._servers:
            await s.wait_closed()
        self._servers = []
        if self._own_socket:            # never the path of a central this one could not displace
            with contextlib.suppress(FileNotFoundError):
                self.conf.socket.unlink()
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        addr = ipaddress.ip_address(peer[0]) if peer else None
        if addr is None or not any(addr in net for net in self.conf.allow):
            log.warning("livestatus: refused TCP connection from %s (not in livestatus: tcp: allow)",
                        peer[0] if peer else "?")
            writer.write(f"403 livestatus: {peer[0] if peer else '?'} is not allowed to connect\n".encode())
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        await self._serve(reader, writer, f"{peer[0]}:{peer[1]}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        self.counters["connections"] += 1
        try:
            first = True
            while await self._one(reader, writer, peer, self.conf.timeout if first else KEEPALIVE_IDLE):
                first = False
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str,
                   idle: float) -> bool:
        """One request and its answer; whether to wait for another on this connection."""
        try:
            lines = await self._read(reader, idle)
        except LqlError as e:
            log.warning("livestatus: %s from %s", e, peer)
            writer.write(output.answer(e.code, f"{e}\n".encode(), True))
            await writer.drain()
            return False
        if lines is None:
            return False                # the client closed the connection
        self.counters["requests"] += 1
        fixed16, keepalive = answer_flags(lines)
        if self.standby is not None:
            active = await self.standby()
            text = "this central is the standby; the active central is " + \
                (active or "none at the moment (a takeover is under way)")
            writer.write(output.answer(503, f"{text}\n".encode(), fixed16))
            await writer.drain()
            return keepalive
        try:
            req = parse(lines)
            if isinstance(req, CommandLine):
                await commands.run(self.operations, req, peer)
                if fixed16:
                    writer.write(output.fixed16(200, 0))
            else:
                payload = await self.answer(req)
                if fixed16:
                    writer.write(output.fixed16(200, len(payload)))
                await _send(writer, payload)
        except LqlError as e:
            log.info("livestatus: refused from %s: %s (%s)", peer, e, lines[0][:200])
            writer.write(output.answer(e.code, f"{e}\n".encode(), fixed16))
        except Exception:
            log.exception("livestatus: failed to answer %r from %s", lines[0][:200], peer)
            writer.write(output.answer(500, b"internal error answering this request: see central's log\n", fixed16))
            keepalive = False
        await writer.drain()
        return keepalive

    async def _read(self, reader: asyncio.StreamReader, idle: float) -> list[str] | None:
        """The lines of one request, up to its empty line or EOF; None at EOF before any, or
        when nothing came for `idle` seconds (the connection is closed without a word)."""
        lines: list[str] = []
        size = 0
        while True:
            try:
                raw = await asyncio.wait_for(reader.readline(), self.conf.timeout if lines else idle)
            except asyncio.TimeoutError:
                if not lines:
                    log.debug("livestatus: closed a connection idle for %gs", idle)
                    return None
                raise LqlError(451, f"incomplete request: nothing for {self.conf.timeout:g}s; a request ends with "
                                    "an empty line") from None
            except (ValueError, asyncio.LimitOverrunError):
                raise LqlError(413, f"request line longer than {MAX_LINE} bytes") from None
            size += len(raw)
            if size > self.conf.max_request:
                raise LqlError(413, f"request larger than {self.conf.max_request} bytes")
            if not raw:
                return lines or None
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line:
                if lines:
                    return lines
                continue                # blank lines between keep-alive requests
            lines.append(line)

    async def answer(self, q: Query) -> bytes:
        """The body of a GET's answer, from one snapshot of central's state."""
        p = plan(q)
        table = p.table
        comments, rows = None, None
        db = self.engine.db
        comments_too = table.reads == "comments" or table.name in CHECK_TABLES and _wants_comments(q)
        if table.reads or comments_too:
            await db.write([])          # reads wait for queued writes
        if table.reads == "log":
            where, args, limit = log_terms(q)
            sql = LOG.format(where=" WHERE " + " AND ".join(where) if where else "",
                             limit=f" LIMIT {int(limit)}" if limit is not None else "")
            found = await asyncio.to_thread(db.read, sql, tuple(args))
            rows = [HistoryLine(r[0], r[1], r[2], r[3] or "", r[4] or "", r[5], r[6] or None, r[7]) for r in found]
        if comments_too:
            comments = [comment_row(r) for r in await asyncio.to_thread(db.read, COMMENTS, ())]
        if self._index is None or self._index.objs is not self.live.objs:
            self._index = ObjectIndex(self.live.objs)        # once per configuration (a reload swaps it)
        async with self._slots:         # a copy only for a query about to run: at most WORKERS of them
            snap = Snapshot(self._index, self.engine.store, self.started, dict(self.counters), comments, rows,
                            p.hosts)
            # The copy is taken; the rows are read and written in a thread of our own, so a query
            # over 100k services neither stops central nor queues behind its database reads.
            return await asyncio.get_running_loop().run_in_executor(
                self._worker, lambda: output.body(run(p, snap), q.output, q.separators))


async def _send(writer: asyncio.StreamWriter, payload: bytes) -> None:
    """An answer that may be 100 MB, a piece at a time as the client reads it: handed over
    whole, the transport would copy it into its buffer and move the rest down after every
    send, holding up the event loop for seconds."""
    view = memoryview(payload)
    for start in range(0, len(view), SEND_PIECE):
        writer.write(view[start:start + SEND_PIECE])
        await writer.drain()


def _wants_comments(q: Query) -> bool:
    names = list(q.columns) + [getattr(f, "column", "") for f in q.filters] + \
        [getattr(s, "column", "") for s in q.stats]
    return any(n.endswith(("comments", "comments_with_info")) for n in names) or not q.columns and not q.stats


def _answers(path: Path) -> bool:
    """A live listener on the path (taking it over would cut that central's clients off)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except OSError:
            return False            # refused: a socket file nobody listens on any more
        return True
