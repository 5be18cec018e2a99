"""Downtime notices, with Nagios' semantics: DOWNTIMESTART when a scheduled downtime
begins, DOWNTIMEEND when it runs to its end, DOWNTIMECANCELLED when it is deleted
while in effect; to the object's own contacts that want `downtime` notices.

A downtime's phase (scheduled -> active -> ended) is written in the same transaction
as the notices its step causes, so a restart never tells a step twice or skips one.
"""

from __future__ import annotations

import dataclasses

from checkd.engine.notify import recipients as rc
from checkd.engine.notify.notification import Channel, Kind, Notification
from checkd.engine.notify.notifier import Notifier, Plan
from checkd.engine.store import UPDATE_PHASE, Downtime, Phase, Store
from checkd.states import state_name


class DowntimeNotices:
    """Moves downtimes through their phases (`tick`, `added`, `deleted`) and decides the
    notices; the notifier logs and numbers them like every other notification."""

    def __init__(self, notifier: Notifier):
        self.notifier = notifier

    @property
    def store(self) -> Store:
        return self.notifier.store

    def tick(self, now: float) -> Plan:
        """Every second: downtimes whose end or start has come. Ends first, so back-to-back
        downtimes read END then START, and overlapping ones tell their check once."""
        plan = Plan()
        downtimes = sorted(self.store.downtimes.values(), key=lambda d: d.id)
        for dt in downtimes:
            if dt.phase is Phase.ACTIVE and now >= dt.over:
                self._end(dt, Kind.DOWNTIMEEND, now, plan)
        for dt in downtimes:
            window = dt.window()
            if dt.phase is not Phase.SCHEDULED:
                continue
            if window is not None and now >= window[0]:
                self._start(dt, now, plan)
            elif window is None and now > dt.end:
                self._set(dt, Phase.ENDED, plan)    # flexible, and the check never failed in its window
        return plan

    def added(self, dt: Downtime, now: float) -> Plan:
        """A downtime just scheduled: told at once when it starts now."""
        plan = Plan()
        window = dt.window()
        if dt.phase is Phase.SCHEDULED and window is not None and now >= window[0]:
            self._start(dt, now, plan)
        return plan

    def deleted(self, dt: Downtime, now: float) -> Plan:
        """A downtime deleted (already out of the store): cancelled if it was in effect. One
        whose end has just passed (before the next tick saw it) ended rather than was cancelled."""
        plan = Plan()
        if dt.phase is Phase.ACTIVE and not self._others_active(dt):
            self._notify(dt, Kind.DOWNTIMEEND if now >= dt.over else Kind.DOWNTIMECANCELLED, now, plan)
        return plan

    # --- steps --------------------------------------------------------------------------

    def _start(self, dt: Downtime, now: float, plan: Plan) -> None:
        if now >= dt.over:
            # The whole window passed while central was down: nothing to announce any more.
            self._set(dt, Phase.ENDED, plan)
            return
        nested = self._others_active(dt)        # the check is in downtime already: told then
        self._set(dt, Phase.ACTIVE, plan)
        if not nested:
            self._notify(dt, Kind.DOWNTIMESTART, now, plan)

    def _end(self, dt: Downtime, kind: Kind, now: float, plan: Plan) -> None:
        self._set(dt, Phase.ENDED, plan)
        if not self._others_active(dt):         # still in another downtime: told when that ends
            self._notify(dt, kind, now, plan)

    def _others_active(self, dt: Downtime) -> bool:
        """Another downtime of the same host or service in effect (Nagios' downtime depth)."""
        return any(d.id != dt.id and d.phase is Phase.ACTIVE and (d.host, d.service) == (dt.host, dt.service)
                   for d in self.store.downtimes.values())

    def _set(self, dt: Downtime, phase: Phase, plan: Plan) -> None:
        self.store.put_downtime(dataclasses.replace(dt, phase=phase))
        plan.ops.append((UPDATE_PHASE, [(phase.value, dt.id)]))

    def _notify(self, dt: Downtime, kind: Kind, now: float, plan: Plan) -> None:
        """As Nagios: not when notifications are off for the object (or `dis`, a rollout), nor
        outside its notification_period; the contact filters are the notifier's."""
        n, objs, store = self.notifier, self.notifier.objs, self.store
        cfg = rc.config_of(objs, dt.host, dt.service)
        host = objs.hosts.get(dt.host)
        if cfg is None or host is None or not cfg.notify.notifications_enabled:
            return
        if store.muted(dt.host, dt.service, now, downtimes=False) or \
                not rc.in_period(objs, cfg.notify.notification_period, now):
            return
        view = store.checks.get((dt.host, dt.service))
        status = view.status if view else 0
        event = store.open_event((dt.host, dt.service))
        base = Notification(
            event_id=event.id if event else 0, kind=kind, host=dt.host, service=dt.service,
            state=state_name(dt.service, status), site=host.site, output=view.output if view else "",
            contact="", channel=Channel.EMAIL, address="", since=dt.start, created=now,
            long_output=view.long_output if view else "", author=dt.author, comment=dt.comment,
            runbook=cfg.runbook or host.runbook, notes=cfg.notes or host.notes, via=n.via,
            downtime_id=dt.id, until=dt.end)
        # Numbered by the downtime: (event, kind, contact, channel, downtime) is unique in the log.
        n.emit(base, dt.id, rc.audience(objs, rc.levels(objs, cfg.notify), 1, now), status, now, plan, set())
