"""One synchronous plugin call in a thread of its own, with a way to stop it.

The embedded runner gives every sync call a fresh thread, so a hung plugin ties
up only that thread. When the caller gives up, `interrupt()` injects
PluginTimeout into the thread (PyThreadState_SetAsyncExc): pure-Python code dies
at its next bytecode; code blocked inside C (time.sleep, a read) dies only when
that call returns, and until then the thread is left behind.
"""

from __future__ import annotations

import _thread
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
    """A plugin call on a raw _thread: unlike threading.Thread.start(), starting one
    does not wait for the new thread to run, which can take many GIL switch
    intervals while other plugin threads spin, and would stall the event loop."""

    def __init__(self, fn: Callable[[], Any], live: set[PluginThread] | None = None) -> None:
        self._fn = fn
        self._live = live if live is not None else set()   # holds this thread while it runs
        self._lock = threading.Lock()
        self._ident: int | None = None
        self._finished = False   # set under _lock as the thread's last act
        self._interrupted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._future: asyncio.Future[Settled] | None = None

    def start(self) -> asyncio.Future[Settled]:
        """Start the call; the future settles on the running loop when it ends."""
        self._loop = asyncio.get_running_loop()
        self._future = self._loop.create_future()
        self._live.add(self)
        _thread.start_new_thread(self._main, ())  # like a daemon thread: never delays exit
        return self._future

    @property
    def alive(self) -> bool:
        return not self._finished

    def interrupt(self) -> None:
        """Ask the thread to stop by raising PluginTimeout in it (once)."""
        with self._lock:
            # Only while the thread has not finished: a dead thread's id may
            # already belong to another thread, which must not get the exception.
            if self._finished or self._interrupted:
                return
            self._interrupted = True
            if self._ident is not None:  # not yet running: _main sees the flag instead
                _set_async_exc(self._ident, ctypes.py_object(PluginTimeout))

    def _main(self) -> None:
        try:
            try:
                with self._lock:
                    self._ident = threading.get_ident()
                    if self._interrupted:
                        raise PluginTimeout
                try:
                    settled: Settled = (True, self._fn())
                except BaseException as e:  # reported to the caller, never raised in the thread
                    settled = (False, e)
                self._deliver(settled)
            finally:
                self._finish()
        except PluginTimeout:
            pass  # the caller gave up before or after the plugin ran; nobody waits

    def _deliver(self, settled: Settled) -> None:
        assert self._loop is not None and self._future is not None
        try:
            self._loop.call_soon_threadsafe(_settle, self._future, settled)
        except RuntimeError:
            pass  # the loop closed while the plugin ran: nobody is waiting for the result

    def _finish(self) -> None:
        with self._lock:
            self._finished = True
            self._live.discard(self)
            if self._interrupted and self._ident is not None:
                # Drop a PluginTimeout still pending, so it cannot fire after
                # _main returns, outside any handler.
                _set_async_exc(self._ident, ctypes.py_object())


def _settle(future: asyncio.Future[Settled], settled: Settled) -> None:
    if not future.done():
        future.set_result(settled)
