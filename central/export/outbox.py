"""One target's bounded queue and the task that empties it. Ingest only appends (never
waits); the task sends batches of up to `batch` items, oldest first, and when the
receiver is away waits (1 s doubling to a minute) and tries the same batch again. Past
`queue` items the OLDEST are dropped: after an outage the receiver still gets the newest
values (what dashboards show now), the gap is at its start, as with Telegraf's buffer.
Each drop is counted
(checkd_export_dropped_total); the log gets one line when dropping starts and one
when the receiver takes values again, never one per value.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Protocol

from central.export.items import Item
from checkd import tasks
from checkd.config.exports import ExportTarget

log = logging.getLogger(__name__)
BACKOFF_MIN, BACKOFF_MAX = 1.0, 60.0
LINGER = 0.25                   # a batch not full yet waits this long for more values (fewer, larger sends)
STOP_FLUSH = 5.0                # at shutdown, how long the queue may take to go out


class SendError(Exception):
    """A send that failed; `retry` False when the receiver refused the data itself (a
    4xx): sending it again would fail again, so the batch is dropped and counted."""

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


class ExportSender(Protocol):
    async def send(self, items: list[Item]) -> None: ...
    async def close(self) -> None: ...


class Outbox:
    def __init__(self, target: ExportTarget, sender: ExportSender, now: Callable[[], float] = time.monotonic):
        self.target, self.sender, self.now = target, sender, now
        self.items: collections.deque[Item] = collections.deque()
        self.sent = 0                   # items the receiver took
        self.dropped = 0                # items dropped: queue full, or refused by the receiver
        self.failures = 0               # sends that failed
        self.last_error = ""
        self._burst = 0                 # drops since dropping last started
        self._inflight = 0              # items of the batch being sent
        self._down_since: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Values not yet taken by the receiver, the batch being sent included."""
        return len(self.items) + self._inflight

    # --- ingest's side (on the loop, never waits) --------------------------------------

    def put(self, item: Item) -> None:
        self.items.append(item)
        self._trim()
        self._wake.set()

    def _trim(self) -> None:
        over = len(self.items) - self.target.queue
        if over <= 0:
            return
        for _ in range(over):
            self.items.popleft()
        self.dropped += over
        if self._burst == 0:
            log.error("export %s: queue full (%d values); dropping the oldest values until %s takes them again%s",
                      self.target.name, self.target.queue, self.target.type,
                      f" (last error: {self.last_error})" if self.last_error else "")
        self._burst += over

    # --- the sending task ----------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"export-{self.target.name}")

    async def _run(self) -> None:
        wait = BACKOFF_MIN
        while True:
            if not self.items:
                self._wake.clear()
                await self._wake.wait()
            if len(self.items) < self.target.batch:
                await asyncio.sleep(LINGER)
            if await self._send_one():
                wait = BACKOFF_MIN
            else:
                await asyncio.sleep(wait)
                wait = min(BACKOFF_MAX, wait * 2)

    async def _send_one(self) -> bool:
        """The oldest batch out; False when the receiver did not take it (it stays queued)."""
        batch = [self.items.popleft() for _ in range(min(self.target.batch, len(self.items)))]
        self._inflight = len(batch)
        try:
            await asyncio.wait_for(self.sender.send(batch), self.target.timeout)
        except (SendError, asyncio.TimeoutError) as e:
            self._inflight = 0
            self.failures += 1
            error = str(e) or f"no answer within {self.target.timeout:g}s"
            if isinstance(e, SendError) and not e.retry:
                return self._refused(batch, error)
            if self._down_since is None:
                self._down_since = self.now()
                log.warning("export %s: cannot send (%s); %d values queued, trying again with backoff",
                            self.target.name, error, len(self.items) + len(batch))
            self.last_error = error
            self.items.extendleft(reversed(batch))     # first out next time, unless the queue overflows
            self._trim()
            return False
        except Exception as e:          # a bug in an encoder must not stop the export for good
            self._inflight = 0
            self.failures += 1
            log.exception("export %s: cannot encode or send a batch", self.target.name)
            return self._refused(batch, f"{type(e).__name__}: {e}")
        self._inflight = 0
        self.sent += len(batch)
        if self._down_since is not None or self._burst:
            away = self.now() - self._down_since if self._down_since is not None else 0.0
            log.warning("export %s: sending again after %.0fs; %d values were dropped meanwhile",
                        self.target.name, away, self._burst)
            self._down_since, self._burst = None, 0
        return True

    def _refused(self, batch: list[Item], error: str) -> bool:
        """Values the receiver refused (sending them again would fail again): dropped, counted."""
        self.last_error = error
        self.dropped += len(batch)
        log.error("export %s: %d values refused, dropped: %s", self.target.name, len(batch), error)
        return True

    async def stop(self) -> None:
        """What is queued goes out for at most STOP_FLUSH seconds; the rest is counted dropped."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self._flushed(), STOP_FLUSH)
            except asyncio.TimeoutError:
                pass                    # the receiver is away: counted below
            await tasks.cancel(self._task)
            self._task = None
        if self.items:
            log.warning("export %s: %d values not sent at shutdown", self.target.name, len(self.items))
            self.dropped += len(self.items)
            self.items.clear()
        await self.sender.close()

    async def _flushed(self) -> None:
        while (self.items or self._inflight) and self._down_since is None:
            await asyncio.sleep(0.05)
