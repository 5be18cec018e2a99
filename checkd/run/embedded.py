"""Embedded runner: checkd's Python plugins run inside the poller, no new interpreter.

plugins/NAME.py is imported once (again when the file changes) and its
`check(args)` called: async checks as tasks on the loop, sync checks in a fresh
thread each. Whatever the plugin does, the caller gets a RawRun byte-identical
to running the plugin as a script, and the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from checkd.plugin_output import RawRun
from checkd.pluginapi import Outcome, call, checked, failure, format_output
from checkd.run.plugin_thread import PluginThread

log = logging.getLogger(__name__)

# CPython hands the GIL over every 5 ms by default. Fifty sync plugins starting at
# once while two others spin on the CPU then hold the event loop off for up to a
# second (a GIL convoy: the loop waits its 5 ms turn behind every runnable thread).
# A 1 ms interval keeps the loop's wait far under 100 ms in the same burst; the cost
# is a little more switching, only while plugin threads run.
SWITCH_INTERVAL = 0.001

_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclasses.dataclass(frozen=True, slots=True)
class _Loaded:
    """One import of a plugin file: its check function, or why there is none."""

    path: Path
    stamp: tuple[int, int]                      # (mtime_ns, size): changes mean reload
    check: Callable[[list[str]], Any] | None = None
    error: BaseException | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.check)


class EmbeddedRunner:
    """Runs plugins from `plugin_dirs` (first match wins) in-process."""

    def __init__(self, plugin_dirs: Sequence[Path], *, leak_grace: float = 1.0) -> None:
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self._dirs = [Path(d) for d in plugin_dirs]
        self._leak_grace = leak_grace       # how long a timed-out thread may take to die
        self._modules: dict[str, _Loaded] = {}
        self._loading: dict[str, tuple[tuple[int, int], asyncio.Task[_Loaded | None]]] = {}
        self._abandoned: set[PluginThread] = set()
        self._live: set[PluginThread] = set()   # every plugin thread still running
        # Strong references: timed-out async checks still unwinding their cancellation.
        self._cancelled: set[asyncio.Task[Outcome]] = set()

    @property
    def leaked_threads(self) -> int:
        """Threads of timed-out plugins that did not stop and are still running."""
        self._abandoned = {t for t in self._abandoned if t.alive}
        return len(self._abandoned)

    @property
    def running_threads(self) -> int:
        """Plugin threads still running: checks in progress plus leaked ones."""
        return len(self._live)

    async def run(self, plugin: str, args: list[str], timeout: float) -> RawRun:
        if not _NAME_RE.match(plugin):  # the name becomes a path: never let it hold '/' or '..'
            return RawRun(error=f"invalid plugin name {plugin!r}")
        path = next((p for d in self._dirs if (p := d / f"{plugin}.py").is_file()), None)
        if path is None:
            return RawRun(error=f"no plugin {plugin} in {', '.join(map(str, self._dirs))}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            loaded = await self._module(plugin, path, timeout)
        except OSError as e:  # removed or unreadable between the lookup and the stat
            return RawRun(error=f"cannot read plugin {plugin}: {e.strerror}")
        if loaded is None:
            return RawRun(timed_out=True, timeout=timeout)
        if loaded.check is None:
            return _raw(failure(plugin, loaded.error or RuntimeError("not loaded")))
        remaining = max(0.0, deadline - loop.time())
        if loaded.is_async:
            outcome = await self._run_async(plugin, loaded.check, list(args), remaining)
        else:
            outcome = await self._run_sync(plugin, loaded.check, list(args), remaining)
        return RawRun(timed_out=True, timeout=timeout) if outcome is None else _raw(outcome)

    async def _run_sync(self, plugin: str, check: Callable[[list[str]], Any], args: list[str],
                        timeout: float) -> Outcome | None:
        # pluginapi.call is exactly what script mode runs, so both give the same Outcome.
        settled = await self._in_thread(plugin, lambda: call(check, args, plugin), timeout)
        if settled is None:
            return None
        ok, value = settled
        return value if ok else failure(plugin, value)

    async def _run_async(self, plugin: str, check: Callable[[list[str]], Any], args: list[str],
                         timeout: float) -> Outcome | None:
        task = asyncio.get_running_loop().create_task(_guarded(plugin, check, args),
                                                      name=f"checkd-plugin-{plugin}")
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            # Don't wait for the cancellation to finish: a plugin may ignore it.
            task.cancel()
            self._cancelled.add(task)
            task.add_done_callback(self._cancelled.discard)
            return None
        if task.cancelled():
            return failure(plugin, asyncio.CancelledError("plugin cancelled itself"))
        return task.result()

    async def _in_thread(self, plugin: str, fn: Callable[[], Any], timeout: float) -> Any:
        """fn's (ok, value) from a thread of its own; None when it ran out of time."""
        thread = PluginThread(fn, self._live)
        future = thread.start()
        try:
            done, _ = await asyncio.wait({future}, timeout=timeout)
        except asyncio.CancelledError:
            thread.interrupt()
            raise
        if done:
            return future.result()
        thread.interrupt()
        asyncio.get_running_loop().call_later(self._leak_grace, self._note_leak, thread, plugin)
        return None

    def _note_leak(self, thread: PluginThread, plugin: str) -> None:
        if thread.alive:
            self._abandoned.add(thread)
            log.warning("plugin %s still running after its timeout (blocked outside Python?); "
                        "thread abandoned, %d leaked", plugin, self.leaked_threads)

    async def _module(self, plugin: str, path: Path, timeout: float) -> _Loaded | None:
        """The plugin's current import, loading it (once for all callers) when changed."""
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._modules.get(plugin)
        if cached is not None and cached.stamp == stamp and cached.path == path:
            return cached
        pending = self._loading.get(plugin)
        if pending is None or pending[0] != stamp:
            task = asyncio.get_running_loop().create_task(self._load(plugin, path, stamp, timeout))
            self._loading[plugin] = pending = (stamp, task)
        done, _ = await asyncio.wait({pending[1]}, timeout=timeout)
        return pending[1].result() if done else None

    async def _load(self, plugin: str, path: Path, stamp: tuple[int, int],
                    timeout: float) -> _Loaded | None:
        # Module code is plugin code too: it may hang or fail, so it runs in a thread.
        try:
            settled = await self._in_thread(plugin, lambda: _import(plugin, path), timeout)
        finally:
            if self._loading.get(plugin, (None,))[0] == stamp:
                del self._loading[plugin]
        if settled is None:
            return None  # not cached: the next run tries again
        ok, value = settled
        loaded = _Loaded(path, stamp, check=value) if ok else _Loaded(path, stamp, error=value)
        self._modules[plugin] = loaded
        return loaded


def _import(plugin: str, path: Path) -> Callable[[list[str]], Any]:
    name = f"checkd_plugin_{plugin}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered while it executes, as a normal import would (dataclasses need it).
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    check = getattr(module, "check", None)
    if not callable(check):
        raise AttributeError(f"{os.path.basename(path)} defines no check(args) function")
    return check


async def _guarded(plugin: str, check: Callable[[list[str]], Any], args: list[str]) -> Outcome:
    try:
        return checked(await check(args), plugin)
    except asyncio.CancelledError:
        raise
    # Every other BaseException too: SystemExit or KeyboardInterrupt escaping a
    # task would be re-raised by the event loop and stop the poller.
    except BaseException as e:
        return failure(plugin, e)


def _raw(outcome: Outcome) -> RawRun:
    return RawRun(exit_code=int(outcome.status), stdout=format_output(outcome).encode())
