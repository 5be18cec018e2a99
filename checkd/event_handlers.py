"""Event handlers: commands run on a check's SOFT and HARD state changes, as in Nagios.

The scheduler hands over each result whose transition runs handlers; here the node's
global handler and the object's own are chosen, expanded with the new state's macros and
run one after the other per check, in the node's exec workers like plugins. Each run is
logged; a handler that fails or hangs never holds up a check or an alert.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable

from checkd.config.macros import split_call
from checkd.config.model import CheckSpec, Host, Objects, Service
from checkd.config.node import NodeConfig
from checkd.plugin_output import RawRun
from checkd.result import CheckKey, CheckResult
from checkd.run.prepare import PreparedCheck, prepare_call, state_macros
from checkd.run.runner import Runner
from checkd.states import state_name
from checkd.transitions import CheckState

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0          # Nagios' event_handler_timeout
MAX_WAITING = 8                 # runs of one check queued behind a slow handler; the oldest go first
LOGGED_OUTPUT = 300             # characters of a handler's output in its log line


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerRun:
    """One handler to run for one result, its command line already expanded."""

    command: str                # the command's name, for the log
    what: str                   # "db1.ladc1/Replication (CRITICAL SOFT 1)"
    check: PreparedCheck


class EventHandlers:
    def __init__(self, runner: Runner, node: Callable[[], NodeConfig]):
        """`node`: the node configuration in force (a reload replaces it): the switch, the
        timeout and the global handlers are read from it at each result."""
        self.runner, self.node = runner, node
        self._waiting: dict[CheckKey, collections.deque[HandlerRun]] = {}
        self._tasks: dict[CheckKey, asyncio.Task[None]] = {}     # strong references, one per check at most

    def on_result(self, objs: Objects, host: Host, service: Service | None, result: CheckResult,
                  host_state: CheckState | None) -> None:
        """A result whose state change runs handlers (Transition.runs_handlers). `host_state`:
        the host check's state, for a service handler's $HOSTSTATE$ (None: no host check, UP)."""
        try:
            runs = self._runs(objs, host, service, result, host_state)
        except Exception:  # a bug here must not cost the scheduler its check
            log.exception("event handlers for %s/%s not run", result.host, result.service)
            return
        if not runs:
            return
        key = result.key
        waiting = self._waiting.setdefault(key, collections.deque())
        waiting.extend(runs)
        while len(waiting) > MAX_WAITING:
            dropped = waiting.popleft()
            log.warning("event handler %s for %s not run: %d runs of that check wait behind a slow handler",
                        dropped.command, dropped.what, MAX_WAITING)
        if key not in self._tasks:
            self._tasks[key] = asyncio.get_running_loop().create_task(self._drain(key), name=f"handlers {key}")

    def _runs(self, objs: Objects, host: Host, service: Service | None, result: CheckResult,
              host_state: CheckState | None) -> list[HandlerRun]:
        """Nagios' order: the global handler, then the object's; none when either switch is off."""
        settings = self.node().section("event_handlers")
        obj = service or host
        if not settings.get("enabled", True) or not obj.event_handler_enabled:
            return []
        specs: list[CheckSpec] = []
        call = settings.get("global_service" if service is not None else "global_host")
        if call:
            name, args = split_call(call)
            specs.append(CheckSpec(objs.commands[name], args))      # load_node checked the name
        if obj.event_handler is not None:
            specs.append(obj.event_handler)
        if not specs:
            return []
        macros = _macros(result, host, host_state)
        state = f"{state_name(result.service, result.status)} {result.state_type.value} {result.attempt}"
        what = f"{result.host}/{result.service} ({state})" if service else f"{result.host} ({state})"
        timeout = float(settings.get("timeout", DEFAULT_TIMEOUT))
        return [HandlerRun(spec.command.name, what,
                           prepare_call(objs, host, service, spec, timeout, self.node().ssh, macros))
                for spec in specs]

    async def _drain(self, key: CheckKey) -> None:
        """Runs the handlers of one check one after the other (Nagios runs them serially)."""
        try:
            while waiting := self._waiting.get(key):
                await self._run(waiting.popleft())
        finally:
            self._tasks.pop(key, None)
            if not self._waiting.get(key):
                self._waiting.pop(key, None)

    async def _run(self, run: HandlerRun) -> None:
        started = time.monotonic()
        try:
            raw = await self.runner.run_handler(run.check)
        except Exception as e:
            log.exception("event handler %s for %s failed inside checkd", run.command, run.what)
            raw = RawRun(error=f"{type(e).__name__}: {e}")
        level, outcome = _outcome(raw, time.monotonic() - started)
        log.log(level, "event handler %s for %s: %s%s", run.command, run.what, outcome, _shown(raw))

    async def stop(self, timeout: float = 5.0) -> None:
        """Let running handlers end within `timeout`, then cancel them; nothing waiting runs."""
        self._waiting.clear()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            log.warning("event handler still running at stop: %s", task.get_name())
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _macros(result: CheckResult, host: Host, host_state: CheckState | None) -> dict[str, str]:
    """The state the result brought; for a service, its host's too (UP when it has no check)."""
    own = state_macros("SERVICE" if result.service is not None else "HOST", result.status, result.state_type,
                       result.attempt, result.max_attempts, result.output, result.finished,
                       result.long_output, result.perfdata)
    if result.service is None:
        return own
    h = host_state or CheckState()
    return {**state_macros("HOST", h.status, h.state_type, h.attempt, host.schedule.max_attempts, h.output,
                           h.last_check), **own}


def _outcome(raw: RawRun, took: float) -> tuple[int, str]:
    """The log level and what happened: INFO for exit 0 only."""
    if raw.error is not None:
        return logging.WARNING, f"not run: {raw.error}"
    if raw.timed_out:
        return logging.WARNING, f"timed out after {raw.timeout:g}s; its process group was killed"
    if raw.signal is not None:
        return logging.WARNING, f"killed by signal {raw.signal} after {took:.2f}s"
    return (logging.INFO if raw.exit_code == 0 else logging.WARNING), f"exit {raw.exit_code} in {took:.2f}s"


def _shown(raw: RawRun) -> str:
    """The handler's output for its log line: stdout, else stderr, on one line, cut short."""
    text = (raw.stdout.strip() or raw.stderr.strip()).decode("utf-8", errors="replace")
    text = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    if len(text) > LOGGED_OUTPUT:
        text = text[:LOGGED_OUTPUT] + "..."
    return f": {text}" if text else ""
