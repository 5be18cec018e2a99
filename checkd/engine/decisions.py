"""What central decided that a poller's own alerting must honour (docs/failover.md,
"What a poller knows of central"): acknowledgements, disabled notifications,
downtimes, rollouts in progress, and each open problem's notification progress
(the state told, when, to whom, how many rounds, the escalation level), for one site.

Central builds the document for a poller's site (`for_site`) and sends it when its
version differs from the one the poller holds; the poller applies it to its own
store (`apply`) and writes it to its alerts database in the same step, so that after
a kill -9 of central (or of the poller) it decides exactly as central would have.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Mapping
from typing import Any

from checkd.engine import deployments
from checkd.engine.db import Op
from checkd.engine.ids import SET_META
from checkd.engine.store import INSERT_DOWNTIME, UPSERT_EVENT, UPSERT_MUTE, Downtime, Event, Mute, Phase, Store
from checkd.states import StateType

log = logging.getLogger(__name__)

VERSION_KEY = "decisions_version"           # in meta: the version of what the poller holds
CLEAR = ("DELETE FROM mutes", "DELETE FROM downtimes", "DELETE FROM deployments")
PROGRESS = ("acknowledged", "ack_author", "ack_comment", "ack_sticky", "ack_expires", "notified_status",
            "notified_at", "rounds", "level")
# The poller's own table: who central told of each problem, so that its acknowledgement and
# recovery notices reach them when the poller sends those itself (also after a restart).
TOLD_SCHEMA = ("CREATE TABLE IF NOT EXISTS told_by_central (event_id INTEGER NOT NULL, contact TEXT NOT NULL, "
               "PRIMARY KEY (event_id, contact));\n")
CLEAR_TOLD = "DELETE FROM told_by_central"
INSERT_TOLD = "INSERT OR IGNORE INTO told_by_central VALUES (?,?)"
LOAD_TOLD = "SELECT event_id, contact FROM told_by_central"


class BadDecisions(ValueError):
    """A document that is not what central sends: kept out, the poller's copy stays."""


def for_site(store: Store, told: Mapping[int, Collection[str]], hosts: Collection[str],
             now: float) -> dict[str, Any]:
    """Everything that decides a notification about the checks of `hosts`, with its version;
    `told`: the contacts told of each open problem (the notifier's)."""
    events = [{"id": ev.id, "host": ev.host, "service": ev.service, "status": ev.status, "opened": ev.opened,
               **{k: getattr(ev, k) for k in PROGRESS}, "told": sorted(told.get(ev.id, ()))}
              for ev in sorted(store.open_events.values(), key=lambda e: e.id) if ev.host in hosts]
    mutes = [{"host": m.host, "service": m.service, "until": m.until, "author": m.author}
             for m in store.mutes.values() if m.host in hosts and m.active(now)]
    downtimes = [{"id": d.id, "host": d.host, "service": d.service, "start": d.start, "end": d.end,
                  "author": d.author, "comment": d.comment, "phase": d.phase.value, "flexible": d.flexible,
                  "duration": d.duration, "triggered": d.triggered, "series": d.series}
                 for d in store.downtimes.values() if d.host in hosts and d.over > now]
    rollouts = [{**d.json(), "hosts": [h for h in d.hosts if h in hosts]}
                for d in store.deployments.running.values() if d.expires > now and any(h in hosts for h in d.hosts)]
    doc: dict[str, Any] = {"events": events, "mutes": sorted(mutes, key=lambda m: (m["host"], m["service"] or "")),
                           "downtimes": sorted(downtimes, key=lambda d: d["id"]),
                           "deployments": sorted(rollouts, key=lambda d: d["id"])}
    doc["version"] = version_of(doc)
    return doc


