"""The notification decision as named stages, asked in this order for an open problem:

1. due: is anything to tell (a new state, a level reached, the re-notification interval passed)?
2. holds: is it held back for now (HOLDS, in order; the first that holds names why)?
3. audience: who (the levels due, each contact reachable now: recipients.audience/reachable).
4. dedup: an (event, kind, contact, channel, number) is never decided twice (Notifier.emit).

An acknowledged problem stops at 1. A hold is not a refusal: the ticker asks again every
second, so a problem held by a failing dependency, a mute, a downtime, a settling host check,
a notification period or its first_notification_delay goes out when the hold ends (Nagios'
behaviour).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

from checkd import dependencies as deps
from checkd.config.model import Host, Objects, Service
from checkd.engine.events import Events
from checkd.engine.notify import recipients as rc
from checkd.engine.store import Event, Store
from checkd.result import CheckKey
from checkd.states import HostStatus, StateType

HOST_HOLD_MAX = 300.0           # longest a problem waits for its host's (or master's) check to settle


class Facts(Protocol):
    """What the stages read: the configuration in force and the live state (the Notifier).
    `site`: the one site whose checks this engine sees (a poller), None for central (all)."""
    objs: Objects
    store: Store
    events: Events
    site: str | None


# --- 1. due --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class Due:
    level: int                  # the highest escalation level reached by now
    new_state: bool             # a state not told yet (else: an escalation or a re-notification)


def due(ev: Event, levels: list[rc.Level], cfg: Host | Service, now: float) -> Due | None:
    """Runs for every open event every second: the cheap test first."""
    if ev.acknowledged:
        return None
    level = 1 if len(levels) == 1 else max(lv.number for lv in levels if now >= ev.opened + lv.after)
    every = levels[min(ev.level, len(levels)) - 1].every     # min: the config may have lost a level since
    interval = cfg.notify.notification_interval if every is None else every
    if (ev.notified_status == ev.status and level <= ev.level
            and not (interval > 0 and now >= ev.notified_at + interval)):
        return None
    return Due(level, ev.notified_status != ev.status)


# --- 2. holds ------------------------------------------------------------------------------

Test = Callable[[Facts, Event, Host | Service | None, float], bool]   # cfg None: gone from the config


def disabled(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    return cfg is None or not cfg.notify.notifications_enabled


def flapping(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    """While a check flaps only the flapping notices themselves go out."""
    return ev.flapping


def inhibited_by_host(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    """A service problem while its host's event is open is not a problem of its own."""
    return f.events.suppressed(ev)


def parents_down(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    """A host problem behind parents that are all failing is theirs, not its own (Nagios'
    UNREACHABLE): told when a parent is back and the host still fails. Its UNREACHABLE state
    waits for the host's next check, which the poller runs when a parent recovers."""
    if ev.service is None and isinstance(cfg, Host) and cfg.parents:
        if ev.status == HostStatus.UNREACHABLE:
            return True
        views = [f.store.checks.get((p, None)) for p in cfg.parents]
        return all(v is not None and v.status != 0 for v in views)
    return False


def dependency_failing(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    """A master in one of its dependency's notification_failure_criteria (checkd/dependencies.py)."""
    return ev.key in f.objs.dependencies and \
        deps.failing(f.objs, ev.key, deps.DependencyKind.NOTIFICATION, _seen_in(f.store), now, f.site) is not None


def muted(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    """Notifications disabled for the host or service (chat, API, web) or a rollout."""
    return f.store.muted(ev.host, ev.service, now, downtimes=False)


def in_downtime(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    return bool(f.store.downtimes) and f.store.in_downtime(ev.host, ev.service, now)


def host_settling(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    """A service problem while its host's check is failing but not yet HARD: wait, so
    a host going down is told once for the host, not once per service."""
    if ev.service is None:
        return False
    hv = f.store.checks.get((ev.host, None))
    host = f.objs.hosts.get(ev.host)
    if hv is None or host is None or hv.status == 0 or hv.state_type is not StateType.SOFT:
        return False
    hold = min(HOST_HOLD_MAX, host.schedule.max_attempts * host.schedule.retry_interval + 30)
    return now - ev.opened < hold


def dependency_settling(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    """A master failing SOFT in a state its dependency holds on: wait for its check to settle,
    as for a host, so a database going down is told once, not once per web service."""
    if ev.key not in f.objs.dependencies:
        return False
    dep = deps.settling(f.objs, ev.key, _seen_in(f.store), now, f.site)
    master = None if dep is None else rc.config_of(f.objs, *dep.master)
    if master is None:
        return False
    return now - ev.opened < min(HOST_HOLD_MAX, master.schedule.max_attempts * master.schedule.retry_interval + 30)


def outside_period(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    return cfg is not None and not rc.in_period(f.objs, cfg.notify.notification_period, now)


def first_delay(f: Facts, ev: Event, cfg: Host | Service | None, now: float) -> bool:
    """Nagios' first_notification_delay: the first problem notification waits this long after
    the problem turned HARD; one that recovers sooner is never told."""
    return cfg is not None and ev.rounds == 0 and now < ev.opened + cfg.notify.first_notification_delay


def _seen_in(store: Store) -> deps.StateOf:
    """The store's views as the dependency rules read them."""
    def state_of(key: CheckKey) -> deps.Seen | None:
        v = store.checks.get(key)
        return None if v is None or v.last_check == 0 else deps.Seen(v.status, v.state_type is StateType.HARD)
    return state_of


HOLDS: tuple[tuple[str, Test], ...] = (
    ("notifications disabled", disabled),
    ("flapping", flapping),
    ("inhibited by its host", inhibited_by_host),
    ("parents down", parents_down),
    ("dependency failing", dependency_failing),
    ("muted", muted),
    ("in downtime", in_downtime),
    ("host check settling", host_settling),
    ("dependency settling", dependency_settling),
    ("outside the notification period", outside_period),
    ("first notification delay", first_delay),
)
# The flapping notices themselves: held by the same, except flapping, settling, period and delay.
NOTICE_HOLDS = tuple(h for h in HOLDS if h[1] in (disabled, inhibited_by_host, parents_down, dependency_failing,
                                                   muted, in_downtime))
# A recovery is told to whoever heard of the problem, unless it flaps or is silenced now.
RECOVERY_HOLDS = tuple(h for h in HOLDS if h[1] in (flapping, muted, in_downtime))


def held(f: Facts, ev: Event, cfg: Host | Service | None, now: float,
         holds: tuple[tuple[str, Test], ...] = HOLDS) -> str | None:
    """Why nothing about this problem goes out now (None: nothing holds it)."""
    for name, test in holds:
        if test(f, ev, cfg, now):
            return name
    return None
