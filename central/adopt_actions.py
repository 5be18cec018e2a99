"""Adopting what operators did at a poller while it alerted on its own (the operator
log, checkd/engine/oplog.py), handed over with its notification log: each entry once
(the highest adopted from each poller is kept in meta, in the same transaction), only
for checks of the poller's own site, and recorded in the history of the problem it
touched with who and when. Nothing is notified again: the poller told people itself.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from central import validate
from checkd.actions import target_name
from checkd.engine.db import Op
from checkd.engine.ids import SET_META
from checkd.engine.oplog import Action, adopted_key
from checkd.engine.store import DELETE_MUTE, INSERT_COMMENT, INSERT_HISTORY, UPSERT_MUTE, Event, Mute

if TYPE_CHECKING:
    from checkd.config.model import Objects
    from checkd.engine.engine import Engine

log = logging.getLogger(__name__)
MAX_ACTIONS = 10_000            # one handover's entries; more is not an outage, it is an attack


def parse(docs: Any) -> list[Action]:
    """The handover's `actions`, checked whole: a malformed one refuses the handover (400)."""
    if docs is None:
        return []
    if type(docs) is not list or len(docs) > MAX_ACTIONS:
        raise validate.bad_request(f"actions: expected a list of at most {MAX_ACTIONS} operator actions")
    out = []
    for i, d in enumerate(docs):
        try:
            out.append(Action.parse(d, _finite))
        except ValueError as e:
            raise validate.bad_request(f"actions[{i}]: {e}; nothing adopted") from None
    return out


def adopt(engine: Engine, objs: Objects, poller: str, site: str, actions: list[Action], now: float) -> list[Op]:
    """The ops recording `actions` here (the in-memory store changes at once)."""
    store = engine.store
    done = store.meta.get(adopted_key(poller), 0)
    ops: list[Op] = []
    taken = 0
    for a in sorted(actions, key=lambda a: a.id):
        if a.id <= done:
            continue                    # adopted from an earlier handover whose answer was lost
        done = a.id
        h = objs.hosts.get(a.host)
        if h is None or h.site != site or (a.service is not None and (a.host, a.service) not in objs.services):
            log.warning("poller %s handed over %s on %s by %s, not a check of site %s here: skipped", poller, a.kind,
                        target_name(a.host, a.service), a.author, site)
            continue
        ops += _one(engine, poller, a, now)
        taken += 1
    if actions:
        store.meta[adopted_key(poller)] = done
        ops.append((SET_META, [(adopted_key(poller), done)]))
        log.info("adopted %d operator action(s) taken at poller %s while central was unreachable", taken, poller)
    return ops


def _one(engine: Engine, poller: str, a: Action, now: float) -> list[Op]:
    store = engine.store
    key = (a.host, a.service)
    where = f"at {poller} while central was unreachable"
    ev = _event(engine, a)
    if a.kind == "ack":
        lapsed = a.until is not None and a.until <= now      # expired while central was away
        if ev is not None and not ev.acknowledged and not lapsed:
            ops = engine.events.ack(ev.id, a.author, a.comment, a.ts, a.sticky, a.until)
        elif ev is not None or a.event_id is not None:      # the history keeps it
            ops = [(INSERT_HISTORY, [(ev.id if ev else a.event_id, a.ts, "ack", ev.status if ev else None,
                                      a.comment, a.author)])]
        else:
            ops = []
        return ops + [(INSERT_COMMENT, [(a.host, a.service, a.ts, a.author,
                                         f"ack #{ev.id if ev else a.event_id} {where}: {a.comment}")])]
    if a.kind == "resched":
        return [(INSERT_HISTORY, [(ev.id, a.ts, "resched", ev.status, a.comment, a.author)])] if ev else []
    if a.kind == "ena":
        store.mutes.pop(key, None)
        ops: list[Op] = [(DELETE_MUTE, [(a.host, a.service or "")])]
        text = f"notifications enabled {where}"
    elif a.until is not None and a.until <= now:
        return []                       # a mute that ended while central was away
    else:
        store.mutes[key] = Mute(a.host, a.service, a.until, a.author)
        ops = [(UPSERT_MUTE, [(a.host, a.service or "", a.until, a.author)])]
        text = f"notifications disabled {where}"
    touched = [e for e in store.open_events.values() if e.host == a.host and (a.service is None or e.service == a.service)]
    ops += [(INSERT_HISTORY, [(e.id, a.ts, "notifications_" + ("enabled" if a.kind == "ena" else "disabled"),
                               e.status, text, a.author) for e in touched])] if touched else []
    return ops + [(INSERT_COMMENT, [(a.host, a.service, a.ts, a.author, text)])]


def _event(engine: Engine, a: Action) -> Event | None:
    """The open problem an entry is about: by its ID (or the ID it is an alias of), else
    the problem open on its check."""
    store = engine.store
    if a.event_id is not None:
        ev = store.open_events.get(store.aliases.get(a.event_id, a.event_id))
        if ev is not None and ev.key == (a.host, a.service):
            return ev
    return store.open_event((a.host, a.service))


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    if type(v) not in (int, float) or not math.isfinite(v):
        raise ValueError("expected a finite number")
    return float(v)
