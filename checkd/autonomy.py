"""A poller's own alerting, for when central cannot be reached.

The poller runs central's event and notification code on its own results all
the time (a small SQLite file in its state directory), so that when it has to
alert on its own it knows which problems are open, under which event IDs, and
who has been told:

- Events get IDs from blocks central reserved for this poller in advance
  (POST /api/v1/ids/reserve), and each result carries its event's ID to
  central, which opens the event under that ID. IDs stay unique everywhere.
- While central is reachable, the notifications this engine decides are only
  recorded, as `delegated`: central sends its own.
- After `autonomy_after` without a successful delivery the poller is
  *autonomous*: every delegated notification whose result central never
  acknowledged goes out, and so does everything decided from then on, by the
  poller's own `email:` and `jabber:` settings, each saying
  `via <site> poller, central unreachable`. Results keep spooling.
- When central answers again, before its spool is replayed, the poller stops
  sending, hands its notification log over (POST /api/v1/notifications/adopt)
  and only after central confirmed does it stop alerting on its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from checkd.engine.db import Database, Op
from checkd.engine.events import Events, apply_result
from checkd.engine.notify import channels
from checkd.engine.notify.dispatch import Dispatcher
from checkd.engine.notify.notifier import LOG_FIELDS, Notifier, Plan, Planned, from_payload
from checkd.engine.store import Store
from checkd.config.model import Objects
from checkd.config.node import NodeConfig
from checkd.forwarder import DeliveryError, Forwarder

log = logging.getLogger(__name__)

BLOCK = 1000                    # event IDs asked for at a time
LOW_WATER = 200                 # ask for more below this many
RESERVE_RETRY = 30.0            # after central refused a reservation (an error answer)
TICK = 1.0
SET_META = "INSERT OR REPLACE INTO meta VALUES (?,?)"
INSERT_BLOCK = "INSERT OR IGNORE INTO id_blocks VALUES (?,?,?,?)"
DELEGATED = """CREATE TABLE IF NOT EXISTS delegated (row_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)"""
INSERT_DELEGATED = "INSERT OR REPLACE INTO delegated VALUES (?,?)"
SET_STATUS = "UPDATE notification_log SET status = ? WHERE id = ?"


class NoIds(Exception):
    """No reserved event ID left (central never reached since the block ran out)."""


class PollerIds:
    """Event IDs from the blocks central reserved for this poller."""

    def __init__(self, blocks: list[tuple[int, int]], next_id: int):
        self.blocks = sorted(blocks)
        self.next = next_id
        self.used_poller_ids: set[int] = set()      # Events' interface; unused on a poller

    def poller_may_use(self, poller: str, eid: int) -> bool:
        return False                                # a poller never adopts someone else's IDs

    def available(self) -> int:
        return sum(last - max(first, self.next) + 1 for first, last in self.blocks if last >= self.next)

    def allocate(self) -> tuple[int, list[Op]]:
        for first, last in self.blocks:
            if last >= self.next:
                eid = max(first, self.next)
                self.next = eid + 1
                return eid, [(SET_META, [("next_poller_id", self.next)])]
        raise NoIds("no event ID left in this poller's reserved blocks")

    def add(self, first: int, last: int) -> None:
        self.blocks = sorted([*self.blocks, (first, last)])


class LocalAlerting:
    def __init__(self, node: NodeConfig, objs: Objects):
        self.node, self.objs = node, objs
        self.db = Database(node.state_dir / "alerts.sqlite")
        self.store = Store()
        self.ids = PollerIds([], 1)
        self.events = Events(self.store, self.ids)   # type: ignore[arg-type]  # the same interface
        self.channels = channels.build(node, objs)
        jabber = self.channels.jabber
        self.notifier = Notifier(objs, self.store, self.events, self.channels.senders,
                                 room=jabber.room if jabber else None)
        self.notifier.new_status = "delegated"
        self.notifier.via = f"{node.site} poller, central unreachable"
        self.dispatcher: Dispatcher | None = None
        self.autonomous = False
        self._pending: list[Planned] = []
        self._reserve_refused = float("-inf")     # when central last answered a reservation with an error
        self._tick_task: asyncio.Task[None] | None = None
        self._no_ids_logged = False
        self.last_seq: Any = lambda: 0          # the spool's newest seq (set by the poller)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        self.db.start()
        self._tick_task = asyncio.create_task(self._ticker(), name="alerting-tick")
        if self._pending:
            # Decided while alerting on its own before a restart, not confirmed sent.
            await self.go_autonomous(acked_seq=None)

    def _load(self) -> None:
        self.db.open()
        conn = self.db._connect()
        try:
            conn.execute(DELEGATED)
        finally:
            conn.close()
        tables = self.db.load_all()
        self.store.load({**tables, "checks": []})
        blocks = [(first, last) for first, last, _poller, _ in tables["id_blocks"]]
        self.ids.blocks, self.ids.next = sorted(blocks), self.store.meta.get("next_poller_id", 1)
        self._pending = self.notifier.load(tables["notification_log"], self.store.meta)

    async def stop(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
            self._tick_task = None
        await self._stop_sending()
        await asyncio.to_thread(self.db.stop)

    def reconfigure(self, objs: Objects) -> None:
        """A reloaded configuration: who is told, from the next decision on."""
        self.objs = self.notifier.objs = objs
        self.notifier._level_cache.clear()

    # --- every result, before it is spooled ----------------------------------------------

    def process(self, record: dict[str, Any]) -> tuple[list[Op], list[Planned]]:
        """Apply one result; puts its event's ID into `record` (central opens the event under it)."""
        try:
            applied = apply_result(self.store, self.events, self.node.name, record)
        except NoIds:
            if not self._no_ids_logged:
                log.warning("no event IDs reserved from central yet: problems are left to central until "
                            "it has been reached once")
                self._no_ids_logged = True
            return [], []
        if applied is None:
            return [], []
        view, ops = applied
        if view.event_id is not None:
            record["event_id"] = view.event_id
        plan = self.notifier.on_changes(self.events.take_changes(), time.time())
        return ops + plan.ops, plan.notes

    async def record(self, ops: list[Op], notes: list[Planned], seq_of: Any) -> int:
        """Commit the decisions, spool the result (`seq_of()` appends it), and note which
        spooled result each delegated notification came from."""
        if ops:
            await self.db.write(ops)
        seq = await seq_of()
        if notes:
            if self.autonomous:
                self._submit(notes)
            else:
                self.db.write([(INSERT_DELEGATED, [(p.row_id, seq) for p in notes])])
        return seq

    # --- alerting on its own ----------------------------------------------------------------

    async def go_autonomous(self, acked_seq: int | None) -> None:
        """Start sending: what central never acknowledged, and everything from now on."""
        if self.autonomous:
            return
        self.autonomous = True
        self.notifier.new_status = "pending"
        jabber = self.channels.jabber
        self.dispatcher = Dispatcher(self.db, self.channels.senders, self.channels.settings, notices=jabber,
                                     jabber_of=lambda n: c.jabber if (c := self.objs.contacts.get(n)) else "")
        if jabber is not None:
            await jabber.start()
        await self.dispatcher.start()
        backlog = self._pending
        self._pending = []
        if acked_seq is not None:
            backlog += await asyncio.to_thread(self._unconfirmed, acked_seq)
        if backlog:
            await self.db.write([(SET_STATUS, [("pending", p.row_id) for p in backlog])])
            self._submit(backlog)
        log.warning("central unreachable: poller %s alerts on its own now (%d notification(s) central "
                    "never got the results for)", self.node.name, len(backlog))

    def _unconfirmed(self, acked_seq: int) -> list[Planned]:
        rows = self.db.read(
            "SELECT n.id, n.payload FROM notification_log n LEFT JOIN delegated d ON d.row_id = n.id "
            "WHERE n.status = 'delegated' AND (d.seq IS NULL OR d.seq > ?) ORDER BY n.id", (acked_seq,))
        return [Planned(rid, from_payload(payload)) for rid, payload in rows]

    def _submit(self, notes: list[Planned]) -> None:
        assert self.dispatcher is not None
        via = self.notifier.via
        self.dispatcher.submit([Planned(p.row_id, dataclasses.replace(p.n, via=via)) for p in notes])

    async def _ticker(self) -> None:
        """Escalations and re-notifications: sent when autonomous, else recorded like central's."""
        while True:
            await asyncio.sleep(TICK)
            try:
                plan: Plan = self.notifier.tick(time.time())
                if plan.ops:
                    await self.db.write(plan.ops)
                if plan.notes and self.autonomous:
                    self._submit(plan.notes)
                elif plan.notes:
                    seq = self.last_seq()
                    self.db.write([(INSERT_DELEGATED, [(p.row_id, seq) for p in plan.notes])])
            except Exception:
                log.exception("poller notification tick failed")

    async def _stop_sending(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            self.dispatcher = None
        if self.channels.jabber is not None:
            await self.channels.jabber.stop()

    # --- talking to central again -----------------------------------------------------------

    async def before_post(self, fwd: Forwarder) -> None:
        """Forwarder hook: hand over before anything is replayed; keep event IDs in stock."""
        if self.autonomous:
            await fwd.call("/api/v1/heartbeat", {})     # central really answers (raises if not)
            await self._handover(fwd)
        if self.ids.available() < LOW_WATER and time.monotonic() - self._reserve_refused > RESERVE_RETRY:
            try:
                block = await fwd.call("/api/v1/ids/reserve", {"count": BLOCK})
            except DeliveryError as e:
                if not e.answered:
                    # Central is not there: this counts as a failed delivery, and the reservation
                    # is the first thing tried on the next contact (not RESERVE_RETRY later).
                    raise
                self._reserve_refused = time.monotonic()      # central answered no: ask again later
                log.warning("could not reserve event IDs from central: %s", e)
                return
            try:
                first, last = int(block["first"]), int(block["last"])
            except (KeyError, TypeError, ValueError):
                self._reserve_refused = time.monotonic()
                log.warning("could not reserve event IDs from central: malformed answer %r", block)
                return
            self.ids.add(first, last)
            await self.db.write([(INSERT_BLOCK, [(first, last, self.node.name, time.time())])])
            log.info("event IDs %d-%d reserved for alerting on our own", first, last)

    async def _handover(self, fwd: Forwarder) -> None:
        await self._stop_sending()                        # nothing changes while central takes over
        rows = await asyncio.to_thread(
            self.db.read, "SELECT * FROM notification_log WHERE status IN "
                          "('pending', 'sent', 'failed', 'summarised') ORDER BY id")
        # The problems it has open go along: central opens them under the same IDs before a
        # result is replayed, so its own checks (a takeover) join them instead of opening new ones.
        events = [{"id": ev.id, "host": ev.host, "service": ev.service, "status": ev.status,
                   "opened": ev.opened, "flapping": ev.flapping} for ev in self.store.open_events.values()]
        try:
            answer = await fwd.call("/api/v1/notifications/adopt",
                                    {"rows": [dict(zip(LOG_FIELDS, r)) for r in rows], "events": events})
        except DeliveryError:
            # Not taken over: go on alerting (what was pending goes out again).
            self.autonomous = False
            pending = [Planned(r[0], from_payload(r[12])) for r in rows if r[8] == "pending"]
            self._pending = pending
            await self.go_autonomous(acked_seq=None)
            raise
        await self.db.write([(SET_STATUS, [("handed", r[0]) for r in rows])])
        self.autonomous = False
        self.notifier.new_status = "delegated"
        log.warning("central reachable again: handed %d notification(s) and %d open problem(s) over (central "
                    "confirmed %s); poller %s no longer alerts on its own", len(rows), len(events),
                    answer.get("adopted"), self.node.name)
