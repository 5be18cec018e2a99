"""One synchronous plugin call in a daemon thread of its own, with a way to stop it.

The embedded runner gives every sync call a fresh thread, so a hung plugin ties
up only that thread. When the caller gives up, `interrupt()` injects
PluginTimeout into the thread (PyThreadState_SetAsyncExc): pure-Python code dies
at its next bytecode; code blocked inside C (time.sleep, a read) dies only when
that call returns, and until then the thread is left behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Callable
from typing import Any

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int

# (True, value) when the call returned, (False, exception) when it raised.
Settled = tuple[bool, Any]


class PluginTimeout(BaseException):
    """Injected into a plugin thread whose caller stopped waiting. A BaseException,
    so a plugin's own `except Exception` does not swallow it."""


class PluginThread:
    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._finished = False   # set under _lock as the thread's last act
        self._interrupted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._future: asyncio.Future[Settled] | None = None
        self._thread = threading.Thread(target=self._main, name=f"checkd-plugin-{name}", daemon=True)

    def start(self) -> asyncio.Future[Settled]:
        """Start the call; the future settles on the running loop when it ends."""
        self._loop = asyncio.get_running_loop()
        self._future = self._loop.create_future()
        self._thread.start()
        return self._future

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def interrupt(self) -> None:
        """Ask the thread to stop by raising PluginTimeout in it (once)."""
        with self._lock:
            # Only while the thread has not finished: a dead thread's id may
            # already belong to another thread, which must not get the exception.
            if self._finished or self._interrupted or self._thread.ident is None:
                return
            self._interrupted = True
            _set_async_exc(self._thread.ident, ctypes.py_object(PluginTimeout))

    def _main(self) -> None:
        try:
            try:
                try:
                    settled: Settled = (True, self._fn())
                except BaseException as e:  # reported to the caller, never raised in the thread
                    settled = (False, e)
                self._deliver(settled)
            finally:
                self._finish()
        except PluginTimeout:
            pass  # landed after the plugin returned; the caller has already moved on

    def _deliver(self, settled: Settled) -> None:
        assert self._loop is not None and self._future is not None
        try:
            self._loop.call_soon_threadsafe(_settle, self._future, settled)
        except RuntimeError:
            pass  # the loop closed while the plugin ran: nobody is waiting for the result

    def _finish(self) -> None:
        with self._lock:
            self._finished = True
            if self._interrupted and self._thread.ident is not None:
                # Drop a PluginTimeout still pending, so it cannot fire inside
                # threading's own bookkeeping after _main returns.
                _set_async_exc(self._thread.ident, ctypes.py_object())


def _settle(future: asyncio.Future[Settled], settled: Settled) -> None:
    if not future.done():
        future.set_result(settled)
