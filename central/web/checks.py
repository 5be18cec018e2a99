"""What a host's or a service's page shows, as plain data: current state, output,
perfdata, the open event and who took it, downtimes, muting, recent events with
their history, comments, notifications and deployments.

The current state comes from the store; history, comments and notifications
from SQLite (read in a thread, after queued writes, so a just-made ack shows).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from central.read_api import ReadApi
from central.web.views import check_url, host_url
from checkd import perfdata
from checkd.engine import history, nflog
from checkd.engine.deployments import headline
from checkd.engine.store import CheckView, Phase
from checkd.states import state_name

if TYPE_CHECKING:
    from checkd.engine.db import Database

EVENTS = 10             # recent events on a page
HISTORY_ROWS = 60
COMMENTS = 20
NOTIFICATIONS = 30
DEPLOYMENTS = 10


class UnknownCheck(Exception):
    """No such host or service in the configuration: the page answers 404."""


def _rows(db: Database, host: str, service: str | None, open_id: int | None,
          whole_host: bool) -> tuple[history.CheckRows, list[tuple[Any, ...]]]:
    """Blocking: the page's rows from the database."""
    rows = history.of_check(db, host, service, whole_host=whole_host, events=EVENTS, history=HISTORY_ROWS,
                            comments=COMMENTS)
    notes = [(n.kind, n.contact, n.channel, n.created, n.status, n.done, n.error)
             for n in nflog.latest(db, open_id, NOTIFICATIONS)] if open_id else []
    return rows, notes


def _perf(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    metrics, errors = perfdata.parse(text) if text else ([], [])
    def num(x: float | None) -> str:
        return "" if x is None else f"{x:g}"
    return [{"label": m.label, "value": "U" if m.value is None else f"{m.value:g}", "uom": m.uom,
             "warn": m.warn.text if m.warn else "", "crit": m.crit.text if m.crit else "",
             "min": num(m.min), "max": num(m.max)} for m in metrics], errors


async def page(read: ReadApi, host: str, service: str | None, now: float, *, graphing: bool) -> dict[str, Any]:
    """The model of /host/HOST (service None) or /service/HOST/SERVICE; `graphing`: central has an rrd: section."""
    h = read.live.objs.hosts.get(host)
    if h is None:
        raise UnknownCheck(f"unknown host {host!r}")
    svc = None
    if service is not None:
        svc = read.live.objs.services.get((host, service))
        if svc is None:
            raise UnknownCheck(f"unknown service {service!r} on host {host!r}")
    store = read.store
    view = store.checks.get((host, service))
    check = read.check_json(view or CheckView(host, service), now)
    check["pending"] = view is None or not view.last_check
    if service is None and h.check is None and check["pending"]:
        check.update(state="UP", pending=False, output="(no host check: always UP)")
    ev = store.open_event((host, service))
    event = read.event_json(ev, now) if ev is not None else None
    await read.db.write([])          # reads after queued writes: a just-made ack is there
    rows, notes = await asyncio.to_thread(_rows, read.db, host, service, ev.id if ev else None, service is None)
    events = {r[0]: {"id": r[0], "service": r[1] or None, "opened": r[2], "closed": r[3],
                     "state": state_name(r[1] or None, r[4])} for r in rows.events}
    steps = [{"event_id": eid, "ts": ts, "kind": kind, "output": out or "", "author": author,
              "state": None if st is None else state_name(events[eid]["service"], st),
              "service": events[eid]["service"]} for eid, ts, kind, st, out, author in rows.history]
    perf, perf_errors = _perf(check["perfdata"])
    mutes = [m for k, m in store.mutes.items() if k[0] == host and (k[1] is None or k[1] == service)
             and m.active(now)]
    deploying = store.deployments.muted(host, now) if store.deployments.running else None
    model: dict[str, Any] = {
        "host": {"name": h.name, "address": h.address, "alias": h.alias, "site": h.site, "groups": list(h.groups),
                 "notes": h.notes, "runbook": h.runbook, "url": host_url(h.name), "has_check": h.check is not None},
        "service": None if svc is None else {"name": svc.description, "groups": list(svc.groups),
                                             "notes": svc.notes, "runbook": svc.runbook,
                                             "url": check_url(host, service)},
        "check": check, "event": event, "perf": perf, "perf_errors": perf_errors,
        "takeover": read.takeover.polled_by_central(h.site),
        "mutes": [{"service": m.service, "until": m.until, "author": m.author} for m in mutes],
        "own_mute": (host, service) in store.mutes and store.mutes[(host, service)].active(now),
        "deploying": None if deploying is None else deploying.json(),
        "downtimes": [{"id": d.id, "service": d.service, "start": d.start, "end": d.end, "author": d.author,
                       "comment": d.comment, "active": d.covers(d.host, d.service, now), "flexible": d.flexible,
                       "duration": d.duration, "triggered": d.triggered, "series": d.series}
                      for d in sorted(store.downtimes.values(), key=lambda d: d.start)
                      if d.host == host and (d.service is None or d.service == service) and d.over > now
                      and d.phase is not Phase.ENDED],
        "events": list(events.values()), "history": steps,
        "comments": [{"ts": ts, "author": a, "text": t, "service": s} for ts, a, t, s in rows.comments],
        "notifications": [{"kind": k, "contact": c, "channel": ch, "created": cr, "status": st, "done": d,
                           "error": e} for k, c, ch, cr, st, d, e in notes],
        "deployments": [{**d.json(), "headline": headline(d.summary)}
                        for d in store.deployments.log(host)[:DEPLOYMENTS]],
        "graphs": [m["label"] for m in perf] if graphing and svc is not None and svc.graph else [],
        "services": [],
    }
    if service is None:
        for key in sorted(k for k in read.live.objs.services if k[0] == host):
            v = store.checks.get(key)
            c = read.check_json(v or CheckView(*key), now)
            c["pending"] = v is None or not v.last_check
            c["url"] = check_url(*key)
            model["services"].append(c)
    return model
