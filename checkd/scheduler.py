"""The scheduler: runs every check on time, at most N at once, and hands each
result to a sink (the spool on a poller, the store on central during takeover).

Timers are loop.call_at handles on the monotonic clock; a check that comes due
while N checks run waits in a FIFO queue, and the wait shows up as latency.
Timers honour `active`, `check_period` and execution dependencies
(docs/scheduling.md, docs/dependencies.md); forced and freshness checks are the
ways to run a check outside them. It knows nothing about pollers or central:
both use it the same way.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from checkd import dependencies as deps
from checkd.config.dependencies import label
from checkd.config.model import Host, Objects, Schedule, Service, SSHSettings
from checkd.plugin_output import MAX_TEXT_CHARS, PluginOutput, interpret
from checkd.result import CheckKey, CheckResult
from checkd.run.prepare import PreparedCheck, is_static, prepare, state_macros
from checkd.run.runner import Runner
from checkd.states import HostStatus, StateType, Status, is_retrying
from checkd.timeperiods import next_valid_time
from checkd.transitions import CheckState, Transition, advance, apply

if TYPE_CHECKING:
    from checkd.event_handlers import EventHandlers

HOST_CHECK_HORIZON = 15.0       # a host is checked on demand at most this often (Nagios' cached host check)
NEVER_RECHECK = 86400.0         # a check_period active nowhere in the next year is looked at again daily
MIN_WAIT = 0.05                 # a timer that fired a hair before its period opened waits at least this
ACTIVE = "active"               # the check_type of timer-driven runs, the only ones check_period and active gate

log = logging.getLogger(__name__)

Sink = Callable[[CheckResult], Awaitable[None]]
LATENCY_WINDOW = 20000
# First timers placed per turn of the loop at start (Scheduler.start): about 5 ms each, so the
# first results are read, spooled and sent between them (5,000 held each step 25 ms).
START_CHUNK = 1000
# Checks run at once when the scheduler starts; each finished check allows one more, up to
# max_concurrent (TCP's slow start). All 256 at once meant each exec worker made its 128
# spawns before it read the first child's exit: 0.35 s to the first result at 100,000
# services, at start only (docs/scheduling.md).
START_CONCURRENT = 16


class Scheduler:
    def __init__(self, objs: Objects, keys: Iterable[CheckKey], runner: Runner, sink: Sink, *,
                 max_concurrent: int = 256, node: str = "", default_ssh: SSHSettings = SSHSettings(),
                 states: dict[CheckKey, CheckState] | None = None, wall: Callable[[], float] = time.time,
                 handlers: EventHandlers | None = None):
        """`handlers`: where results whose state change runs event handlers go (None: nowhere)."""
        self.objs, self.runner, self.sink, self.handlers = objs, runner, sink, handlers
        self.keys = sorted(keys, key=lambda k: (k[0], k[1] or ""))
        self.max_concurrent, self.node, self.default_ssh, self.wall = max_concurrent, node, default_ssh, wall
        self._limit = min(START_CONCURRENT, max_concurrent)    # grows to max_concurrent (START_CONCURRENT)
        self.states: dict[CheckKey, CheckState] = {k: (states or {}).get(k) or CheckState() for k in self.keys}
        self._timers: dict[CheckKey, asyncio.TimerHandle] = {}
        self._ready: collections.deque[tuple[CheckKey, float, str]] = collections.deque()
        self._running: set[CheckKey] = set()
        self._inflight: set[CheckKey] = set()       # queued or running, until its next run is planned
        self._rerun: set[CheckKey] = set()
        self._once: set[CheckKey] = set()           # run_once: not scheduled again after the run
        self._host_asked: dict[str, float] = {}     # host -> when its check was last run on demand
        self._children = children_of(objs, self.keys)
        self._parked: set[CheckKey] = set()         # timer moved to where check_period opens (reload: again)
        self._told: set[tuple[CheckKey, str]] = set()   # (check, what) logged once: "never", "outside"
        self._tasks: set[asyncio.Task[None]] = set()  # strong references: tasks must not be collected
        self._prepared: dict[CheckKey, PreparedCheck] = {}
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self.checks_done = 0
        self._started = False
        self._stopping = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Spread the first run of every active check evenly over its interval (no thundering
        herd), each moved to where its check_period is next valid. The timers are placed
        START_CHUNK at a time, the first ones now and the rest in later turns of the loop: at
        100,000 checks placing them all took ~0.5 s, and the first checks, due at once, waited
        for the last timer (docs/scheduling.md)."""
        self._started = True
        now = asyncio.get_running_loop().time()
        active = [k for k in self.keys if self._schedule(k).active]
        self._place_first(active, 0, now)

    def _place_first(self, active: list[CheckKey], start: int, now: float) -> None:
        """Timers for active[start:start + START_CHUNK]; the next chunk in the next turn of the loop.
        A check that a reload removed or made passive, or that runs or has its timer already
        (forced, reloaded), is left as it is."""
        if self._stopping:
            return
        for i in range(start, min(start + START_CHUNK, len(active))):
            key = active[i]
            if key in self.states and key not in self._timers and key not in self._inflight:
                schedule = self._schedule(key)
                if schedule.active:
                    self._schedule_valid(key, now + schedule.interval * i / len(active))
        if start + START_CHUNK < len(active):
            asyncio.get_running_loop().call_soon(self._place_first, active, start + START_CHUNK, now)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop scheduling; let running checks finish (their results are kept) up to `timeout`."""
        self._stopping = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._ready.clear()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def reconfigure(self, objs: Objects, keys: Iterable[CheckKey]) -> None:
        """A reloaded configuration: new checks start (spread over their interval), removed
        ones stop, the rest keep their state and timers; intervals apply at their next run.
        A check made passive (`active: false`) loses its timer; one made active starts like
        a new one; one waiting for its check_period to open is placed again (the period or
        its definition may have changed)."""
        new = set(keys)
        old = set(self.keys)
        self.objs = objs
        self._prepared.clear()              # commands and macros may have changed
        self._told.clear()                  # what is logged once is logged once per configuration
        for key in old - new:
            self._cancel(key)
            self.states.pop(key, None)
            self._rerun.discard(key)
        self.keys = sorted(new, key=lambda k: (k[0], k[1] or ""))
        self._children = children_of(objs, self.keys)
        for key in new - old:
            self.states[key] = CheckState()
        # A queued timer run of a check that is gone or passive now does not happen.
        wanted = [r for r in self._ready if r[0] in new and (r[2] != ACTIVE or self._schedule(r[0]).active)]
        self._inflight -= {r[0] for r in self._ready} - {r[0] for r in wanted}
        self._ready = collections.deque(wanted)
        if self._stopping or not self._started:     # never started: central's freshness checks only
            return
        kept = new & old
        for key in kept:
            if not self._schedule(key).active:
                self._cancel(key)
        idle = {k for k in kept if k not in self._inflight and (k in self._parked or k not in self._timers)}
        fresh = [k for k in sorted((new - old) | idle, key=lambda k: (k[0], k[1] or ""))
                 if self._schedule(k).active]
        now = asyncio.get_running_loop().time()
        for i, key in enumerate(fresh):
            self._schedule_valid(key, now + min(self._schedule(key).interval, 60.0) * i / max(len(fresh), 1))

    def reschedule_now(self, key: CheckKey) -> bool:
        """Run `key` at once (a forced check); False when this scheduler doesn't own it."""
        if key not in self.states or self._stopping:
            return False
        if key in self._running:
            self._rerun.add(key)
            return True
        self._cancel(key)
        self._due(key, asyncio.get_running_loop().time(), "forced")
        return True

    def _check_host_now(self, host: str, now: float, failing: bool = False) -> None:
        """Check a host at once (Nagios' on-demand host check), one believed UP (`failing`:
        one believed not UP). A failing service asks for its host, so a host that went down
        is known, and notified once for the host, before its services' problems turn HARD;
        a failing host asks for its parents, a recovered one for its failing children
        (_check_neighbours)."""
        key = (host, None)
        st = self.states.get(key)
        if st is None or (st.status != 0) != failing or \
                now - self._host_asked.get(host, -HOST_CHECK_HORIZON) < HOST_CHECK_HORIZON:
            return
        # Not a forced check: as in Nagios, a passive host or one outside its check_period is not run.
        if not self._schedule(key).active or self._valid_from(key, now) != now:
            return
        self._host_asked[host] = now
        self.reschedule_now(key)

    def run_once(self, key: CheckKey, check_type: str = "freshness") -> bool:
        """Run `key` now, once, without scheduling it again (central's freshness checks), also
        when it is passive; not outside its check_period (Nagios checks no freshness there)."""
        if key not in self.states or self._stopping or key in self._running:
            return False
        now = asyncio.get_running_loop().time()
        if self._valid_from(key, now) != now:
            self._tell(key, "outside", logging.INFO, "check %s/%s not run (%s): outside its check_period %s",
                       key[0], key[1], check_type, self._schedule(key).check_period)
            return False
        self._told.discard((key, "outside"))
        self._once.add(key)
        self._due(key, now, check_type)
        return True

    def next_check(self, key: CheckKey) -> float | None:
        """When (wall clock) the timers run `key` next; None when they never will (passive)."""
        handle = self._timers.get(key)
        return None if handle is None else handle.when() + self.wall() - asyncio.get_running_loop().time()

    # --- timing ---------------------------------------------------------------------------

    def _schedule(self, key: CheckKey) -> Schedule:
        host, service = key
        return (self.objs.services[(host, service)] if service is not None else self.objs.hosts[host]).schedule

    def _schedule_at(self, key: CheckKey, when: float, check_type: str = ACTIVE) -> None:
        self._cancel(key)                   # one timer per check, whoever plans its next run
        self._timers[key] = asyncio.get_running_loop().call_at(when, self._fire, key, when, check_type)

    def _cancel(self, key: CheckKey) -> None:
        handle = self._timers.pop(key, None)
        if handle:
            handle.cancel()
        self._parked.discard(key)

    def _valid_from(self, key: CheckKey, when: float) -> float | None:
        """The first monotonic time at or after `when` inside the check's check_period
        (Nagios' get_next_valid_time); None when the period is active nowhere in a year."""
        period = self._schedule(key).check_period
        if period is None:
            return when
        wall = when + self.wall() - asyncio.get_running_loop().time()
        valid = next_valid_time(period, wall, self.objs.timeperiods)
        if valid is None:
            return None
        return when if valid <= wall else when + (valid - wall)

    def _schedule_valid(self, key: CheckKey, when: float) -> None:
        """A timer at `when`, or where the check_period next opens after it (parked there)."""
        valid = self._valid_from(key, when)
        now = asyncio.get_running_loop().time()
        if valid is None:
            self._tell(key, "never", logging.WARNING, "check %s/%s is not run: its check_period %s is active at no "
                       "time in the next year", key[0], key[1], self._schedule(key).check_period)
            self._schedule_at(key, now + NEVER_RECHECK)
            self._parked.add(key)
        elif valid == when:
            self._schedule_at(key, when)
        else:
            self._schedule_at(key, max(valid, now + MIN_WAIT))
            self._parked.add(key)

    def _tell(self, key: CheckKey, what: str, level: int, msg: str, *args: Any) -> None:
        """Log `msg` once for `key`, not at each re-evaluation (a period never valid must not flood)."""
        if (key, what) not in self._told:
            self._told.add((key, what))
            log.log(level, msg, *args)

    def _fire(self, key: CheckKey, scheduled: float, check_type: str) -> None:
        """A timer: a scheduled run happens only if the check is active and inside its
        check_period now (a reload or a clock change may have moved either)."""
        self._timers.pop(key, None)
        self._parked.discard(key)
        if self._stopping or key not in self.states:
            return
        if check_type == ACTIVE:
            if not self._schedule(key).active:
                return
            now = asyncio.get_running_loop().time()
            if self._valid_from(key, now) != now:
                self._schedule_valid(key, now)
                return
            if self._master_failing(key):
                self._next_run(key, scheduled, retrying=False)
                return
        self._due(key, scheduled, check_type)

    def _master_failing(self, key: CheckKey) -> bool:
        """Nagios' execution dependencies: while a master is in one of a dependency's
        execution_failure_criteria the timer's run is skipped, and the check is due again an
        interval later. Only masters of this node's own site can gate (checkd/config/dependencies.py)."""
        if key not in self.objs.dependencies:
            return False
        dep = deps.failing(self.objs, key, deps.DependencyKind.EXECUTION, self._seen, self.wall())
        if dep is None:
            self._told.discard((key, "dependency"))
            return False
        self._tell(key, "dependency", logging.INFO, "check %s not run while %s is %s (an execution dependency)",
                   label(key), label(dep.master), deps.state_word(self.objs, dep.master, self._seen).upper())
        return True

    def _seen(self, key: CheckKey) -> deps.Seen | None:
        st = self.states.get(key)
        return None if st is None or st.last_check == 0 else deps.Seen(st.status, st.state_type is StateType.HARD)

    def _due(self, key: CheckKey, scheduled: float, check_type: str = ACTIVE) -> None:
        if self._stopping:
            return
        self._inflight.add(key)
        if len(self._running) < self._limit:
            self._launch(key, scheduled, check_type)
        else:
            self._ready.append((key, scheduled, check_type))

    def _launch(self, key: CheckKey, scheduled: float, check_type: str) -> None:
        self._running.add(key)
        task = asyncio.get_running_loop().create_task(self._run(key, scheduled, check_type))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release(self, key: CheckKey) -> None:
        self._running.discard(key)
        if self._limit < self.max_concurrent:
            self._limit += 1
        while self._ready and len(self._running) < self._limit:
            self._launch(*self._ready.popleft())

    def _next_run(self, key: CheckKey, scheduled: float, retrying: bool) -> None:
        if self._stopping or key not in self.states:    # stopping, or removed by a reload
            return
        if key in self._once:
            self._once.discard(key)
            return
        loop = asyncio.get_running_loop()
        if key in self._rerun:              # forced while it ran: forced again, whatever the period
            self._rerun.discard(key)
            self._schedule_at(key, loop.time(), "forced")
            return
        sched = self._schedule(key)
        if not sched.active:                # a forced run of a passive check: no timer after it
            return
        interval = sched.retry_interval if retrying else sched.interval
        # Stay on the grid while on time; after falling behind by a whole interval,
        # start afresh from now rather than firing a burst of overdue checks.
        when = scheduled + interval
        if when < loop.time():
            when = loop.time() + interval
        self._schedule_valid(key, when)

    # --- one run ----------------------------------------------------------------------------

    def _objects(self, key: CheckKey) -> tuple[Host, Service | None]:
        host, service = key
        return self.objs.hosts[host], (self.objs.services[(host, service)] if service is not None else None)

    async def _run(self, key: CheckKey, scheduled_mono: float, check_type: str) -> None:
        loop = asyncio.get_running_loop()
        offset = self.wall() - loop.time()          # monotonic -> wall clock
        started = loop.time()
        self.latencies.append(started - scheduled_mono)
        host, service = self._objects(key)
        retrying = False
        try:
            try:
                raw = await self.runner.run_raw(self._prepare(key, host, service))
                output = interpret(raw)
            except Exception as e:  # a bug in one check must not stop the others
                log.exception("check %s/%s failed inside checkd", key[0], key[1])
                output = PluginOutput(Status.UNKNOWN, f"(checkd internal error: {type(e).__name__}: {e})"[
                    :MAX_TEXT_CHARS], "", "")       # within what central takes (docs/security-input.md)
                raw = None
            finished = loop.time()
            if raw is not None and raw.ended:
                # When the worker says it ended: a result read late (this process was stopped or
                # its loop stalled) must not pass for newer than results central got meanwhile.
                finished = max(started, min(finished, raw.ended - offset))
            self._release(key)
            if key not in self.states:
                log.info("check %s/%s was removed by a reload while it ran; its result is dropped", *key)
                return
            before = self.states[key].status
            result, transition = self._result(key, host, service, output, scheduled_mono + offset,
                                              started + offset, finished + offset, check_type)
            retrying = is_retrying(result.status, result.state_type)
            if service is not None and result.status != 0:
                self._check_host_now(host.name, loop.time())
            elif service is None:
                self._check_neighbours(host, before, result.status, loop.time())
            self.checks_done += 1
            await self.sink(result)
            if self.handlers is not None and transition.runs_handlers:
                # After the sink: a handler reacts to a result already recorded; it runs on its own.
                self.handlers.on_result(self.objs, host, service, result, self.states.get((host.name, None)))
        finally:
            self._running.discard(key)
            self._inflight.discard(key)
            self._next_run(key, scheduled_mono, retrying)

    def _prepare(self, key: CheckKey, host: Host, service: Service | None) -> PreparedCheck:
        check = self._prepared.get(key)
        if check is None:
            check = prepare(self.objs, host, service, self.default_ssh, self._runtime_macros(key))
            if is_static(self.objs, host, service):
                self._prepared[key] = check
        return check

    def _runtime_macros(self, key: CheckKey) -> dict[str, str]:
        """A check's command sees the state before its run, as in Nagios."""
        st = self.states[key]
        return state_macros("SERVICE" if key[1] else "HOST", st.status, st.state_type, st.attempt,
                            self._schedule(key).max_attempts, st.output, st.last_check)

    def _check_neighbours(self, host: Host, before: int, status: int, now: float) -> None:
        """Nagios' reachability: a failing host has its parents believed UP checked now (is it
        DOWN, or UNREACHABLE behind them?); one that came back has its failing children checked
        now, so their UNREACHABLE, which holds their notifications, does not outlast it."""
        if status != 0:
            for parent in host.parents:
                self._check_host_now(parent, now)
        elif before != 0:
            for child in self._children.get(host.name, ()):
                self._check_host_now(child, now, failing=True)

    def _host_status(self, host: Host, output: PluginOutput) -> int:
        """UP/DOWN from the plugin; DOWN becomes UNREACHABLE when every known parent is down."""
        status = HostStatus.from_plugin(output.status)
        if status is HostStatus.DOWN and host.parents:
            known = [self.states[(p, None)].status for p in host.parents if (p, None) in self.states]
            if known and len(known) == len(host.parents) and all(s != HostStatus.UP for s in known):
                status = HostStatus.UNREACHABLE
        return int(status)

    def _result(self, key: CheckKey, host: Host, service: Service | None, output: PluginOutput,
                scheduled: float, started: float, finished: float,
                check_type: str) -> tuple[CheckResult, Transition]:
        sched = (service or host).schedule
        status = int(output.status) if service is not None else self._host_status(host, output)
        state = self.states[key]
        t = advance(state, status, sched.max_attempts)
        apply(state, t, finished)
        state.output = output.output
        flapping = (state.flap.record(status, sched.low_flap_threshold, sched.high_flap_threshold)
                    if sched.flap_detection else False)
        return CheckResult(host=host.name, service=service.description if service else None, status=t.status,
                           state_type=t.state_type, attempt=t.attempt, output=output.output,
                           long_output=output.long_output, perfdata=output.perfdata, scheduled=scheduled,
                           started=started, finished=finished, max_attempts=sched.max_attempts,
                           flapping=flapping, check_type=check_type, polled_by=self.node), t


def children_of(objs: Objects, keys: Iterable[CheckKey]) -> dict[str, list[str]]:
    """parent -> the host checks among `keys` that name it in `parents`."""
    out: dict[str, list[str]] = {}
    for host, service in keys:
        if service is None and host in objs.hosts:
            for parent in objs.hosts[host].parents:
                out.setdefault(parent, []).append(host)
    return out


def site_checks(objs: Objects, site: str) -> list[CheckKey]:
    """Every check a node of `site` runs: host checks (hosts with a command) and services."""
    keys: list[CheckKey] = [(h.name, None) for h in objs.hosts_of_site(site) if h.check is not None]
    keys += [(s.host, s.description) for s in objs.services_of_site(site)]
    return keys
