"""What an operator can do at a poller while it alerts on its own (docs/failover.md,
"Acting at a poller while central is down"): acknowledge, disable and enable
notifications, run a check now. The poller's chat bot and its HTTP API are thin layers
over these, as central's are over central/operations.py (both are ChatActions).

Each change is applied to the poller's own engine and written, with who and when, to
its operator log (checkd/engine/oplog.py) in the same transaction; the log is handed
to central with the notification log when central is back, and central adopts it
once. While central answers, changes are refused: they belong to central.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from checkd import bounds
from checkd.actions import OpError, target_name
from checkd.bounds import checked
from checkd.config.model import Objects
from checkd.engine import history, oplog
from checkd.engine.db import Op
from checkd.engine.notify.notifier import Plan
from checkd.engine.store import DELETE_MUTE, UPSERT_MUTE, CheckView, Event, Mute
from checkd.result import CheckKey

if TYPE_CHECKING:
    from checkd.autonomy import LocalAlerting

log = logging.getLogger(__name__)


class PollerActions:
    def __init__(self, alerting: LocalAlerting, objects: Callable[[], Objects],
                 run_now: Callable[[CheckKey], bool]):
        """`objects`: the configuration in force (a reload swaps it); `run_now`: the
        scheduler's reschedule (False for a check this poller does not run)."""
        self.alerting, self.objects, self.run_now = alerting, objects, run_now
        self.engine, self.store = alerting.engine, alerting.engine.store
        self.name, self.site = alerting.node.name, alerting.node.site
        self._watchers: dict[CheckKey, list[tuple[float, asyncio.Future[CheckView]]]] = {}

    def _acting(self) -> None:
        if not self.alerting.autonomous:
            raise OpError(f"central is reachable ({self.alerting.node.central}): act there; poller {self.name} "
                          "takes actions only while it alerts on its own", 409)

    async def _record(self, ops: list[Op], action: oplog.Action, plan: Plan | None = None) -> None:
        await self.engine.commit(ops + [(oplog.INSERT, [action.row()])], plan if plan is not None else Plan())

    # --- targets ----------------------------------------------------------------------

    def target(self, host: str, service: str | None) -> tuple[str, str | None]:
        """A host (and service) of this poller's site, names exactly as configured."""
        objs = self.objects()
        h = objs.hosts.get(host)
        if h is None or h.site != self.site:
            raise OpError(f"unknown host {host!r} (this poller runs site {self.site})", 404)
        if service is not None and (host, service) not in objs.services:
            raise OpError(f"unknown service {service!r} on host {host!r}", 404)
        return host, service

    def open_event(self, eid: int) -> Event:
        ev = self.store.open_events.get(eid)
        if ev is None:
            raise OpError(f"no open event {eid} here (it recovered, or the ID is wrong: see wassup)", 404)
        return ev

    async def event_target(self, eid: int) -> tuple[str, str | None]:
        ev = self.store.open_events.get(eid)
        if ev is not None:
            return self.target(ev.host, ev.service)
        await self.engine.db.write([])           # reads wait for queued writes
        key = await asyncio.to_thread(history.event_key, self.engine.db, eid)
        if key is None:
            raise OpError(f"no event {eid} here (see wassup for the IDs of open problems)", 404)
        return self.target(*key)

    # --- operations -------------------------------------------------------------------

    async def ack(self, eid: int, author: str, comment: str, sticky: bool = True,
                  expires: float | None = None) -> Event:
        acked, _ = await self.ack_many([eid], author, comment, sticky, expires)
        return acked[0]

    async def ack_many(self, eids: list[int], author: str, comment: str, sticky: bool = True,
                       expires: float | None = None) -> tuple[list[Event], list[int]]:
        """As at central: whoever was told hears who took it; re-notification and escalation stop."""
        self._acting()
        checked(bounds.text, comment, "comment", bounds.MAX_COMMENT)
        checked(bounds.text, author, "author", bounds.MAX_NAME)
        now = time.time()
        acked = [ev for eid in dict.fromkeys(eids) if (ev := self.store.open_events.get(eid)) is not None]
        missing = [eid for eid in dict.fromkeys(eids) if eid not in self.store.open_events]
        if not acked:
            raise OpError(f"no open event {', '.join(map(str, missing))} here (it recovered, or the ID is wrong: "
                          "see wassup)", 404)
        ops, plan = self.engine.acknowledge(acked, author, comment, now, sticky, expires)
        ops.append((oplog.INSERT, [oplog.Action(0, now, "ack", ev.id, ev.host, ev.service, author, comment, expires,
                                                sticky).row() for ev in acked]))
        await self.engine.commit(ops, plan)
        log.warning("event(s) %s acknowledged at poller %s by %s (central unreachable): %s",
                    ", ".join(str(ev.id) for ev in acked), self.name, author, comment)
        return acked, missing

    def problems_of(self, host: str) -> list[int]:
        self.target(host, None)
        return [ev.id for ev in sorted(self.store.open_events.values(), key=lambda e: e.id) if ev.host == host]

    async def set_notifications(self, host: str, service: str | None, enabled: bool, duration: float | None,
                                author: str) -> Mute | None:
        self._acting()
        host, service = self.target(host, service)
        checked(bounds.text, author, "author", bounds.MAX_NAME)
        if duration is not None:
            checked(bounds.span, duration, "duration")
        now = time.time()
        if enabled:
            ops: list[Op] = [(DELETE_MUTE, [(host, service or "")])]
            mute = None
        else:
            mute = Mute(host, service, None if duration is None else now + duration, author)
            ops = [(UPSERT_MUTE, [(host, service or "", mute.until, author)])]
        action = oplog.Action(0, now, "ena" if enabled else "dis", None, host, service, author,
                              until=mute.until if mute else None)
        await self._record(ops, action)
        if mute is None:                    # in memory once stored
            self.store.mutes.pop((host, service), None)
        else:
            self.store.mutes[(host, service)] = mute
        log.warning("notifications %s for %s at poller %s by %s (central unreachable)",
                    "enabled" if enabled else "disabled", target_name(host, service), self.name, author)
        return mute

    async def reschedule(self, host: str, service: str | None, author: str) -> list[str]:
        """The check runs now here; while central is away the request is logged for it too."""
        host, service = self.target(host, service)
        if not self.run_now((host, service)):
            raise OpError(f"{target_name(host, service)} is not run by poller {self.name}", 409)
        if self.alerting.autonomous:
            ev = self.store.open_event((host, service))
            await self._record([], oplog.Action(0, time.time(), "resched", ev.id if ev else None, host, service,
                                                author, f"check run at poller {self.name}"))
        return [self.name]

    def next_result(self, host: str, service: str | None, after: float) -> asyncio.Future[CheckView]:
        fut: asyncio.Future[CheckView] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault((host, service), []).append((after, fut))
        return fut

    def result_seen(self, view: CheckView) -> None:
        """Each result the poller's engine applied: wakes whoever waits for it."""
        waiting = self._watchers.pop((view.host, view.service), None)
        if not waiting:
            return
        left = [(after, fut) for after, fut in waiting if not fut.done()]
        for after, fut in left:
            if view.last_check > after:
                fut.set_result(view)
        left = [(after, fut) for after, fut in left if not fut.done()]
        if left:
            self._watchers[(view.host, view.service)] = left
