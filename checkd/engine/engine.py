"""The alerting engine, assembled once: database, store, events, notifier, downtime
notices and dispatcher, with the one ticker that moves time forward for them.

Central runs it on everything it stores (central/app.py); a poller runs the same
engine on its own results (checkd/autonomy.py), so that when central is out of
reach it knows which problems are open and who has been told. See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from checkd.config.model import Notify, Objects
from checkd.engine.db import UPSERT_CHECK, Database, Op, WriteError
from checkd.engine.events import Events, apply_result
from checkd.engine.ids import EventIds
from checkd.engine.notify.channels import Channels
from checkd.engine.notify.dispatch import Dispatcher, GraphSource
from checkd.engine.notify.downtimes import DowntimeNotices
from checkd.engine.recurring import Recurring
from checkd.engine.notify.notifier import Notifier, Plan, Planned
from checkd.engine.store import CheckView, Event, Store
from checkd.result import CheckResult

log = logging.getLogger(__name__)

TICK = 1.0                      # seconds between the timer checks (escalations, downtimes, ...)
Deliver = Callable[[list[Planned]], None]


class Engine:
    def __init__(self, db: Database, objs: Objects, channels: Channels, ids: EventIds, *,
                 system: Notify = Notify(), via: str = "central", decided: str = "pending",
                 graphs: GraphSource | None = None, fatal: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time, site: str | None = None):
        """`ids`: where new event IDs come from (central's allocator or a poller's blocks);
        `system`: who hears of central's own events; `decided`: the status a new decision is
        logged with (a poller that alerts for central logs "delegated"); `fatal`: told when
        the database refuses a write (central stops, so a restart reloads the truth); `site`:
        the one site whose checks it sees (a poller: dependencies on other sites' checks
        cannot hold its notifications), None for central."""
        self.objs, self.channels, self.ids = objs, channels, ids
        self.db = db
        self.store = Store()
        self.events = Events(self.store, ids)
        jabber = channels.jabber
        self.notifier = Notifier(objs, self.store, self.events, channels.senders,
                                 room=jabber.room if jabber else None, system=system)
        self.notifier.new_status, self.notifier.via, self.notifier.site = decided, via, site
        self.downtimes = DowntimeNotices(self.notifier)
        # Central makes the windows of recurring downtimes (pollers get them with its decisions).
        self.recurring: Recurring | None = None
        self.graphs = graphs
        self.fatal = fatal
        self.clock = clock
        self.dispatcher: Dispatcher | None = None       # while sending
        self.deliver: Deliver = self.submit             # what happens to committed decisions
        self.pending: list[Planned] = []                # decided before a restart, not confirmed sent
        self.load_timings: dict[str, float] = {}        # seconds per step of load()
        self.results_total = 0
        self._tick_task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def load(self, extra_schema: str = "", checks: bool = True) -> dict[str, list[tuple[Any, ...]]]:
        """Blocking (run in a thread): the schema and every stored row; returns the tables.
        `checks=False`: a poller's check states come from its retention file instead."""
        t0 = time.perf_counter()
        self.db.open(extra_schema)
        t1 = time.perf_counter()
        tables = self.db.load_all()
        t2 = time.perf_counter()
        self.store.load(tables if checks else {**tables, "checks": []})
        t3 = time.perf_counter()
        self.ids.load(self.store.meta, tables)
        self.pending = self.notifier.load(tables["notification_log"], self.store.meta)
        t4 = time.perf_counter()
        checked = self.db.timings.get("quick_check", 0.0)
        # What each step took, for central's start-up line (central/startup.py).
        self.load_timings = {"quick_check": checked, "schema": t1 - t0 - checked, "reading rows": t2 - t1,
                             "state in memory": t3 - t2, "ids and notification log": t4 - t3}
        return tables

    def start_writing(self) -> None:
        """The database's writer thread (after load; before anything is written)."""
        self.db.start()

    async def run(self, sending: bool) -> None:
        """Start the ticker; `sending`: first start the dispatcher and send what was decided
        before the restart but not confirmed sent (a poller keeps that for when it is alone)."""
        if sending:
            await self.start_sending()
            if self.pending:
                log.info("%d notification(s) decided before the restart but not confirmed sent: sending now",
                         len(self.pending))
                self.submit(self.pending)
                self.pending = []
        self._tick_task = asyncio.create_task(self._ticker(), name="engine-tick")

    async def stop(self) -> None:
        """The ticker, sending, the channels' connections, then the database (queued writes
        are committed first)."""
        if self._tick_task is not None:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
            self._tick_task = None
        await self.stop_sending()
        await self.channels.close()
        await asyncio.to_thread(self.db.stop)

    def reconfigure(self, objs: Objects, system: Notify = Notify()) -> None:
        """A reloaded configuration: who is told, from the next decision on."""
        self.objs = objs
        self.notifier.reconfigure(objs, system)

    # --- sending -----------------------------------------------------------------------

    async def start_sending(self) -> None:
        """A fresh dispatcher over the channels; what was decided but not sent goes first."""
        jabber = self.channels.jabber
        self.dispatcher = Dispatcher(
            self.db, self.channels.senders, self.channels.settings, notices=jabber,
            jabber_of=lambda name: c.jabber if (c := self.objs.contacts.get(name)) else "", graphs=self.graphs)
        if jabber is not None:
            await jabber.start()
        await self.dispatcher.start()

    async def stop_sending(self) -> None:
        """Sends under way finish; what is queued stays pending in the log."""
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            self.dispatcher = None
        if self.channels.jabber is not None:
            await self.channels.jabber.stop()

    def submit(self, notes: list[Planned]) -> None:
        """Committed decisions to the dispatcher (when sending)."""
        if notes and self.dispatcher is not None:
            self.dispatcher.submit(notes)

    def queued(self) -> int:
        return self.dispatcher.queued() if self.dispatcher is not None else 0

    def sent(self) -> int:
        return self.dispatcher.sent if self.dispatcher is not None else 0

    # --- the path of a result ----------------------------------------------------------

    def apply(self, source: str, results: list[CheckResult],
              stored: Callable[[CheckView], None] | None = None) -> tuple[list[Op], int]:
        """Results into the store and their events, in check-time order (no await: batches
        never interleave). Returns the ops and how many were older than what the store holds
        (never overwritten); `stored` sees each view that changed (the RRD feed)."""
        ops: list[Op] = []
        rows = []
        stale = 0
        results.sort(key=lambda r: r.finished)         # check-time order; stable for equal times
        for r in results:
            applied = apply_result(self.store, self.events, source, r)
            if applied is None:
                stale += 1
                continue
            view, event_ops = applied
            ops.extend(event_ops)
            self.results_total += 1
            rows.append(view.row())
            if stored is not None:
                stored(view)
        if rows:
            ops.insert(0, (UPSERT_CHECK, rows))
        return ops, stale

    def acknowledge(self, events: list[Event], author: str, comment: str, now: float, sticky: bool = True,
                    expires: float | None = None) -> tuple[list[Op], Plan]:
        """Open problems acknowledged (events.ack) and the ACKNOWLEDGEMENT to whoever was told of
        each: what an operator's ack at central or at a poller commits."""
        ops: list[Op] = []
        plan = Plan()
        for ev in events:
            ops += self.events.ack(ev.id, author, comment, now, sticky, expires)
            plan.add(self.notifier.on_ack(ev, now))
        return ops, plan

    def decide(self, now: float) -> Plan:
        """The notifications the event changes since the last call call for."""
        return self.notifier.on_changes(self.events.take_changes(), now)

    async def write(self, ops: list[Op]) -> None:
        """Durable when it returns. A refused write is fatal to a node that was told how
        (`fatal`): memory is ahead of disk; the error still goes to the caller."""
        try:
            await self.db.write(ops)
        except WriteError as e:
            if self.fatal is not None:
                self.fatal(f"database write failed: {e}")
            else:
                log.critical("database write failed: %s", e)
            raise

    async def commit(self, ops: list[Op], plan: Plan) -> None:
        """The change with the decisions it caused, in one transaction; then deliver them."""
        await self.write(ops + plan.ops)
        if plan.notes:
            self.deliver(plan.notes)

    def tick(self, now: float) -> tuple[list[Op], Plan]:
        """What the passing of time decides: deployments ending (they unmute, so first) and
        acknowledgements expiring, downtimes starting and ending, escalations, re-notifications, held problems whose
        hold ended (after the DOWNTIMEEND that lets them out, as in Nagios)."""
        expired = self.store.deployments.expire(now) + self.events.expire_acks(now)
        plan = Plan()
        if self.recurring is not None:
            made, plan = self.recurring.tick(now)
            expired += made
        return expired, plan.add(self.downtimes.tick(now)).add(self.notifier.tick(now))

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                ops, plan = self.tick(self.clock())
                if ops or plan.ops:
                    await self.commit(ops, plan)
            except WriteError:
                if self.fatal is not None:
                    return              # storage failed: the node is stopping
                log.exception("notification tick failed; trying again in %gs", TICK)
            except Exception:
                log.exception("notification tick failed; trying again in %gs", TICK)

