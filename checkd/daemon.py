"""What makes checkd a well-behaved daemon under systemd: the sd_notify protocol
(READY=1, STATUS=..., WATCHDOG=1, RELOADING=1) and a watch on its own event loop.

WATCHDOG=1 is sent from the event loop itself, so a loop that is stuck (a
blocking call, a busy loop) stops the pings and systemd restarts the daemon
after WatchdogSec. Before that, a thread notices the loop has not run for a
while and logs where it is stuck (the main thread's stack), so the restart
comes with its reason in the journal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable

log = logging.getLogger(__name__)

BLOCKED_AFTER = 5.0             # seconds without a loop turn before it is reported


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
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

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
                          "so. Stuck in:\n%s", stalled, where)
            elif stalled < self.blocked_after and reported:
                reported = False
                log.warning("event loop running again")
