"""What operators can do, once: acknowledge, unacknowledge, run a check now,
mute and unmute notifications, schedule downtime.

The HTTP API (central/write_api.py), the Jabber bot (central/bot.py) and
through the API the `checkd` CLI are thin layers over these functions
(checkd/actions.py ChatActions names those checkd/chat/ uses). Each input
is checked first (checkd/bounds.py: whichever way it came), each change
recorded in the history of the events it touches with who did it,
committed, and only then reported done; mutes, downtime changes and
deployments reach memory only after their commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from typing import TYPE_CHECKING

from central.commit import commit
from checkd import bounds
from checkd.actions import OpError, target_name
from checkd.bounds import checked
from checkd.durations import format_duration
from checkd.engine.db import Op
from checkd.engine.deployments import ABORTED, FINISHED, MAX_MUTE, Deployment, DeployError, headline
from checkd.engine.notify.notifier import Plan
from checkd.engine import history
from checkd.engine.store import (DELETE_DOWNTIME, DELETE_MUTE, INSERT_CANCELLED, INSERT_COMMENT, INSERT_DOWNTIME,
                                  INSERT_HISTORY, UPSERT_MUTE, CheckView, Downtime, Event, Mute, Phase)
from checkd.result import CheckKey, CheckResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from checkd.config.model import RecurringDowntime
    from central.commands import CommandQueue
    from central.live import Live
    from checkd.engine.engine import Engine

log = logging.getLogger(__name__)
MAX_COMMENT = bounds.MAX_COMMENT   # characters of a comment
MAX_DOWNTIME = bounds.MAX_SPAN     # a downtime's window (a recurring one repeats)


class Operations:
    def __init__(self, live: Live, engine: Engine, commands: CommandQueue):
        self.live, self.engine, self.commands = live, engine, commands
        # Told of each deployment start/finish/abort once stored: the export's markers (docs/metrics-export.md).
        self.on_deploy: Callable[[Deployment, str, float], None] | None = None
        # Checks someone asked to run now, waiting for their next result.
        self._watchers: dict[CheckKey, list[tuple[float, asyncio.Future[CheckView]]]] = {}

    # --- targets ----------------------------------------------------------------------

    def target(self, host: str, service: str | None) -> tuple[str, str | None]:
        """Check that the host (and service) exist; names are exact, as in the config."""
        if host not in self.live.objs.hosts:
            raise OpError(f"unknown host {host!r}", 404)
        if service is not None and (host, service) not in self.live.objs.services:
            raise OpError(f"unknown service {service!r} on host {host!r}", 404)
        return host, service

    def parse_target(self, text: str) -> tuple[str, str | None]:
        """`host` or `host/service` (a service description may itself contain '/')."""
        host, sep, service = text.partition("/")
        return self.target(host, service if sep else None)

    def open_event(self, eid: int) -> Event:
        """By ID, or by the ID a poller gave the same problem while it alerted on its own."""
        ev = self.engine.store.open_events.get(self.engine.store.aliases.get(eid, eid))
        if ev is None:
            raise OpError(f"no open event {eid} (it recovered, or the ID is wrong: see wassup)", 404)
        return ev

    async def event_target(self, eid: int) -> tuple[str, str | None]:
        """The host (and service) an event is about, open or recovered: `ena 367768` still
        finds the check after its problem is over. 404 when no such event exists."""
        eid = self.engine.store.aliases.get(eid, eid)
        ev = self.engine.store.open_events.get(eid)
        if ev is not None:
            return self.target(ev.host, ev.service)
        await self.engine.db.write([])           # reads wait for queued writes
        key = await asyncio.to_thread(history.event_key, self.engine.db, eid)
        if key is None:
            raise OpError(f"no event {eid} (see wassup for the IDs of open problems)", 404)
        return self.target(*key)

    def _events_of(self, host: str, service: str | None) -> list[Event]:
        """Open events a host-wide or service change touches."""
        return [ev for ev in self.engine.store.open_events.values()
                if ev.host == host and (service is None or ev.service == service)]

    def _history(self, events: list[Event], kind: str, text: str, author: str, now: float) -> list[Op]:
        rows = [(ev.id, now, kind, ev.status, text, author) for ev in events]
        return [(INSERT_HISTORY, rows)] if rows else []

    async def _commit(self, ops: list[Op], plan: Plan | None = None) -> None:
        await commit(self.engine, ops, plan)

    # --- operations -------------------------------------------------------------------

    async def ack(self, eid: int, author: str, comment: str, sticky: bool = True,
                  expires: float | None = None) -> Event:
        """One problem: see `ack_many`."""
        acked, _ = await self.ack_many([eid], author, comment, sticky, expires)
        return acked[0]

    async def ack_many(self, eids: list[int], author: str, comment: str, sticky: bool = True,
                       expires: float | None = None) -> tuple[list[Event], list[int]]:
        """Acknowledge open problems in one commit (`ack 1 2 3`, `ack host web1`, the page's
        "ack all shown"): sticky until recovery, else until the state changes; with `expires`
        at the latest until then. Re-notification and escalation stop; everyone told hears who
        took it. Returns the problems acknowledged and the IDs that are not open (404 when
        none is)."""
        checked(bounds.text, comment, "comment", MAX_COMMENT)
        checked(bounds.text, author, "author", bounds.MAX_NAME)
        if expires is not None:
            checked(bounds.unix_time, expires, "expires")
        now = time.time()
        if expires is not None and expires <= now:
            raise OpError("the acknowledgement would expire before it starts: give a time in the future")
        acked: list[Event] = []
        missing: list[int] = []
        for given in dict.fromkeys(eids):
            ev = self.engine.store.open_events.get(self.engine.store.aliases.get(given, given))
            if ev is None:
                missing.append(given)
            elif all(a.id != ev.id for a in acked):         # named twice: by its ID and an alias
                acked.append(ev)
        if not acked:
            raise OpError(f"no open event {', '.join(map(str, missing))} (it recovered, or the ID is wrong: "
                          "see wassup)", 404)
        ops, plan = self.engine.acknowledge(acked, author, comment, now, sticky, expires)
        ops.append((INSERT_COMMENT, [(ev.host, ev.service, now, author, f"ack #{ev.id}: {comment}") for ev in acked]))
        await self._commit(ops, plan)
        log.info("event(s) %s acknowledged by %s%s%s: %s", ", ".join(str(ev.id) for ev in acked), author,
                 "" if sticky else " (not sticky)", "" if expires is None else f" until {_clock(expires)}", comment)
        return acked, missing

    def problems_of(self, host: str) -> list[int]:
        """The open problems of a host and its services, oldest first (`ack host web1`)."""
        self.target(host, None)
        return [ev.id for ev in sorted(self.engine.store.open_events.values(), key=lambda e: e.id)
                if ev.host == host]

    async def unack(self, eid: int, author: str) -> Event:
        """Re-notification and escalation resume from where they were."""
        now = time.time()
        ev = self.open_event(eid)
        if not ev.acknowledged:
            raise OpError(f"event {eid} is not acknowledged", 409)
        ops = self.engine.events.unack(ev.id, author, now)
        ops.append((INSERT_COMMENT, [(ev.host, ev.service, now, author, f"unack #{eid}")]))
        await self._commit(ops)
        log.info("event %d unacknowledged by %s", eid, author)
        return ev

    async def reschedule(self, host: str, service: str | None, author: str) -> list[str]:
        """The owning poller runs the check at once (told in its next heartbeat answer)."""
        site = self.live.objs.hosts[host].site
        view = self.engine.store.checks.get((host, service))
        owners = [view.polled_by] if view is not None and view.polled_by in self.live.node.pollers else \
            [p.name for p in self.live.node.pollers.values() if p.site == site]
        if not owners:
            raise OpError(f"no poller configured for site {site!r}", 409)
        for poller in owners:
            self.commands.reschedule(poller, host, service)
        now = time.time()
        ops = self._history(self._events_of(host, service) if service else
                            [e for e in self._events_of(host, None) if e.service is None],
                            "resched", f"check requested from {', '.join(owners)}", author, now)
        if ops:
            await self._commit(ops)
        return owners

    def next_result(self, host: str, service: str | None, after: float) -> asyncio.Future[CheckView]:
        """Resolves with the first result of the check that finished after `after`."""
        fut: asyncio.Future[CheckView] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault((host, service), []).append((after, fut))
        return fut

    def results_stored(self, results: list[CheckResult]) -> None:
        """Called by ingest after a commit: wake whoever waits for these checks (nobody,
        nearly always: then the batch is not even looked at)."""
        if not self._watchers:
            return
        for key in {r.key for r in results} & self._watchers.keys():
            view = self.engine.store.checks[key]
            waiting = []
            for after, fut in self._watchers.pop(key):
                if fut.done():
                    continue
                if view.last_check > after:
                    fut.set_result(view)
                else:
                    waiting.append((after, fut))
            if waiting:
                self._watchers[key] = waiting

    async def set_notifications(self, host: str, service: str | None, enabled: bool, duration: float | None,
                                author: str) -> Mute | None:
        """Mute (with an optional end) or unmute a host (and its services) or one service."""
        checked(bounds.text, author, "author", bounds.MAX_NAME)
        if duration is not None:
            checked(bounds.span, duration, "duration")
        now = time.time()
        key = (host, service)
        events = self._events_of(host, service)
        if enabled:
            ops: list[Op] = [(DELETE_MUTE, [(host, service or "")])]
            ops += self._history(events, "notifications_enabled", "notifications enabled", author, now)
            mute = None
        else:
            until = None if duration is None else now + duration
            mute = Mute(host, service, until, author)
            ops = [(UPSERT_MUTE, [(host, service or "", until, author)])]
            text = "notifications disabled" + ("" if until is None else f" until {_clock(until)}")
            ops += self._history(events, "notifications_disabled", text, author, now)
        ops.append((INSERT_COMMENT, [(host, service, now, author,
                                      f"notifications {'enabled' if enabled else 'disabled'}")]))
        await self._commit(ops)
        if mute is None:
            self.engine.store.mutes.pop(key, None)
        else:
            self.engine.store.mutes[key] = mute
        log.info("notifications %s for %s by %s", "enabled" if enabled else "disabled",
                 target_name(host, service), author)
        return mute

    async def add_comment(self, host: str, service: str | None, author: str, text: str,
                          event_id: int | None = None) -> int | None:
        """A free-text comment on a host or service (its page shows it), and, when it names a
        problem (or the check has one open), in that problem's history too. Returns the event."""
        checked(bounds.text, author, "author", bounds.MAX_NAME)
        text = " ".join(checked(bounds.text, text, "text", 64 * MAX_COMMENT).split())  # one line: lists, logs
        if not text:
            raise OpError("a comment needs some text")
        if len(text) > MAX_COMMENT:
            raise OpError(f"a comment is at most {MAX_COMMENT} characters")
        now = time.time()
        ev = self.engine.store.open_event((host, service)) if event_id is None else \
            self.engine.store.open_events.get(self.engine.store.aliases.get(event_id, event_id))
        eid = ev.id if ev is not None else event_id
        ops: list[Op] = [(INSERT_COMMENT, [(host, service, now, author, text)])]
        if eid is not None:
            ops.append((INSERT_HISTORY, [(eid, now, "comment", ev.status if ev else None, text, author)]))
        await self._commit(ops)
        log.info("comment on %s%s by %s", target_name(host, service), f" [ID#:{eid}]" if eid else "", author)
        return eid

    async def add_downtime(self, host: str, service: str | None, start: float, end: float, author: str,
                           comment: str, flexible: bool = False, duration: float = 0.0) -> Downtime:
        """One host (and its services) or one service: see `add_downtimes`."""
        return (await self.add_downtimes([(host, service)], start, end, author, comment, flexible, duration))[0]

    async def add_downtimes(self, targets: list[tuple[str, str | None]], start: float, end: float, author: str,
                            comment: str, flexible: bool = False, duration: float = 0.0) -> list[Downtime]:
        """One downtime per target (a scope's hosts or services), one series, one commit. Fixed:
        from `start` to `end`; flexible: waits in that window for the check to fail, then lasts
        `duration`. One that starts now is announced (DOWNTIMESTART) in the same commit."""
        start, end = checked(bounds.unix_time, start, "start"), checked(bounds.unix_time, end, "end")
        checked(bounds.text, comment, "comment", MAX_COMMENT)
        checked(bounds.text, author, "author", bounds.MAX_NAME)
        if not end > start:
            raise OpError("a downtime must end after it starts")
        if end - start > MAX_DOWNTIME:
            raise OpError("a downtime's window is at most a year; a recurring one repeats (docs/downtimes.md)")
        if flexible and not 0 < checked(bounds.finite, duration, "duration") <= MAX_DOWNTIME:
            raise OpError("a flexible downtime needs a duration (e.g. 2h)")
        now = time.time()
        series = uuid.uuid4().hex[:10]
        made, ops = self.engine.store.new_downtimes(targets, start, end, author, comment, flexible,
                                                    duration if flexible else 0.0, series)
        plan = Plan()
        for dt in made:
            # Decided before the commit, so the insert and a DOWNTIMESTART that is due now go together.
            plan.add(self.engine.downtimes.added(dt, now))
            kind = f"flexible, {format_duration(duration)} within " if flexible else ""
            text = f"downtime #{dt.id} {kind}{_clock(start)} - {_clock(end)}: {comment}"
            ops.append((INSERT_COMMENT, [(dt.host, dt.service, now, author, f"downtime #{dt.id}: {comment}")]))
            ops += self._history(self._events_of(dt.host, dt.service), "downtime", text, author, now)
        await self._commit(ops, plan)
        log.info("downtime%s %s for %s by %s: %s", "s" if len(made) > 1 else "",
                 ", ".join(f"#{d.id}" for d in made[:10]) + (" ..." if len(made) > 10 else ""),
                 ", ".join(target_name(*t) for t in targets[:5]) + (f" and {len(targets) - 5} more"
                                                                    if len(targets) > 5 else ""), author, comment)
        return [self.engine.store.downtimes.get(d.id, d) for d in made]

    async def change_downtimes(self, ids: list[int], author: str, start: float | None = None,
                               end: float | None = None, comment: str | None = None) -> list[Downtime]:
        """A new start, end or comment for downtimes (one, or a whole series): the ticker starts
        or ends them by the new times (a start or an end now is told as usual)."""
        store = self.engine.store
        start = None if start is None else checked(bounds.unix_time, start, "start")
        end = None if end is None else checked(bounds.unix_time, end, "end")
        if comment is not None:
            checked(bounds.text, comment, "comment", MAX_COMMENT)
        found = [store.downtimes[i] for i in ids if i in store.downtimes and store.downtimes[i].phase is not Phase.ENDED]
        if not found:
            raise OpError(f"no downtime {', '.join(map(str, ids))} (over, or cancelled: see GET /api/v1/downtimes)", 404)
        changed = []
        for dt in found:
            new = dataclasses.replace(dt, start=dt.start if start is None else float(start),
                                      end=dt.end if end is None else float(end),
                                      comment=dt.comment if comment is None else comment)
            if not new.end > new.start:
                raise OpError(f"downtime #{dt.id} would end before it starts")
            if new.end - new.start > MAX_DOWNTIME:
                raise OpError(f"downtime #{dt.id}: a downtime's window is at most a year")
            if new.phase is Phase.ACTIVE and new.window() is not None and new.window()[0] > time.time():
                raise OpError(f"downtime #{dt.id} is in effect: it can end sooner or later, not start later")
            changed.append(new)
        now = time.time()
        ops: list[Op] = [(INSERT_DOWNTIME, [d.row() for d in changed])]
        for dt in changed:
            ops += self._history(self._events_of(dt.host, dt.service), "downtime_changed",
                                 f"downtime #{dt.id} now {_clock(dt.start)} - {_clock(dt.end)}: {dt.comment}",
                                 author, now)
        await self._commit(ops)
        for dt in changed:
            store.put_downtime(dt)
        log.info("downtime(s) %s changed by %s", ", ".join(f"#{d.id}" for d in changed), author)
        return changed

    async def add_schedule(self, rd: RecurringDowntime, spec: str, author: str) -> None:
        """A recurring downtime made through the API (`spec`: its JSON, kept as given); its
        windows are made by the engine's ticker a day ahead."""
        recurring = self.engine.recurring
        assert recurring is not None
        if rd.name in self.live.objs.downtimes:
            raise OpError(f"recurring downtime {rd.name!r} is in the configuration; change it there", 409)
        await self._commit(recurring.add(rd, spec))
        log.info("recurring downtime %s (%s) made by %s", rd.name, rd.scope.label(), author)

    async def remove_schedule(self, name: str, author: str) -> None:
        """No more windows; those already made stay (cancel them as any downtime)."""
        recurring = self.engine.recurring
        assert recurring is not None
        if name in self.live.objs.downtimes:
            raise OpError(f"recurring downtime {name!r} is in the configuration; remove it there", 409)
        if name not in self.engine.store.schedules:
            raise OpError(f"no recurring downtime {name!r}", 404)
        await self._commit(recurring.remove(name))
        log.info("recurring downtime %s removed by %s", name, author)

    def series_ids(self, series: str) -> list[int]:
        ids = [d.id for d in self.engine.store.downtimes.values() if d.series == series and d.phase is not Phase.ENDED]
        if not ids:
            raise OpError(f"no downtime of series {series!r} still to come or in effect", 404)
        return sorted(ids)

    async def delete_downtime(self, did: int, author: str) -> Downtime:
        return (await self.delete_downtimes([did], author))[0]

    async def delete_downtimes(self, ids: list[int], author: str) -> list[Downtime]:
        """Cancel downtimes (one, or a series): one in effect ends with DOWNTIMECANCELLED."""
        store = self.engine.store
        if not any(i in store.downtimes for i in ids):
            raise OpError(f"no downtime {', '.join(map(str, ids))}", 404)
        now = time.time()
        gone = [dt for i in ids if (dt := store.pop_downtime(i)) is not None]
        ops: list[Op] = [(DELETE_DOWNTIME, [(dt.id,) for dt in gone])]
        # What it had covered stays for availability reports (docs/availability.md).
        ops.append((INSERT_CANCELLED, [row for dt in gone if (row := dt.cancelled_row(now)) is not None]))
        plan = Plan()
        for dt in gone:
            ops += self._history(self._events_of(dt.host, dt.service), "downtime_deleted",
                                 f"downtime #{dt.id} deleted", author, now)
            plan.add(self.engine.downtimes.deleted(dt, now))
        await self._commit(ops, plan)
        log.info("downtime(s) %s deleted by %s", ", ".join(f"#{d.id} {target_name(d.host, d.service)}" for d in gone),
                 author)
        return gone


    def hosts_of(self, hosts: list[str], hostgroups: list[str]) -> tuple[str, ...]:
        """Hosts named directly or through host groups, each once, in config order."""
        for h in hosts:
            self.target(h, None)
        wanted = set(hosts)
        for g in hostgroups:
            group = self.live.objs.host_groups.get(g)
            if group is None:
                raise OpError(f"unknown host group {g!r}", 404)
            wanted |= set(group.members) | {h.name for h in self.live.objs.hosts.values() if g in h.groups}
        if not wanted:
            raise OpError("give hosts and/or hostgroups")
        return tuple(h for h in self.live.objs.hosts if h in wanted)

    async def deploy(self, action: str, hosts: tuple[str, ...], module: str, revision: str, engineer: str,
                     mute_for: float, did: str | None, summary: str = "") -> tuple[Deployment, bool]:
        """start | finish | abort; the deployment, and whether this call changed anything."""
        deps = self.engine.store.deployments
        for key, v in (("module", module), ("revision", revision), ("engineer", engineer)):
            checked(bounds.text, v, key, bounds.MAX_NAME)
        if action == "start":
            checked(bounds.span, mute_for, "mute_for", MAX_MUTE)
        now = time.time()
        try:
            if action == "start":
                d, ops, changed = deps.start(hosts, module, revision, engineer, mute_for, did, now, summary)
            else:
                if did is None:
                    raise OpError(f"{action} needs the id that start returned")
                d, ops = deps.end(did, FINISHED if action == "finish" else ABORTED, now)
                changed = bool(ops)
        except DeployError as e:
            raise OpError(str(e), e.status) from None
        if changed:
            text = f"deployment {d.id} {action}: {d.module} r{d.revision} by {d.engineer}"
            if action == "start" and d.summary:
                text += f": {headline(d.summary)}"
            ops.append((INSERT_COMMENT, [(h, None, now, d.engineer, text) for h in d.hosts]))
            ops += self._history([ev for h in d.hosts for ev in self._events_of(h, None)], f"deploy_{action}",
                                 text, d.engineer, now)
            await self._commit(ops)
            if action == "start":
                deps.add(d)                     # muting from now on: only once stored
            if self.on_deploy is not None:
                self.on_deploy(d, action, now)
        return d, changed


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))

