"""Events: the step after the store. A HARD non-OK state opens an event with a
unique ID, changes within the problem are recorded in its history, recovery
closes it. A service problem on a DOWN host is linked to the host's event
(not a problem of its own); flapping starts and stops are recorded.
"""

from __future__ import annotations

from checkd.engine.db import INSERT_FIRST_RESULT, Op
from checkd.engine.ids import EventIds
from checkd.engine.store import INSERT_ALIAS, INSERT_HISTORY, UPSERT_EVENT, CheckView, Event, Store
from checkd.result import CheckKey, CheckResult
from checkd.states import StateType



class EventError(Exception):
    """An operation on an event that cannot be done (unknown or closed)."""


class Events:
    def __init__(self, store: Store, ids: EventIds):
        self.store, self.ids = store, ids
        # (what, event) since the last take_changes(): what the notifier looks at.
        self.changes: list[tuple[str, Event]] = []

    def take_changes(self) -> list[tuple[str, Event]]:
        changes, self.changes = self.changes, []
        return changes

    def on_result(self, view: CheckView, prev_flapping: bool, poller: str, hint: int | None,
                  ts: float) -> list[Op]:
        """`view` already holds the new result; returns the ops recording its event side."""
        ops: list[Op] = []
        history: list[tuple[object, ...]] = []
        ev = self.store.open_event((view.host, view.service))
        if ev is not None and ts < ev.opened:
            # From before the problem began: a poller's spool replayed after its open problem was
            # adopted (its results before the problem must not recover it).
            view.event_id = ev.id
            return ops
        problem = view.status != 0
        changed: Event | None = None
        if ev is None:
            if problem and view.state_type is StateType.HARD:
                ev = self._open(view, poller, hint, ts, ops, history)
                changed = ev
                self.changes.append(("open", ev))
        else:
            if hint is not None and hint != ev.id and self.ids.poller_may_use(poller, hint):
                self._merge(ev, hint, poller, view.status, ts, ops, history)
            if not problem:
                ev.closed, ev.status = ts, view.status
                history.append((ev.id, ts, "recovery", view.status, view.output, None))
                del self.store.open_events[ev.id]
                del self.store.open_by_key[ev.key]
                changed = ev
                self.changes.append(("recovery", ev))
            elif view.status != ev.status:
                history.append((ev.id, ts, "state", view.status, view.output, None))
                if ev.acknowledged and not ev.ack_sticky:
                    # Nagios: an acknowledgement that is not sticky ends with any change of state.
                    _clear_ack(ev)
                    history.append((ev.id, ts, "ack_ended", view.status, "not sticky: the state changed", None))
                ev.status = view.status
                changed = ev
                self.changes.append(("state", ev))
        if ev is not None and view.flapping != prev_flapping:
            ev.flapping = view.flapping
            history.append((ev.id, ts, "flapping_start" if view.flapping else "flapping_stop", view.status,
                            view.output, None))
            changed = ev
            self.changes.append(("flapping_start" if view.flapping else "flapping_stop", ev))
        view.event_id = ev.id if ev is not None and ev.closed is None else None
        if changed is not None:
            ops.append((UPSERT_EVENT, [changed.row()]))
        if history:
            ops.append((INSERT_HISTORY, history))
        return ops

    def _merge(self, ev: Event, hint: int, poller: str, status: int, ts: float, ops: list[Op],
               history: list[tuple[object, ...]]) -> None:
        """The poller alerted on its own and named this problem differently (split brain):
        one event, known by both IDs, told, acknowledged and recovered once."""
        self.ids.used_poller_ids.add(hint)
        self.store.aliases[hint] = ev.id
        ops.append((INSERT_ALIAS, [(hint, ev.id)]))
        history.append((ev.id, ts, "merged", status, f"{poller} alerted it as [ID#:{hint}]", poller))
        self.changes.append((f"merged:{hint}", ev))

    def adopt(self, poller: str, eid: int, key: CheckKey, status: int, opened: float, flapping: bool,
              ts: float) -> list[Op]:
        """A problem a poller had open when it handed over after alerting on its own: open here
        under the poller's ID before its results are replayed, so a result of central's own
        (a takeover) joins it instead of opening a second event; merged when central has one."""
        ops: list[Op] = []
        history: list[tuple[object, ...]] = []
        ev = self.store.open_event(key)
        if ev is not None:
            if eid != ev.id and self.ids.poller_may_use(poller, eid):
                self._merge(ev, eid, poller, status, ts, ops, history)
        elif self.ids.poller_may_use(poller, eid):
            view = self.store.check(*key)
            problem = CheckView(key[0], key[1], status=status, flapping=flapping)
            ev = self._open(problem, poller, eid, opened, ops, history)
            history.append((eid, ts, "adopted", status, f"opened by {poller} while central was unreachable",
                            poller))
            view.event_id = eid
            ops.append(view.op())
            ops.append((UPSERT_EVENT, [ev.row()]))
            self.changes.append(("open", ev))
        if history:
            ops.append((INSERT_HISTORY, history))
        return ops

    def _open(self, view: CheckView, poller: str, hint: int | None, ts: float, ops: list[Op],
              history: list[tuple[object, ...]]) -> Event:
        if hint is not None and self.ids.poller_may_use(poller, hint):
            # An ID the poller took from its reserved block while alerting on its own.
            eid, source = hint, poller
            self.ids.used_poller_ids.add(hint)
        else:
            eid, id_ops = self.ids.allocate()
            ops.extend(id_ops)
            source = "central"
        ev = Event(eid, view.host, view.service, ts, view.status, flapping=view.flapping, source=source)
        history.append((eid, ts, "open", view.status, view.output, None))
        if view.service is not None:
            host_ev = self.store.open_event((view.host, None))
            if host_ev is not None:
                ev.parent_id = host_ev.id
                history.append((eid, ts, "linked", view.status, f"host {view.host} is down", None))
        else:
            # The host went down: its services' open problems become part of this one.
            linked = []
            for child in self.store.open_events.values():
                if child.host == view.host and child.service is not None and child.parent_id != eid:
                    child.parent_id = eid
                    linked.append(child.row())
                    history.append((child.id, ts, "linked", child.status, f"host {view.host} is down", None))
            if linked:
                ops.append((UPSERT_EVENT, linked))
        self.store.open_events[eid] = ev
        self.store.open_by_key[ev.key] = eid
        return ev

    def suppressed(self, ev: Event) -> bool:
        """A service problem while its host's event is open is not a problem of its own."""
        return ev.parent_id is not None and ev.parent_id in self.store.open_events

    def ack(self, eid: int, author: str, comment: str, ts: float, sticky: bool = True,
            expires: float | None = None) -> list[Op]:
        """Acknowledge an open event: until it recovers (sticky), or until its state changes
        (not sticky, Nagios); and, with `expires`, at the latest until then."""
        ev = self.store.open_events.get(eid)
        if ev is None:
            raise EventError(f"event {eid} is not open")
        ev.acknowledged, ev.ack_author, ev.ack_comment = True, author, comment
        ev.ack_sticky, ev.ack_expires = sticky, expires
        return [(UPSERT_EVENT, [ev.row()]), (INSERT_HISTORY, [(eid, ts, "ack", ev.status, comment, author)])]

    def unack(self, eid: int, author: str, ts: float) -> list[Op]:
        ev = self.store.open_events.get(eid)
        if ev is None:
            raise EventError(f"event {eid} is not open")
        _clear_ack(ev)
        return [(UPSERT_EVENT, [ev.row()]), (INSERT_HISTORY, [(eid, ts, "unack", ev.status, "", author)])]

    def expire_acks(self, now: float) -> list[Op]:
        """Acknowledgements past their expiry end: re-notification and escalation resume."""
        lapsed = [ev for ev in self.store.open_events.values()
                  if ev.acknowledged and ev.ack_expires is not None and ev.ack_expires <= now]
        for ev in lapsed:
            _clear_ack(ev)
        if not lapsed:
            return []
        return [(UPSERT_EVENT, [ev.row() for ev in lapsed]),
                (INSERT_HISTORY, [(ev.id, now, "ack_expired", ev.status, "the acknowledgement expired", None)
                                  for ev in lapsed])]


