"""Checks central runs itself, with the pollers' own scheduler and runner code:

- its own site `central` (cross-datacenter sanity checks), always;
- every check of a site whose pollers have all gone silent for longer than the
  site's freshness threshold (takeover), until a poller of the site has been
  heard again for `hold_down` (handback);
- a freshness check of one service with a `freshness_threshold` that has had
  no result for that long while its poller is alive (Nagios' check_freshness), or
  its `freshness_state:` stored instead when it has one (central/passive.py).

Results go through the same ingest path as a poller's (check-time ordering
makes the overlap at takeover and handback safe), marked `polled_by: central`.
A takeover opens an event on `@checkd/Site NAME` that the `freshness:`
contacts are told about; the handback recovers it.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from checkd import tasks
from checkd.engine.notify.recipients import SYSTEM_HOST
from checkd.durations import format_duration
from checkd.event_handlers import EventHandlers
from checkd.states import StateType
from checkd.failover_timing import DEFAULT_STALE_AFTER, DEFAULT_START_GRACE
from checkd.result import CheckKey, CheckResult
from checkd.run.runner import Runner
from checkd.scheduler import Scheduler, site_checks
from checkd.timeperiods import is_active
from checkd.transitions import CheckState

if TYPE_CHECKING:
    from central.live import Live
    from checkd.engine.store import Store

log = logging.getLogger(__name__)

CENTRAL_SITE = "central"
DEFAULT_HOLD_DOWN = 30.0
WATCH_EVERY = 1.0


def site_service(site: str) -> str:
    return f"Site {site}"


class Takeover:
    def __init__(self, live: Live, store: Store, store_local: Callable[[list[CheckResult]], Awaitable[None]],
                 stale: Callable[[CheckKey, int, str, str], Awaitable[float | None]]):
        """`store_local`: how a result central ran itself is stored (Ingest.store_local);
        `stale`: how a stale check's freshness_state is stored (Passive.stale)."""
        self.live, self.store, self.store_local, self.stale = live, store, store_local, stale
        self.runner: Runner | None = None
        self.handlers: EventHandlers | None = None      # for the checks central runs (docs/event-handlers.md)
        self.schedulers: dict[str, Scheduler] = {}      # site -> central's scheduler for it
        self._heard_since: dict[str, float] = {}        # taken-over site -> since when its poller is back
        self._fresh_asked: dict[CheckKey, float] = {}
        # A check's last stale result: its check time, since when the check is silent, whether it ever reported.
        self._stale_stored: dict[CheckKey, tuple[float | None, float, bool]] = {}
        self._freshness: Scheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self.answering_since: float | None = None      # set when central's listener is up
        fresh = live.node.section("freshness")
        self.hold_down = float(fresh.get("hold_down", DEFAULT_HOLD_DOWN))
        self.start_grace = float(fresh.get("start_grace", DEFAULT_START_GRACE))
        self.sites = sorted({h.site for h in live.objs.hosts.values()} - {CENTRAL_SITE})
        self.freshness_keys = [(s.host, s.description) for s in live.objs.services.values()
                               if s.schedule.freshness_threshold]

    def reconfigure(self) -> None:
        """A reloaded configuration: sites, thresholds, and the checks central runs itself."""
        c = self.live
        self.hold_down = float(c.node.section("freshness").get("hold_down", DEFAULT_HOLD_DOWN))
        self.start_grace = float(c.node.section("freshness").get("start_grace", DEFAULT_START_GRACE))
        self.sites = sorted({h.site for h in c.objs.hosts.values()} - {CENTRAL_SITE})
        self.freshness_keys = [(s.host, s.description) for s in c.objs.services.values()
                               if s.schedule.freshness_threshold]
        for site, sched in list(self.schedulers.items()):
            sched.reconfigure(c.objs, site_checks(c.objs, site))
        if CENTRAL_SITE not in self.schedulers and site_checks(c.objs, CENTRAL_SITE):
            self._start_site(CENTRAL_SITE)
        if self._freshness is not None:
            self._freshness.reconfigure(c.objs, self.freshness_keys)

    def stale_after(self, site: str) -> float:
        s = self.live.objs.sites.get(site)
        if s is not None and s.stale_after:
            return s.stale_after
        return float(self.live.node.section("freshness").get("site_stale_after", DEFAULT_STALE_AFTER))

    def polled_by_central(self, site: str) -> bool:
        return site in self.schedulers

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if site_checks(self.live.objs, CENTRAL_SITE):
            self._start_site(CENTRAL_SITE)
        self._task = asyncio.create_task(self._watch(), name="site-watch")

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None
        for sched in [*self.schedulers.values(), *([self._freshness] if self._freshness else [])]:
            await sched.stop(timeout=5.0)
        self.schedulers.clear()
        if self.handlers is not None:
            await self.handlers.stop()
            self.handlers = None
        if self.runner is not None:
            await self.runner.close()
            self.runner = None

    def _runner(self) -> Runner:
        if self.runner is None:
            from checkd.config.load import SHIPPED_PLUGINS
            # Worker processes spawn the plugins: central's own loop (uvloop) never forks.
            self.runner = Runner([*self.live.node.plugin_dirs, *SHIPPED_PLUGINS],
                                 exec_workers=max(1, self.live.node.exec_workers))
            self.handlers = EventHandlers(self.runner, lambda: self.live.node)
        return self.runner

    def _states(self, keys: list[CheckKey]) -> dict[CheckKey, CheckState]:
        """Where each check's state machine stands, from what central last heard."""
        out = {}
        for key in keys:
            v = self.store.checks.get(key)
            if v is not None and v.last_check:
                out[key] = CheckState(v.status, v.state_type, v.attempt, v.last_check, v.last_state_change,
                                      v.last_state_change, v.output)
        return out

    def _start_site(self, site: str) -> Scheduler:
        keys = site_checks(self.live.objs, site)
        runner = self._runner()             # and self.handlers with it
        sched = Scheduler(self.live.objs, keys, runner, self._sink, node=CENTRAL_SITE,
                          max_concurrent=self.live.node.max_concurrent_checks, default_ssh=self.live.node.ssh,
                          states=self._states(keys), handlers=self.handlers)
        self.schedulers[site] = sched
        sched.start()
        return sched

    # --- results --------------------------------------------------------------------------

    async def _sink(self, result: CheckResult) -> None:
        await self.store_local([result])

    # --- watching the sites -----------------------------------------------------------------

    def answering(self, now: float) -> None:
        """Central's listener is up: pollers can be heard from now on, so silence counts from here."""
        self.answering_since = now

    def judging(self, now: float) -> bool:
        """Whether silence means anything yet: central has answered for start_grace."""
        return self.answering_since is not None and now - self.answering_since >= self.start_grace

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            try:
                now = time.time()
                if not self.judging(now):
                    continue
                for site in self.sites:
                    await self._check_site(site, now)
                await self._check_freshness(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("site watch failed; trying again in %gs", WATCH_EVERY)

    def last_heard(self, site: str) -> float | None:
        seen = [ps.last_seen for name, auth in self.live.node.pollers.items() if auth.site == site
                if (ps := self.store.pollers.get(name)) is not None]
        return max(seen) if seen else None

    async def _check_site(self, site: str, now: float) -> None:
        heard = self.last_heard(site)
        # Not heard since central started answering: count from then, so a restart does not take over at once.
        silent_for = now - max(heard or 0.0, self.answering_since or now)
        silent = silent_for > self.stale_after(site)
        if silent and site not in self.schedulers:
            names = [n for n, a in self.live.node.pollers.items() if a.site == site] or ["(no poller configured)"]
            sched = self._start_site(site)
            what = (f"no word from {', '.join(names)} for {format_duration(silent_for)}; central polls site {site} "
                    f"itself ({len(sched.keys)} checks)")
            log.warning("takeover: %s", what)
            await self._system_result(site, 2, what)
        elif site in self.schedulers:
            if silent:
                self._heard_since.pop(site, None)
                return
            since = self._heard_since.setdefault(site, now)
            if now - since >= self.hold_down:
                sched = self.schedulers.pop(site)
                self._heard_since.pop(site, None)
                await sched.stop(timeout=10.0)
                what = f"poller of site {site} heard for {format_duration(now - since)}; checks handed back"
                log.info("handback: %s", what)
                await self._system_result(site, 0, what)

    async def _system_result(self, site: str, status: int, output: str) -> None:
        t = time.time()
        await self.store_local([CheckResult(SYSTEM_HOST, site_service(site), status, StateType.HARD, 1, output, "", "",
                                            t, t, t, polled_by=CENTRAL_SITE)])

    async def _check_freshness(self, now: float) -> None:
        """A service silent past its freshness_threshold while its poller is alive: central runs it
        once, or stores its freshness_state."""
        for key in self.freshness_keys:
            svc = self.live.objs.services[key]
            site = self.live.objs.hosts[key[0]].site
            if site in self.schedulers and svc.schedule.active:
                continue                            # taken over: central's timers run it anyway
            v = self.store.checks.get(key)
            # A result from before central started answering may be on its way in a poller's spool.
            last = max(v.last_check if v is not None else 0.0, self.answering_since or now)
            threshold = svc.schedule.freshness_threshold or 0
            if now - last <= threshold or now - self._fresh_asked.get(key, 0.0) <= threshold:
                continue
            self._fresh_asked[key] = now
            if svc.schedule.freshness_state is not None:
                await self._store_stale(key, v.last_check if v is not None else 0.0, last, now)
                continue
            if self._freshness is None:
                runner = self._runner()
                self._freshness = Scheduler(self.live.objs, self.freshness_keys, runner, self._sink,
                                            node=CENTRAL_SITE, default_ssh=self.live.node.ssh,
                                            handlers=self.handlers)
            self._freshness.states.update(self._states([key]))
            if self._freshness.run_once(key, "freshness"):      # not outside its check_period
                log.warning("freshness: no result for %s/%s for %s (threshold %s); central runs it now",
                            key[0], key[1], format_duration(now - last), format_duration(threshold))

    async def _store_stale(self, key: CheckKey, last_check: float, last: float, now: float) -> None:
        """The configured state instead of a run, inside the check_period only (as a run would be).
        Its text counts from the last result that was not one of these, so the operator reads
        how long the submitter has really been silent."""
        sched = self.live.objs.services[key].schedule    # type: ignore[index]
        if not is_active(sched.check_period, datetime.datetime.now(), self.live.objs.timeperiods):
            return
        stored, quiet, ever = self._stale_stored.get(key, (None, 0.0, False))
        if stored != last_check:                        # a real result (or none at all) since the last stale one
            quiet, ever = last_check or last, bool(last_check)
        since = (f"no result for {format_duration(now - quiet)}" if ever
                 else f"no result since central started {format_duration(now - quiet)} ago")
        why = f"{since} (freshness threshold {format_duration(sched.freshness_threshold or 0)})"
        log.warning("freshness: %s/%s: %s; stored as its freshness_state", key[0], key[1], why)
        assert sched.freshness_state is not None
        t = await self.stale(key, sched.freshness_state, sched.freshness_output, why)
        self._stale_stored[key] = (t, quiet, ever)