def version_of(doc: dict[str, Any]) -> int:
    """A digest of the content (63 bits: an SQLite integer): equal documents, equal versions."""
    text = json.dumps({k: v for k, v in doc.items() if k != "version"}, sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def apply(store: Store, told: dict[int, set[str]], doc: dict[str, Any]) -> tuple[list[Op], str]:
    """Central's decisions into a poller's store: its mutes, downtimes and rollouts become
    central's; each problem it has open takes central's acknowledgement and notification
    progress, and counts whoever central told as told (`told`: the poller's notifier's); a
    problem only central has open, on a check this poller sees failing (HARD), is opened
    here under central's ID. Returns the ops that write the same to the poller's database,
    and a summary for the log. Raises BadDecisions (nothing changed) on a malformed document."""
    try:
        version = int(doc["version"])
        mutes = {(m.host, m.service): m for m in (Mute(str(d["host"]), _opt(d["service"]), _num(d["until"]),
                                                        str(d["author"])) for d in doc["mutes"])}
        downtimes = {int(d["id"]): Downtime(int(d["id"]), str(d["host"]), _opt(d["service"]), float(d["start"]),
                                            float(d["end"]), str(d["author"]), str(d["comment"]), Phase(d["phase"]),
                                            bool(d["flexible"]), float(d["duration"]), _num(d["triggered"]),
                                            str(d["series"]))
                     for d in doc["downtimes"]}
        rollouts = [deployments.Deployment(str(d["id"]), tuple(str(h) for h in d["hosts"]), str(d["module"]),
                                           str(d["revision"]), str(d["engineer"]), float(d["started"]),
                                           float(d["expires"]), summary=str(d.get("summary", "")))
                    for d in doc["deployments"]]
        events = [(int(e["id"]), (str(e["host"]), _opt(e["service"])), int(e["status"]), float(e["opened"]),
                   {k: e[k] for k in PROGRESS}, [str(c) for c in e["told"]]) for e in doc["events"]]
    except (KeyError, TypeError, ValueError) as e:
        raise BadDecisions(f"malformed decisions from central: {e!r}") from None
    ops: list[Op] = [(sql, [()]) for sql in CLEAR]
    store.mutes = mutes
    ops.append((UPSERT_MUTE, [(m.host, m.service or "", m.until, m.author) for m in mutes.values()]))
    store.set_downtimes(downtimes)
    ops.append((INSERT_DOWNTIME, [d.row() for d in downtimes.values()]))
    store.deployments.running = {d.id: d for d in rollouts}
    store.deployments.all.update(store.deployments.running)
    ops.append((deployments.UPSERT, [d.row() for d in rollouts]))
    changed, told_rows = [], []
    for eid, key, status, opened, progress, contacts in events:
        ev = store.open_event(key)
        if ev is None:
            view = store.checks.get(key)
            if view is None or view.status == 0 or view.state_type is not StateType.HARD:
                continue                # recovered here, or not a problem yet: central will hear
            ev = Event(eid, key[0], key[1], opened, view.status, source="central")
            store.open_events[eid] = ev
            store.open_by_key[key] = eid
            view.event_id = eid
            ops.append(view.op())
        for k, v in progress.items():
            setattr(ev, k, bool(v) if k in ("acknowledged", "ack_sticky") else v)
        changed.append(ev.row())
        told.setdefault(ev.id, set()).update(contacts)
        told_rows += [(ev.id, c) for c in contacts]
    ops.append((UPSERT_EVENT, changed))
    ops += [(CLEAR_TOLD, [()]), (INSERT_TOLD, told_rows)]
    store.meta[VERSION_KEY] = version
    ops.append((SET_META, [(VERSION_KEY, version)]))
    acked = sum(1 for *_, p, _ in events if p["acknowledged"])
    return ops, (f"{acked} acknowledged of {len(events)} open problem(s), {len(mutes)} mute(s), "
                 f"{len(downtimes)} downtime(s), {len(rollouts)} rollout(s)")


def _opt(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def load_told(rows: list[tuple[Any, ...]], told: dict[int, set[str]]) -> None:
    """At a poller's start: who central had told, from told_by_central (LOAD_TOLD's rows)."""
    for eid, contact in rows:
        told.setdefault(int(eid), set()).add(str(contact))
