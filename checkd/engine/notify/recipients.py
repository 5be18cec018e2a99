"""Who is told about an event: escalation levels, contact groups, notification
options and time periods. Pure functions of the configuration and a clock.

Level 1 is the object's own contacts; its `escalations:` are levels 2, 3, ...
A level, once reached, stays in the audience (as Icinga 2's escalations add
to the notification rather than replace it): the night's on-call keeps being
told while their manager is told too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from checkd import mailtags
from checkd.config.model import Contact, Host, Notify, Objects, Service
from checkd.states import HostStatus, Status, state_name
from checkd.timeperiods import active_at
from checkd.engine.notify.notification import DOWNTIME_KINDS, Kind, Notification

SYSTEM_HOST = "@checkd"             # central's own events (a site taken over); not in the config
STATUS_OF = {s.name: int(s) for s in (*Status, *HostStatus)}     # "CRITICAL" -> 2, "DOWN" -> 1


@dataclasses.dataclass(frozen=True, slots=True)
class Level:
    number: int                         # 1: the object's contacts; 2+: escalations
    after: float                        # seconds after the event opened
    contacts: tuple[str, ...]           # contact names, groups expanded, in config order
    every: float | None                 # re-notification interval at this level (None: the object's)
    period: str | None                  # time period when this level is told


def config_of(objs: Objects, host: str, service: str | None) -> Host | Service | None:
    """The object an event belongs to; None when it left the configuration."""
    return objs.hosts.get(host) if service is None else objs.services.get((host, service))


def expand(objs: Objects, contacts: Iterable[str], groups: Iterable[str]) -> tuple[str, ...]:
    names = list(contacts)
    for g in groups:
        group = objs.contact_groups.get(g)
        if group is not None:
            names.extend(group.members)
    return tuple(dict.fromkeys(n for n in names if n in objs.contacts))


def levels(objs: Objects, notify: Notify) -> list[Level]:
    out = [Level(1, 0.0, expand(objs, notify.contacts, notify.contact_groups), None, None)]
    for i, esc in enumerate(sorted(notify.escalations, key=lambda e: e.after), start=2):
        out.append(Level(i, esc.after, expand(objs, esc.contacts, esc.contact_groups), esc.every, esc.period))
    return out


def option_for(kind: Kind, service: str | None, status: int) -> str:
    """The notification option (Nagios' w,c,u,r,f,s / d,u,r,f,s) that lets `kind` through."""
    if kind is Kind.RECOVERY:
        return "recovery"
    if kind in (Kind.FLAPPINGSTART, Kind.FLAPPINGSTOP):
        return "flapping"
    if kind in DOWNTIME_KINDS:
        return "downtime"
    # PROBLEM, ESCALATION, ACKNOWLEDGEMENT: about the problem state itself.
    return state_name(service, status).lower()


def wants(contact: Contact, kind: Kind, service: str | None, status: int) -> bool:
    options = contact.host_states if service is None else contact.service_states
    return option_for(kind, service, status) in options


def in_period(objs: Objects, period: str | None, now: float) -> bool:
    """Local wall-clock time, as Nagios uses the machine's time zone."""
    return active_at(period, now, objs.timeperiods)


def audience(objs: Objects, lv: list[Level], upto: int, now: float) -> list[tuple[Contact, int]]:
    """Contacts of levels 1..upto whose level period is active now, each once, at its lowest level."""
    seen: dict[str, tuple[Contact, int]] = {}
    for level in lv[:upto]:
        if not in_period(objs, level.period, now):
            continue
        for name in level.contacts:
            if name not in seen:
                seen[name] = (objs.contacts[name], level.number)
    return list(seen.values())


def reachable(objs: Objects, contact: Contact, kind: Kind, service: str | None, status: int, now: float) -> bool:
    """The contact's own filter: notification options and notification_period."""
    return wants(contact, kind, service, status) and in_period(objs, contact.notification_period, now)


def mail_address(n: Notification) -> str:
    """Where this mail goes: a contact address with `{label}` becomes the sub-address for the
    message, `ops+{label}@example.com` -> ops+critical@example.com (lower case), so a filter
    on the recipient (Gmail's to:/deliveredto:) can sort it. Filled per message, after storm
    control: a SUMMARY goes to ops+summary@..."""
    if not mailtags.is_template(n.address):
        return n.address
    return mailtags.fill(n.address, {"label": n.label.lower()})
