"""The weekly availability mail (`reports: {weekly: ...}`): last week's report (Monday to
Sunday, local time) to its contacts on the day and time set, once per week. The week sent
is recorded in the database (meta), so a restart, or the other central of a pair, never
sends it again; only the active central runs this. docs/availability.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from central.availability_api import ReportQuery, csv_text
from central.live import Live
from central.web.availability import pct
from checkd import mailtags, tasks
from checkd.config.reports import WeeklyReport
from checkd.engine import availability
from checkd.engine.availability import AvailabilityReport, Tally
from checkd.engine.engine import Engine
from checkd.engine.notify.email import EmailChannel
from checkd.engine.notify.notification import Channel, DeliveryError
from checkd.engine.notify.recipients import expand
from checkd.engine.store import SET_META_ROW
from checkd.report_periods import DAY, week_start, weekday_at

log = logging.getLogger(__name__)

SENT = "weekly_report_week"         # meta: the Monday 00:00 of the week whose report went out last
EVERY = 60.0                        # seconds between looks at the clock
RETRY = 300.0                       # after a failed send
WORST = 30                          # checks listed in the mail (the CSV has them all)


def due_week(now: float, weekly: WeeklyReport, sent: int) -> float | None:
    """The start of the week whose report is due at `now`, or None: this week's sending time
    has not come, or last week's report went out already (`sent`: meta's record)."""
    this_week = week_start(now)
    last_week = week_start(this_week - DAY)
    if now < weekday_at(this_week, weekly.day, weekly.at) or sent >= int(last_week):
        return None
    return last_week


class WeeklyReports:
    def __init__(self, live: Live, engine: Engine, base_url: Callable[[], str],
                 clock: Callable[[], float] = time.time):
        self.live, self.engine, self.base_url, self.clock = live, engine, base_url, clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="weekly-report")

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        first = True
        while True:
            wait = EVERY
            try:
                if not await self.tick() and first:
                    self.waiting()
                first = False
            except DeliveryError as e:
                log.warning("weekly availability report not sent (trying again in %gs): %s", RETRY, e)
                wait = RETRY
            except Exception:
                log.exception("weekly availability report failed; trying again in %gs", RETRY)
                wait = RETRY
            await asyncio.sleep(wait)

    async def tick(self) -> bool:
        """Send last week's report if it is due; whether one went out."""
        weekly = self.live.node.weekly_report
        if weekly is None or not self.engine.db.acting():
            return False
        week = due_week(self.clock(), weekly, self.engine.store.meta.get(SENT, 0))
        if week is None:
            return False
        mail = self.engine.channels.senders.get(Channel.EMAIL)
        to = self.recipients(weekly)
        if not isinstance(mail, EmailChannel) or not to:
            log.error("weekly availability report: no email: section, or none of its contacts has an address")
            return False
        objs = self.live.objs
        keys = availability.checks_of(objs)
        await self.engine.db.write([])
        # To the next Monday's midnight: a week with a change to or from summer time is an hour
        # shorter or longer.
        rep = await asyncio.to_thread(availability.report, self.engine.db, objs, keys, week,
                                      week_start(week + 8 * DAY), weekly.downtime_as_ok)
        name = time.strftime("%G-W%V", time.localtime(week))
        await mail.send_report(to, f"Availability {name}: {self.headline(rep)}", self.body(rep, name),
                               (f"availability-{name}.csv", "text/csv", csv_text(rep).encode()))
        # Recorded after the mail was accepted: a crash in between sends it once more, never not at all.
        self.engine.store.meta[SENT] = int(week)
        await self.engine.write([(SET_META_ROW, [(SENT, int(week))])])
        log.info("weekly availability report %s sent to %s", name, ", ".join(to))
        return True

    def waiting(self) -> None:
        """At start, when nothing was due: when the next report goes out (operators ask)."""
        weekly = self.live.node.weekly_report
        if weekly is None:
            return
        now = self.clock()
        this_week = week_start(now)
        sent = self.engine.store.meta.get(SENT, 0) >= int(week_start(this_week - DAY))
        at = weekday_at(week_start(this_week + 8 * DAY) if sent else this_week, weekly.day, weekly.at)
        log.info("weekly availability report: %snext on %s", "last week's went out; " if sent else "",
                 time.strftime("%a %Y-%m-%d %H:%M %Z", time.localtime(at)))

    def recipients(self, weekly: WeeklyReport) -> list[str]:
        objs = self.live.objs
        names = expand(objs, weekly.contacts, weekly.contact_groups)
        return [mailtags.fill(a, {"label": "report"}) if mailtags.is_template(a) else a
                for a in (objs.contacts[n].email for n in names) if a]

    def headline(self, rep: AvailabilityReport) -> str:
        total = rep.total()
        return summary_line(total.hosts, total.services) or "no checks"

    def body(self, rep: AvailabilityReport, name: str) -> str:
        since, until = (time.strftime("%a %Y-%m-%d %H:%M %Z", time.localtime(t)) for t in (rep.since, rep.until))
        q = ReportQuery(since=str(int(rep.since)), until=str(int(rep.until)), downtime_as_ok=rep.downtime_as_ok)
        lines = [f"Availability, week {name}: {since} to {until}.",
                 "The share of the known time in OK (UP), HARD states only; scheduled downtime "
                 + ("counted as OK / UP." if rep.downtime_as_ok else "shown apart, in the state the check was in."),
                 "", f"All: {self.headline(rep)}", ""]
        for title, groups in (("By site", rep.by_site()), ("By host group", rep.by_hostgroup())):
            if groups:
                lines.append(f"{title}:")
                lines += [f"  {n:<24} {summary_line(s.hosts, s.services)}" for n, s in groups.items()]
                lines.append("")
        worst = sorted((c for c in rep.checks if (a := c.tally.availability()) is not None and a < 100.0),
                       key=lambda c: c.tally.availability() or 0.0)
        lines.append(f"Checks below 100% ({len(worst)}, worst first):" if worst
                     else "No check was below 100% of its known time.")
        for c in worst[:WORST]:
            t = c.tally
            states = ", ".join(f"{n} {pct(t.seconds[i] * 100.0 / t.period)}" for i, n in enumerate(t.states)
                               if i and t.seconds[i] > 0)
            lines.append(f"  {pct(t.availability()):>9}  {c.host}{'/' + c.service if c.service else ''}: {states}")
        if len(worst) > WORST:
            lines.append(f"  ... and {len(worst) - WORST} more (attached CSV)")
        lines += ["", f"Every check: the attached CSV, or {self.base_url()}{q.url('/availability')}", ""]
        return "\n".join(lines)


def summary_line(hosts: Tally, services: Tally) -> str:
    """`hosts 100% UP, services 99.5% OK`."""
    return ", ".join(f"{what} {pct(t.availability())} {t.states[0]}" for what, t in (("hosts", hosts),
                                                                                    ("services", services)) if t.checks)
