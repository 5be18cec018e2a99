"""What makes checkd a well-behaved daemon under systemd: the sd_notify protocol
(READY=1, STATUS=..., WATCHDOG=1, RELOADING=1), a watch on its own event loop, and
`serve`, the one lifecycle both daemons (poller and central) run: start, reload on
SIGHUP, stop on SIGTERM/SIGINT or a fatal error, within a deadline.

WATCHDOG=1 is sent from the event loop itself, so a loop that is stuck (a
blocking call, a busy loop) stops the pings and systemd restarts the daemon
after WatchdogSec. Before that, a thread notices the loop has not run for a
while and logs where it is stuck (the main thread's stack), so the restart
comes with its reason in the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Protocol

from checkd import tasks

log = logging.getLogger(__name__)

BLOCKED_AFTER = 5.0             # seconds without a loop turn before it is reported
STOP_DEADLINE = 30.0            # seconds stop() may take before serve gives up on it
GC_YOUNG = 20_000               # net allocations before a young collection (CPython's default: 700)


def tune_gc() -> None:
    """Young collections every 20k allocations instead of 700. A daemon streams short-lived
    objects (a batch of 500 results, its rows and answer) that live across one await; at
    700 most of them were promoted and then died old, so full collections of the whole
    heap ran every second or so. Measured on central at 100k services (bench
    central_ingest): gc time during ingest 0.5 s -> 0.15 s, start-up 3.2-3.8 s -> 1.9-2.5 s,
    RSS 263-271 MB -> 219 MB. Called first thing, so that loading the config gains too."""
    gc.set_threshold(GC_YOUNG, 10, 10)


@contextlib.contextmanager
def loading_config() -> Iterator[None]:
    """Around the first load of the configuration: no collections while it loads, then what
    was loaded is frozen out of later ones (gc.freeze). At 100,000 services the load makes
    a million objects that all live on; the young collections during it found nothing to
    free and took 0.12-0.15 s of the poller's 1.8 s to its first check, and every full
    collection afterwards walked them all again. Not around reloads: a freeze then would
    also keep whatever garbage the running daemon had made so far."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def notify(message: str) -> bool:
    """Send one sd_notify datagram (`READY=1`, `STATUS=...`); False when not under systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]                      # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as s:
            s.connect(path)
            s.sendall(message.encode())     # never waits: a reader that does not read loses a ping
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        log.warning("sd_notify to %s failed: %s", os.environ.get("NOTIFY_SOCKET"), e)
        return False


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (WATCHDOG_USEC), when it is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None


class LoopWatch:
    """Pings systemd's watchdog from the loop; a thread reports a loop that stopped turning."""

    def __init__(self, status: Callable[[], str] | None = None, blocked_after: float = BLOCKED_AFTER,
                 status_every: float = 10.0):
        self.status = status
        self.blocked_after = blocked_after
        self.status_every = status_every
        self.last_turn = time.monotonic()
        self.blocked_reports = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._main = threading.main_thread().ident

    def start(self) -> None:
        self._task = asyncio.create_task(self._pinger(), name="loop-watch")
        self._thread = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        await tasks.cancel(self._task)

    async def _pinger(self) -> None:
        ping = watchdog_interval()
        step = min(0.5, ping) if ping else 0.5
        next_ping = next_status = 0.0
        while True:
            now = time.monotonic()
            self.last_turn = now
            if ping and now >= next_ping:
                notify("WATCHDOG=1")
                next_ping = now + ping
            if self.status is not None and now >= next_status:
                try:
                    notify(f"STATUS={self.status()}")
                except Exception:       # a status line must never stop the pings
                    log.exception("status line failed")
                next_status = now + self.status_every
            await asyncio.sleep(step)

    def _watch(self) -> None:
        reported = False
        while not self._stop.wait(0.5):
            stalled = time.monotonic() - self.last_turn
            if stalled >= self.blocked_after and not reported:
                reported = True
                self.blocked_reports += 1
                frame = sys._current_frames().get(self._main or 0)
                where = "".join(traceback.format_stack(frame)[-6:]) if frame is not None else "(no stack)"
                log.error("event loop blocked for %.1fs; systemd's watchdog restarts the daemon if it stays "
                          "so. Stuck in:", stalled, extra={"detail": where})
            elif stalled < self.blocked_after and reported:
                reported = False
                log.warning("event loop running again")


class Daemon(Protocol):
    """What `serve` runs: the poller's `Poller` and central's `Central`."""

    failed: asyncio.Event           # set on a fatal error: serve stops and returns 1

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def reload(self) -> bool: ...   # all or nothing: False leaves the running configuration

    def status_line(self) -> str: ...


async def serve(app: Daemon, stop_deadline: float = STOP_DEADLINE, *, stop_if_start_fails: bool = False) -> int:
    """Run `app` until SIGTERM/SIGINT or `app.failed`, then stop it within `stop_deadline`;
    SIGHUP reloads. Returns the exit code: 1 after a fatal error, else 0. An exception from
    start() propagates; `stop_if_start_fails` says whether stop() cleans up after it first
    (central's stop copes with a half-done start, the poller's is not meant to)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, app)
    started = False
    watch: LoopWatch | None = None
    try:
        if stop_if_start_fails:
            # A start that can wait a long time (a standby central waiting for the lease)
            # ends with SIGTERM too; stop() undoes what it did.
            if not await _started(app, stop):
                return 0
        else:
            await app.start()
        started = True
        watch = LoopWatch(status=app.status_line)
        watch.start()
        notify("READY=1")
        await _first_set(stop, app.failed)
    finally:
        if started or stop_if_start_fails:
            notify("STOPPING=1")
            if watch is not None:
                await watch.stop()
            await asyncio.wait_for(app.stop(), timeout=stop_deadline)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return 1 if app.failed.is_set() else 0


async def _started(app: Daemon, stop: asyncio.Event) -> bool:
    """app.start(), unless SIGTERM/SIGINT comes first (then the start is cancelled): whether it finished."""
    starting = asyncio.create_task(app.start(), name="start")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not starting.done():
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        return False
    starting.result()           # start's exception, if any
    return True


async def _first_set(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _reload(app: Daemon) -> None:
    # sd_notify's reload handshake: RELOADING=1 with the time, then READY=1 when done (done
    # also when the reload was refused: the old configuration goes on running).
    notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
    app.reload()
    notify("READY=1")
