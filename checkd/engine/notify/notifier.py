"""The notifier: which notifications an event change, an acknowledgement or the
passing of time calls for.

Every decision is written to notification_log as `pending` in the same
transaction as the change that caused it (with the event's own progress:
state notified, rounds, escalation level), and handed to the dispatcher only
after that commit. So a result replayed after a restart finds the decision
already made, and a decision is never lost: at start-up, pending rows are
sent again. A (event, kind, contact, channel, number) key is unique, in
memory and in the table, so nothing is decided twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from typing import Any

from checkd.config.model import Contact, Host, Notify, Objects, Service
from checkd.engine.db import Op
from checkd.engine.events import Events
from checkd.engine.ids import SET_META
from checkd.engine.nflog import ADOPT, INSERT, ROOM, LogRow, from_payload, to_payload
from checkd.engine.notify import recipients as rc
from checkd.engine.notify import stages
from checkd.engine.notify.notification import Channel, Kind, Notification
from checkd.engine.store import UPSERT_EVENT, Event, Store
from checkd.states import state_name

log = logging.getLogger(__name__)
PAGED = frozenset({Kind.PROBLEM, Kind.ESCALATION, Kind.ACKNOWLEDGEMENT, Kind.RECOVERY})  # pagerduty, opsgenie



@dataclasses.dataclass(frozen=True, slots=True)
class Planned:
    row_id: int
    n: Notification


@dataclasses.dataclass(slots=True)
class Plan:
    ops: list[Op] = dataclasses.field(default_factory=list)
    notes: list[Planned] = dataclasses.field(default_factory=list)

    def add(self, other: Plan) -> Plan:
        """This plan followed by `other` (one commit, one hand-over to the dispatcher)."""
        self.ops += other.ops
        self.notes += other.notes
        return self


class Notifier:
    def __init__(self, objs: Objects, store: Store, events: Events, channels: Iterable[Channel],
                 room: str | None = None, system: Notify = Notify()):
        """`system`: who hears about central's own events (a site taken over): `freshness:` contacts."""
        self.objs, self.store, self.events = objs, store, events
        self._system = Host(name=rc.SYSTEM_HOST, address="", site="central", notify=system)
        self.channels = frozenset(channels)
        self.room = room if Channel.JABBER in self.channels else None
        self.keys: dict[int, set[tuple[str, str, str, int]]] = {}   # event -> (kind, contact, channel, number)
        self.told: dict[int, set[str]] = {}                         # event -> contacts told of the problem
        self.next_id = 1
        self.new_status = "pending"         # a poller alerting for central records its decisions "delegated"
        self.via = "central"
        self.site: str | None = None        # a poller sees its own site's checks only (stages.Facts)
        # Rows a poller sent about events not open here yet (its spool is on the way).
        self.adopted: dict[int, list[LogRow]] = {}
        self._level_cache: dict[tuple[str, str | None], list[rc.Level]] = {}

    def reconfigure(self, objs: Objects, system: Notify) -> None:
        """A reloaded configuration: who is told, from the next decision on."""
        self.objs = objs
        self._system = Host(name=rc.SYSTEM_HOST, address="", site="central", notify=system)
        self._level_cache.clear()

    def load(self, rows: list[tuple[Any, ...]], meta: dict[str, int]) -> list[Planned]:
        """notification_log rows of open events and pending ones (start-up); returns
        the pending ones, decided before the restart but not confirmed sent."""
        self.next_id = meta.get("next_notification_id", 1)
        pending = []
        for r in map(LogRow._make, rows):
            self.next_id = max(self.next_id, r.id + 1)
            if r.event_id in self.store.open_events:
                self.keys.setdefault(r.event_id, set()).add((r.kind, r.contact, r.channel, r.number))
                if r.kind in (Kind.PROBLEM.value, Kind.ESCALATION.value) and r.contact != ROOM:
                    self.told.setdefault(r.event_id, set()).add(r.contact)
            elif r.status != "pending":
                self.adopted.setdefault(r.event_id, []).append(r)
            if r.status == "pending":
                pending.append(Planned(r.id, from_payload(r.payload)))
        return pending

    # --- what causes notifications --------------------------------------------------

    def on_changes(self, changes: list[tuple[str, Event]], now: float) -> Plan:
        plan = Plan()
        for what, ev in changes:
            if ev.id in self.adopted:
                self._apply_adopted(ev, ev.id, plan)
            if what.startswith("merged:"):
                self._apply_adopted(ev, int(what.partition(":")[2]), plan)
            elif what == "recovery":
                self._recovery(ev, now, plan)
            elif ev.closed is None and what in ("open", "state"):
                self._evaluate(ev, now, plan)
            elif ev.closed is None and what in ("flapping_start", "flapping_stop"):
                kind = Kind.FLAPPINGSTART if what == "flapping_start" else Kind.FLAPPINGSTOP
                self._simple(ev, kind, now, plan, self._level_audience(ev, now))
        return plan

    def adopt(self, rows: list[LogRow]) -> Plan:
        """A poller's notification log from a time it alerted on its own (before its spool
        is replayed): recorded, and never sent again. Rows it had not sent are sent now."""
        plan = Plan()
        logged = []
        for r in rows:
            target = self.store.aliases.get(r.event_id, r.event_id)
            if (r.kind, r.contact, r.channel, r.number) in self.keys.get(target, ()):
                continue                    # known already (the handover was repeated)
            rid, self.next_id = self.next_id, self.next_id + 1
            row = r._replace(id=rid)
            logged.append(row)
            if row.status == "pending":
                plan.notes.append(Planned(rid, dataclasses.replace(from_payload(row.payload), log_id=rid,
                                                                   via=self.via)))
            ev = self.store.open_events.get(target)
            if ev is None:
                self.adopted.setdefault(target, []).append(row)
            else:
                self._take(ev, row, plan)
        if logged:
            plan.ops.append((ADOPT, logged))
            plan.ops.append((SET_META, [("next_notification_id", self.next_id)]))
        return plan

    def _apply_adopted(self, ev: Event, eid: int, plan: Plan) -> None:
        for row in self.adopted.pop(eid, ()):
            self._take(ev, row, plan)

    def _take(self, ev: Event, row: LogRow, plan: Plan) -> None:
        """What a poller already told about `ev`: counted as told here."""
        self.keys.setdefault(ev.id, set()).add((row.kind, row.contact, row.channel, row.number))
        if row.kind in (Kind.PROBLEM.value, Kind.ESCALATION.value) and row.contact != ROOM:
            self.told.setdefault(ev.id, set()).add(row.contact)
        if row.kind == Kind.PROBLEM.value:
            state = json.loads(row.payload).get("state")
            ev.notified_status = rc.STATUS_OF.get(state, ev.notified_status)
            ev.rounds = max(ev.rounds, row.number)
            ev.level = max(ev.level, row.level)     # its audience included the levels already due
            ev.notified_at = max(ev.notified_at, row.created)
        elif row.kind == Kind.ESCALATION.value:
            ev.level = max(ev.level, row.number)
            ev.notified_at = max(ev.notified_at, row.created)
        plan.ops.append((UPSERT_EVENT, [ev.row()]))

    def on_ack(self, ev: Event, now: float) -> Plan:
        """Everyone told of the problem hears who took it; re-notification and escalation stop."""
        plan = Plan()
        told = self.told.get(ev.id, set())
        self._simple(ev, Kind.ACKNOWLEDGEMENT, now, plan,
                     [(self.objs.contacts[c], 1) for c in sorted(told) if c in self.objs.contacts])
        return plan

    def tick(self, now: float) -> Plan:
        """Escalations, re-notifications, and problems held back (mute, downtime, a host
        check settling, a notification period) that may go out now."""
        plan = Plan()
        for ev in list(self.store.open_events.values()):
            self._evaluate(ev, now, plan)
        return plan

    # --- decisions --------------------------------------------------------------------

    def _config(self, ev: Event) -> Host | Service | None:
        if ev.host == rc.SYSTEM_HOST:
            return self._system
        return rc.config_of(self.objs, ev.host, ev.service)

    def _levels(self, ev: Event, cfg: Host | Service) -> list[rc.Level]:
        lv = self._level_cache.get(ev.key)
        if lv is None:
            lv = self._level_cache[ev.key] = rc.levels(self.objs, cfg.notify)
        return lv

    def _evaluate(self, ev: Event, now: float, plan: Plan) -> None:
        """The stages of checkd/engine/notify/stages.py: due, holds, audience (dedup in emit)."""
        cfg = self._config(ev)
        if cfg is None:
            return
        lv = self._levels(ev, cfg)
        d = stages.due(ev, lv, cfg, now)
        if d is None or stages.held(self, ev, cfg, now) is not None:
            return
        due = d.level
        if d.new_state:
            self._round(ev, Kind.PROBLEM, ev.rounds + 1, rc.audience(self.objs, lv, max(due, ev.level), now),
                        now, plan)
            ev.rounds += 1
            ev.level = max(ev.level, due)
        elif due > ev.level:
            for level in lv[ev.level:due]:
                if rc.in_period(self.objs, level.period, now):
                    self._round(ev, Kind.ESCALATION, level.number,
                                [(self.objs.contacts[c], level.number) for c in level.contacts], now, plan)
            ev.level = due
        else:
            self._round(ev, Kind.PROBLEM, ev.rounds + 1, rc.audience(self.objs, lv, ev.level, now), now, plan)
            ev.rounds += 1
        ev.notified_status, ev.notified_at = ev.status, now
        plan.ops.append((UPSERT_EVENT, [ev.row()]))

    def _recovery(self, ev: Event, now: float, plan: Plan) -> None:
        told = self.told.pop(ev.id, set())
        already = any(k[0] == Kind.RECOVERY.value for k in self.keys.get(ev.id, ()))   # a poller sent it
        if told and not already and stages.held(self, ev, self._config(ev), now, stages.RECOVERY_HOLDS) is None:
            self._simple(ev, Kind.RECOVERY, now, plan,
                         [(self.objs.contacts[c], 1) for c in sorted(told) if c in self.objs.contacts])
        self.keys.pop(ev.id, None)

    def _level_audience(self, ev: Event, now: float) -> list[tuple[Contact, int]]:
        cfg = self._config(ev)
        if cfg is None or stages.held(self, ev, cfg, now, stages.NOTICE_HOLDS) is not None:
            return []
        return rc.audience(self.objs, self._levels(ev, cfg), ev.level, now)

    def _simple(self, ev: Event, kind: Kind, now: float, plan: Plan, who: list[tuple[Contact, int]]) -> None:
        """A one-off notice (recovery, acknowledgement, flapping): numbered by how many came before."""
        if not who:
            return
        number = 1 + max((k[3] for k in self.keys.get(ev.id, ()) if k[0] == kind.value), default=0)
        self._round(ev, kind, number, who, now, plan)

    def _round(self, ev: Event, kind: Kind, number: int, who: list[tuple[Contact, int]], now: float,
               plan: Plan) -> None:
        """One notification per contact and channel (plus the room), each logged pending."""
        cfg = self._config(ev)
        view = self.store.checks.get(ev.key)
        host = self.objs.hosts.get(ev.host)
        base = Notification(
            event_id=ev.id, kind=kind, host=ev.host, service=ev.service,
            state=state_name(ev.service, ev.status), site=host.site if host else "",
            output=view.output if view else "", contact="", channel=Channel.EMAIL, address="",
            since=ev.opened, created=now, long_output=view.long_output if view else "",
            author=(ev.ack_author or "") if kind is Kind.ACKNOWLEDGEMENT else "",
            comment=(ev.ack_comment or "") if kind is Kind.ACKNOWLEDGEMENT else "",
            runbook=(cfg.runbook or (host.runbook if host else "")) if cfg else "",
            notes=(cfg.notes or (host.notes if host else "")) if cfg else "", via=self.via)
        self.emit(base, number, who, ev.status, now, plan, self.keys.setdefault(ev.id, set()),
                  room_level=number if kind is Kind.ESCALATION else ev.level)

    def emit(self, base: Notification, number: int, who: list[tuple[Contact, int]], status: int, now: float,
             plan: Plan, keys: set[tuple[str, str, str, int]], room_level: int = 1) -> None:
        """`base` to each contact in `who` that wants it, on each of its channels (plus the room),
        each logged pending; `keys` holds what was decided already and is never decided twice."""
        kind = base.kind
        rows = []
        targets: list[tuple[str, int, Channel, str]] = []
        for contact, level in who:
            if not rc.reachable(self.objs, contact, kind, base.service, status, now):
                continue
            for channel, address in self._addresses(contact, kind):
                targets.append((contact.name, level, channel, address))
        if self.room and targets:
            targets.append((ROOM, room_level, Channel.JABBER, self.room))
        for name, level, channel, address in targets:
            key = (kind.value, name, channel.value, number)
            if key in keys:
                continue                    # decided before (a replay): never twice
            keys.add(key)
            if kind in (Kind.PROBLEM, Kind.ESCALATION) and name != ROOM:
                self.told.setdefault(base.event_id, set()).add(name)
            rid, self.next_id = self.next_id, self.next_id + 1
            n = dataclasses.replace(base, contact=name, channel=channel, address=address, escalation_level=level,
                                    log_id=rid, template=self._template(name, channel))
            rows.append(LogRow(rid, base.event_id, kind.value, name, channel.value, number, level, now,
                               self.new_status, None, 0, None, to_payload(n)))
            plan.notes.append(Planned(rid, n))
        if rows:
            plan.ops.append((INSERT, rows))
            plan.ops.append((SET_META, [("next_notification_id", self.next_id)]))

    def configured(self, contact: str, channel: Channel) -> tuple[str, str] | None:
        """Where this configuration sends `contact` on `channel`: (address, webhook template), or
        None when it has no such contact or channel. A poller's handed-over row goes there, never
        to an address its payload names (docs/security-input.md)."""
        if contact == ROOM:
            return (self.room, "") if channel is Channel.JABBER and self.room else None
        c = self.objs.contacts.get(contact)
        address = getattr(c, channel.value, None) if c is not None and channel in self.channels else None
        return (address, self._template(contact, channel)) if address else None

    def _template(self, name: str, channel: Channel) -> str:
        contact = self.objs.contacts.get(name)
        return contact.webhook_template if contact is not None and channel is Channel.WEBHOOK else ""

    def _addresses(self, contact: Contact, kind: Kind) -> list[tuple[Channel, str]]:
        """Where `contact` hears of `kind`: PagerDuty and Opsgenie only of problems, escalations,
        acknowledgements and recoveries (paging tools have no flapping or downtime notices)."""
        out = []
        if contact.email and Channel.EMAIL in self.channels:
            out.append((Channel.EMAIL, contact.email))
        if contact.jabber and Channel.JABBER in self.channels:
            out.append((Channel.JABBER, contact.jabber))
        if contact.webhook and Channel.WEBHOOK in self.channels:
            out.append((Channel.WEBHOOK, contact.webhook))
        for channel in (Channel.PAGERDUTY, Channel.OPSGENIE, Channel.SLACK):
            address = getattr(contact, channel.value)
            if address and channel in self.channels and (channel is Channel.SLACK or kind in PAGED):
                out.append((channel, address))
        return out
