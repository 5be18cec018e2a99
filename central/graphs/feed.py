"""Central's side of the RRD writer: results with perfdata wait in a bounded list
on the event loop (appending is all ingest pays), and one task pumps them to the
writer process as frames on its stdin. When the writer falls behind, the pipe and
then the list fill; past `queue` results new ones are dropped, counted and logged,
never lost silently. A writer that dies is restarted; what it had not reported
stored is counted as possibly lost. A stop ends with the STOP frame, so the
writer tells a stop from central dying.
"""

from __future__ import annotations

import asyncio
import json
import logging
import marshal
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any

from central.graphs.settings import RrdSettings
from checkd import tasks

log = logging.getLogger(__name__)
FRAME = struct.Struct("<I")     # each frame: its length, then marshal.dumps(list of Item)
STOP = FRAME.pack(0)            # the last frame of a stop: EOF without it means central died
Item = tuple[str, str, int, float, str]     # host, service, step, finished, perfdata
RESTART_MAX = 30.0              # longest wait before restarting a writer that died
LOG_EVERY = 10.0
STOP_TIMEOUT = 20.0             # at shutdown, how long the writer may take to store what it holds


class Feed:
    def __init__(self, settings: RrdSettings, log_level: str = "info"):
        self.settings, self.log_level = settings, log_level
        self.pending: list[Item] = []
        self.sent = 0               # results handed to a writer process
        self.dropped = 0            # results refused because the queue was full
        self.lost = 0               # results a writer took but may not have stored before it died
        self.restarts = 0
        self.writer: dict[str, Any] = {}    # the writer's latest counters (its own, since it started)
        self.writer_totals: dict[str, int] = {}     # counters of writers that exited, summed
        self.proc: asyncio.subprocess.Process | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._dropped_logged = 0.0
        self._dropped_since_log = 0

    # --- ingest's side (on the loop, never waits) ---------------------------------------

    def put(self, item: Item) -> None:
        if len(self.pending) >= self.settings.queue:
            self.dropped += 1
            self._dropped_since_log += 1
            now = time.monotonic()
            if now - self._dropped_logged >= LOG_EVERY:
                log.error("RRD writer is behind: %d result(s) waiting, %d dropped since the last report "
                          "(%d in all); their values will be missing from the graphs",
                          len(self.pending), self._dropped_since_log, self.dropped)
                self._dropped_logged, self._dropped_since_log = now, 0
            return
        self.pending.append(item)
        self._wake.set()

    # --- the writer process -------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="rrd-feed")

    async def _spawn(self) -> asyncio.subprocess.Process:
        root = str(Path(__file__).resolve().parents[2])     # so `-m central.graphs.writer` is found
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "central.graphs.writer", "--settings", self.settings.to_json(),
            "--log-level", self.log_level, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=env)

    async def _supervise(self) -> None:
        wait = 1.0
        while not self._stopping:
            started = time.monotonic()
            try:
                proc = self.proc = await self._spawn()
            except OSError as e:
                log.error("cannot start the RRD writer: %s; trying again in %.0fs", e, wait)
                await asyncio.sleep(wait)
                wait = min(RESTART_MAX, wait * 2)
                continue
            log.info("RRD writer started (pid %d): %s, files in %s", proc.pid,
                     f"through rrdcached at {self.settings.rrdcached}" if self.settings.rrdcached
                     else "writing files directly", self.settings.dir)
            self.writer = {}
            sent_before = self.sent
            stats = asyncio.create_task(self._read_counters(proc))
            self._pump_task = asyncio.create_task(self._pump(proc))
            rc = await proc.wait()
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, stats, return_exceptions=True)
            for key, value in self.writer.items():
                if isinstance(value, int):
                    self.writer_totals[key] = self.writer_totals.get(key, 0) + value
            if self._stopping:
                return
            lost = max(0, self.sent - sent_before - int(self.writer.get("received", 0)))
            self.lost += lost
            self.restarts += 1
            if time.monotonic() - started > 60:
                wait = 1.0
            log.error("RRD writer (pid %d) exited with %s; up to %d result(s) sent to it may not be stored; "
                      "restarting in %.0fs", proc.pid, rc, lost, wait)
            await asyncio.sleep(wait)
            wait = min(RESTART_MAX, wait * 2)

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._send(proc)
            try:
                await proc.stdin.drain()    # the writer is behind: new results wait in `pending`
            except ConnectionError:
                return                      # it died; _supervise sees it exit

    def _send(self, proc: asyncio.subprocess.Process) -> None:
        items, self.pending = self.pending, []
        if items and proc.stdin is not None and not proc.stdin.is_closing():
            data = marshal.dumps(items)
            proc.stdin.write(FRAME.pack(len(data)) + data)
            self.sent += len(items)

    async def _read_counters(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            try:
                self.writer = json.loads(line)
            except ValueError:
                log.warning("RRD writer said: %r", line[:200])

    async def stop(self) -> None:
        """Hand over what is queued, let the writer store it (EOF on its stdin), then go."""
        self._stopping = True
        proc = self.proc
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
        if proc is not None and proc.returncode is None and proc.stdin is not None:
            self._send(proc)
            if not proc.stdin.is_closing():
                proc.stdin.write(STOP)
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                log.error("RRD writer (pid %d) did not finish within %.0fs; killed", proc.pid, STOP_TIMEOUT)
                proc.kill()
                await proc.wait()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=1.0)
            await tasks.cancel(self._task)      # still waiting to restart a writer that died
            self._task = None

    def counters(self) -> dict[str, Any]:
        """For GET /api/v1/graphs: this side's counters and the writers' (all since central started)."""
        current = {k: v for k, v in self.writer.items() if isinstance(v, int)}
        totals = {k: self.writer_totals.get(k, 0) + current.get(k, 0)
                  for k in set(current) | set(self.writer_totals)}
        alive = self.proc is not None and self.proc.returncode is None
        return {"queued": len(self.pending), "sent": self.sent, "dropped": self.dropped, "lost": self.lost,
                "restarts": self.restarts, "writer_pid": self.proc.pid if alive and self.proc else None,
                "writer": {**totals, "pending": current.get("pending", 0), "files": current.get("files", 0),
                           "last_error": self.writer.get("last_error", "")}}