def _clear_ack(ev: Event) -> None:
    ev.acknowledged, ev.ack_author, ev.ack_comment = False, None, None
    ev.ack_sticky, ev.ack_expires = True, None


def apply_result(store: Store, events: Events, source: str, r: CheckResult) -> tuple[CheckView, list[Op]] | None:
    """One result into the store and its event; None when it is older than what the store
    holds (it never overwrites a newer one). Shared by central's ingest and a poller's own
    alerting; `source` (a poller's name, or central) is who ran it unless it says."""
    view = store.check(r.host, r.service)
    finished = r.finished
    if finished < view.last_check:
        return None
    status = r.status
    prev_flapping = view.flapping
    ops: list[Op] = []
    if view.last_check == 0:
        # The check's state is known from here on (availability reports: undetermined before).
        ops.append((INSERT_FIRST_RESULT, [(r.host, r.service or "", finished)]))
    if status != view.status or view.last_check == 0:
        view.last_state_change = finished
    view.status = status
    view.state_type = r.state_type
    view.attempt = r.attempt
    view.output = r.output
    view.long_output = r.long_output
    view.perfdata = r.perfdata
    view.last_check = finished
    view.polled_by = r.polled_by or source
    view.flapping = r.flapping
    if status != 0:
        # A flexible downtime starts when its check fails within its window (Nagios), before
        # the event's decisions, so the problem it covers is held from its first moment.
        ops += store.trigger_flexible(r.host, r.service, finished)
    if status != 0 or view.event_id is not None or view.flapping != prev_flapping:
        ops += events.on_result(view, prev_flapping, source, r.event_id, finished)
    return view, ops
