"""A poller's own alerting, for when central cannot be reached.

The poller runs the same alerting engine as central (checkd/engine/) on its own
results all the time (a small SQLite file in its state directory), so that when
it has to alert on its own it knows which problems are open, under which event
IDs, and who has been told:

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
from collections.abc import Callable
from typing import Any

from checkd.config.model import Objects
from checkd.config.node import NodeConfig
from checkd.engine import decisions, oplog
from checkd.engine.db import Op, SqliteDatabase
from checkd.engine.engine import Engine
from checkd.engine.events import apply_result
from checkd.engine.ids import NoIds, PollerIds
from checkd.engine.notify import channels
from checkd.engine import nflog
from checkd.engine.nflog import from_payload
from checkd.engine.notify.notifier import Planned
from checkd.engine.store import CheckView
from checkd.forwarder import Forwarder, PostError
from checkd.result import CheckResult

log = logging.getLogger(__name__)

BLOCK = 1000                    # event IDs asked for at a time
LOW_WATER = 200                 # ask for more below this many
RESERVE_RETRY = 30.0            # after central refused a reservation (an error answer)


class LocalAlerting:
    def __init__(self, node: NodeConfig, objs: Objects):
        self.node, self.objs = node, objs
        self.ids = PollerIds()
        self.via = f"{node.site} poller, central unreachable"
        self.engine = Engine(SqliteDatabase(node.state_dir / "alerts.sqlite"), objs, channels.build(node, objs), self.ids,
                             via=self.via, decided="delegated", site=node.site)
        self.engine.deliver = self._deliver
        self.db, self.store = self.engine.db, self.engine.store
        self.autonomous = False
        self._reserve_refused = float("-inf")     # when central last answered a reservation with an error
        self._no_ids_logged = False
        self.last_seq: Any = lambda: 0          # the spool's newest seq (set by the poller)
        self.result_seen: Callable[[CheckView], None] | None = None     # operators waiting for a check

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.engine.load, nflog.DELEGATED_SCHEMA + decisions.TOLD_SCHEMA + oplog.SCHEMA,
                                False)
        # Who central told of each problem: acknowledgement and recovery notices reach them.
        decisions.load_told(await asyncio.to_thread(self.db.read, decisions.LOAD_TOLD), self.engine.notifier.told)
        self.engine.start_writing()
        await self.engine.run(sending=False)
        if self.engine.pending:
            # Decided while alerting on its own before a restart, not confirmed sent.
            await self.go_autonomous(acked_seq=None)

    async def stop(self) -> None:
        await self.engine.stop()

    def reconfigure(self, objs: Objects) -> None:
        """A reloaded configuration: who is told, from the next decision on."""
        self.objs = objs
        self.engine.reconfigure(objs)

    # --- every result, before it is spooled ----------------------------------------------

    def process(self, result: CheckResult) -> tuple[CheckResult, list[Op], list[Planned]]:
        """Apply one result; returns it with its event's ID (central opens the event under
        that ID), and the ops and decisions to commit."""
        try:
            applied = apply_result(self.store, self.engine.events, self.node.name, result)
        except NoIds:
            if not self._no_ids_logged:
                log.warning("no event IDs reserved from central yet: problems are left to central until "
                            "it has been reached once")
                self._no_ids_logged = True
            return result, [], []
        if applied is None:
            return result, [], []
        view, ops = applied
        if self.result_seen is not None:
            self.result_seen(view)
        if view.event_id is not None:
            result = dataclasses.replace(result, event_id=view.event_id)
        plan = self.engine.decide(time.time())
        return result, ops + plan.ops, plan.notes

    async def record(self, ops: list[Op], notes: list[Planned], seq_of: Any) -> int:
        """Commit the decisions, spool the result (`seq_of()` appends it), and note which
        spooled result each delegated notification came from."""
        if ops:
            await self.engine.write(ops)
        seq = await seq_of()
        if notes:
            self._deliver(notes, seq)
        return seq

    # --- alerting on its own ----------------------------------------------------------------

    async def go_autonomous(self, acked_seq: int | None) -> None:
        """Start sending: what central never acknowledged, and everything from now on."""
        if self.autonomous:
            return
        self.autonomous = True
        self.engine.notifier.new_status = "pending"
        await self.engine.start_sending()
        backlog, self.engine.pending = self.engine.pending, []
        if acked_seq is not None:
            backlog += await asyncio.to_thread(self._unconfirmed, acked_seq)
        if backlog:
            await self.engine.write([(nflog.SET_STATUS, [("pending", p.row_id) for p in backlog])])
            self._submit(backlog)
        log.warning("central unreachable: poller %s alerts on its own now (%d notification(s) central "
                    "never got the results for)", self.node.name, len(backlog))

    def _unconfirmed(self, acked_seq: int) -> list[Planned]:
        return [Planned(r.id, from_payload(r.payload)) for r in nflog.unconfirmed(self.db, acked_seq)]

    def _submit(self, notes: list[Planned]) -> None:
        self.engine.submit([Planned(p.row_id, dataclasses.replace(p.n, via=self.via)) for p in notes])

    def _deliver(self, notes: list[Planned], seq: int | None = None) -> None:
        """Committed decisions: sent when alerting on its own; else noted with the spooled
        result they came from (`seq`; the newest for the ticker's), for central to confirm."""
        if self.autonomous:
            self._submit(notes)
        else:
            seq = self.last_seq() if seq is None else seq
            self.engine.db.write([(nflog.INSERT_DELEGATED, [(p.row_id, seq) for p in notes])])

    # --- talking to central again -----------------------------------------------------------

    async def before_post(self, fwd: Forwarder) -> None:
        """Forwarder hook: hand over before anything is replayed; keep event IDs in stock."""
        if self.autonomous:
            await fwd.call("/api/v1/heartbeat", {})     # central really answers (raises if not)
            await self._handover(fwd)
        if self.ids.available() < LOW_WATER and time.monotonic() - self._reserve_refused > RESERVE_RETRY:
            try:
                block = await fwd.call("/api/v1/ids/reserve", {"count": BLOCK})
            except PostError as e:
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
            await self.engine.write(self.ids.add(self.node.name, first, last, time.time()))
            log.info("event IDs %d-%d reserved for alerting on our own", first, last)

    async def _handover(self, fwd: Forwarder) -> None:
        await self.engine.stop_sending()                  # nothing changes while central takes over
        rows = await asyncio.to_thread(nflog.to_hand_over, self.db)
        # What operators did here meanwhile (acks, mutes): central adopts it once.
        actions = [oplog.Action.from_row(r) for r in await asyncio.to_thread(self.db.read, oplog.UNHANDED)]
        # The problems it has open go along: central opens them under the same IDs before a
        # result is replayed, so its own checks (a takeover) join them instead of opening new ones.
        events = [{"id": ev.id, "host": ev.host, "service": ev.service, "status": ev.status,
                   "opened": ev.opened, "flapping": ev.flapping} for ev in self.store.open_events.values()]
        try:
            answer = await fwd.call("/api/v1/notifications/adopt",
                                    {"rows": [r._asdict() for r in rows], "events": events,
                                     "actions": [a.json() for a in actions]})
        except PostError:
            # Not taken over: go on alerting (what was pending goes out again).
            self.autonomous = False
            self.engine.pending = [Planned(r.id, from_payload(r.payload)) for r in rows if r.status == "pending"]
            await self.go_autonomous(acked_seq=None)
            raise
        await self.engine.write([(nflog.SET_STATUS, [("handed", r.id) for r in rows]),
                                 (oplog.MARK_HANDED, [(actions[-1].id,)] if actions else [])])
        self.autonomous = False
        self.engine.notifier.new_status = "delegated"
        log.warning("central reachable again: handed %d notification(s), %d open problem(s) and %d operator "
                    "action(s) over (central confirmed %s); poller %s no longer alerts on its own", len(rows),
                    len(events), len(actions), answer.get("adopted"), self.node.name)
