"""Open problems as the API, `wassup` and the NOC page show them: one shape, whether
central answers (central/read_api.py) or a poller alerting on its own (checkd/poller_api.py)."""

from __future__ import annotations

from typing import Any

from checkd.engine.events import Events
from checkd.engine.store import Event, Store
from checkd.states import state_name


def problem(store: Store, events: Events, ev: Event, now: float) -> dict[str, Any]:
    """One event, as GET /api/v1/problems lists it (without its check's output)."""
    return {"id": ev.id, "host": ev.host, "service": ev.service, "state": state_name(ev.service, ev.status),
            "status": ev.status, "since": ev.opened, "closed": ev.closed, "acknowledged": ev.acknowledged,
            "ack_author": ev.ack_author, "ack_comment": ev.ack_comment,
            "ack_sticky": ev.ack_sticky if ev.acknowledged else None, "ack_expires": ev.ack_expires,
            "muted": store.muted(ev.host, ev.service, now), "flapping": ev.flapping,
            "parent_id": ev.parent_id, "suppressed": events.suppressed(ev), "source": ev.source}


def open_problems(store: Store, events: Events, now: float) -> list[dict[str, Any]]:
    """Every open event with its check's output, newest first (GET /api/v1/problems)."""
    out = []
    for ev in sorted(store.open_events.values(), key=lambda e: (e.opened, e.id), reverse=True):
        d = problem(store, events, ev, now)
        v = store.checks.get(ev.key)
        d["output"] = v.output if v else ""
        out.append(d)
    return out
