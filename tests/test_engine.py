"""The alerting engine in-process, on a fake clock: results, acks, mutes, downtimes and
the passing of time go in; what is asserted is exactly which notifications the
engine logs (notification_log), in order. No servers: a SQLite file and, for the
storm, a dispatcher whose channel records what it is handed.

The same engine runs in central and in a poller (checkd/engine/engine.py); the
end-to-end tests (test_notify.py, test_autonomy.py, ...) run it as real daemons.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from checkd.config import load_objects
from checkd.engine.db import Database, SqliteDatabase
from checkd.engine.engine import Engine
from checkd.engine.ids import IdAllocator
from checkd.engine.notify.channels import Channels
from checkd.engine.notify.dispatch import Settings
from checkd.engine.notify import recipients, stages
from checkd.engine.recurring import Recurring
from checkd.engine.notify.notification import Channel, Notification
from checkd.engine.store import Downtime, Event, Mute
from checkd.result import CheckResult
from checkd.states import StateType

T0 = 1_800_000_000.0            # a fixed start: the clock is ours
OK, WARNING, CRITICAL = 0, 1, 2
UP, DOWN, UNREACHABLE = 0, 1, 2

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
timeperiods:
  - {name: never, alias: "a period that is never active"}
contacts:
  - {name: ops, email: ops@example.com}
  - {name: boss, email: boss@example.com}
  - {name: dba, email: dba@example.com}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops]}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops], max_attempts: 2, retry_interval: 10s}
services:
  - host: db1.ladc1
    description: Mysql
    command: "check_dummy!0!ok"
    contacts: [ops, dba]
    max_attempts: 3
    notification_interval: 0
    escalations:
      - {after: 10m, contacts: [boss]}
  - {host: db1.ladc1, description: Disk, command: "check_dummy!0!ok", contacts: [ops], notification_interval: 30m}
  - {host: db1.ladc1, description: Night, command: "check_dummy!0!ok", contacts: [ops], notification_period: never}
  - {hosts: [web1.ladc1], description: HTTP, command: "check_dummy!0!ok", contacts: [ops]}
  - {hosts: [web1.ladc1], description: HTTPS, command: "check_dummy!0!ok", contacts: [ops]}
"""


class Recorder:
    """A channel that keeps what it is handed (the storm test's dispatcher sends to it)."""

    carries_graphs = False

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, n: Notification) -> None:
        self.sent.append(n)


class Timeline:
    """One engine, a clock that moves only when told, and a poller's results."""

    def __init__(self, tmp: Path, db: Database, objects: str = OBJECTS, settings: Settings = Settings()):
        (tmp / "objects").mkdir()
        (tmp / "objects" / "objects.yaml").write_text(objects)
        self.now = T0
        self.channel = Recorder()
        channels = Channels({Channel.EMAIL: self.channel}, None, settings)
        self.ids = IdAllocator()
        self.engine = Engine(db, load_objects(tmp / "objects"), channels, self.ids,
                             clock=lambda: self.now)
        # As at central: the windows of recurring downtimes are made by the ticker.
        self.engine.recurring = Recurring(self.engine.store, self.engine.downtimes, lambda: self.engine.objs)
        self.delivered: list[int] = []          # log rows handed on after their commit

    async def start(self, sending: bool = False) -> None:
        await asyncio.to_thread(self.engine.load)
        self.engine.start_writing()
        await self.engine.write(self.ids.refill())
        if sending:
            await self.engine.start_sending()
        else:
            self.engine.deliver = lambda notes: self.delivered.extend(p.row_id for p in notes)

    async def stop(self) -> None:
        await self.engine.stop()

    async def result(self, host: str, service: str | None, status: int, state_type: str = "HARD",
                     attempt: int = 1, **extra: Any) -> None:
        """A poller's result, finished now: applied, decided on and committed like ingest does."""
        r = CheckResult(host, service, status, StateType(state_type), attempt, f"status {status}", "", "",
                        self.now, self.now, self.now, **extra)
        ops, _stale = self.engine.apply("poller-ladc1", [r])
        await self.engine.commit(ops, self.engine.decide(self.now))

    async def advance(self, seconds: float, step: float = 1.0) -> None:
        """Time passes, one engine tick a second (as the ticker does; `step`: fewer, for days)."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            ops, plan = self.engine.tick(self.now)
            if ops or plan.ops:
                await self.engine.commit(ops, plan)

    def event(self, host: str, service: str | None) -> Event:
        ev = self.engine.store.open_event((host, service))
        assert ev is not None, f"no open event on {host}/{service}"
        return ev

    def held(self, host: str, service: str | None) -> str | None:
        """Why the engine tells nothing about this problem now (checkd/engine/notify/stages.py)."""
        n = self.engine.notifier
        return stages.held(n, self.event(host, service), recipients.config_of(n.objs, host, service), self.now)

    async def ack(self, host: str, service: str | None, author: str = "alice", sticky: bool = True,
                  expires: float | None = None) -> None:
        ev = self.event(host, service)
        ops = self.engine.events.ack(ev.id, author, "on it", self.now, sticky, expires)
        await self.engine.commit(ops, self.engine.notifier.on_ack(ev, self.now))

    async def mute(self, host: str, service: str | None, until: float | None = None) -> None:
        self.engine.store.mutes[(host, service)] = Mute(host, service, until, "alice")

    async def unmute(self, host: str, service: str | None) -> None:
        self.engine.store.mutes.pop((host, service), None)

    async def downtime(self, host: str, service: str | None, start: float, end: float,
                       flexible: float = 0.0) -> Downtime:
        did = len(self.engine.store.downtimes) + 1
        dt = Downtime(did, host, service, start, end, "alice", "maintenance", flexible=bool(flexible),
                      duration=flexible)
        self.engine.store.put_downtime(dt)
        await self.engine.commit([], self.engine.downtimes.added(dt, self.now))
        return dt

    async def logged(self) -> list[tuple[Any, ...]]:
        """(kind, contact, number, level, seconds after T0) of every decision, in order."""
        await self.engine.write([])             # after everything queued
        rows = await asyncio.to_thread(self.engine.db.read,
                                       "SELECT kind, contact, number, level, created FROM notification_log ORDER BY id")
        return [(kind, contact, number, level, round(created - T0)) for kind, contact, number, level, created in rows]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Database]:
    """Each timeline runs on both stores: the engine must not care which it has."""
    if request.param == "postgresql":
        dsn = request.getfixturevalue("postgres_dsn")
        from checkd.engine.pgdb import PostgresDatabase
        return lambda: PostgresDatabase(dsn)
    return lambda: SqliteDatabase(tmp_path / "engine.sqlite")


@pytest.fixture
def run(tmp_path: Path, store: Callable[[], Database]) -> Iterator[Callable[[Callable[[Timeline], Awaitable[None]]], None]]:
    """run(scenario): a fresh engine on the fake clock, the scenario, then a clean stop."""
    def go(scenario: Callable[[Timeline], Awaitable[None]], **kw: Any) -> None:
        async def main() -> None:
            t = Timeline(tmp_path, store(), **kw)
            await t.start(sending="settings" in kw)
            try:
                await asyncio.wait_for(scenario(t), timeout=20)
            finally:
                await t.stop()
        asyncio.run(main())
    yield go


def test_soft_then_hard_is_told_once_and_an_ack_stops_the_escalation(run) -> None:
    async def scenario(t: Timeline) -> None:
        for attempt in (1, 2):
            await t.result("db1.ladc1", "Mysql", CRITICAL, "SOFT", attempt)
            await t.advance(30)
            assert await t.logged() == [], "a SOFT state tells nobody"
        await t.result("db1.ladc1", "Mysql", CRITICAL, "HARD", 3)
        await t.result("db1.ladc1", "Mysql", CRITICAL, "HARD", 3)      # the same again: nothing new
        assert await t.logged() == [("PROBLEM", "ops", 1, 1, 60), ("PROBLEM", "dba", 1, 1, 60)]
        await t.advance(5 * 60)
        await t.ack("db1.ladc1", "Mysql")
        await t.advance(15 * 60)                # past the 10-minute escalation to boss
        await t.result("db1.ladc1", "Mysql", OK, "HARD", 1)
        assert await t.logged() == [
            ("PROBLEM", "ops", 1, 1, 60), ("PROBLEM", "dba", 1, 1, 60),
            ("ACKNOWLEDGEMENT", "dba", 1, 1, 360), ("ACKNOWLEDGEMENT", "ops", 1, 1, 360),
            ("RECOVERY", "dba", 1, 1, 1260), ("RECOVERY", "ops", 1, 1, 1260)]
        assert sorted(t.delivered) == list(range(1, 7)), "every decision is handed on after its commit"
    run(scenario)


def test_an_ack_that_is_not_sticky_ends_on_warning_to_critical_and_a_sticky_one_does_not(run) -> None:
    async def scenario(t: Timeline) -> None:
        for service in ("Disk", "HTTP"):
            host = "db1.ladc1" if service == "Disk" else "web1.ladc1"
            await t.result(host, service, WARNING)
            await t.ack(host, service, sticky=service == "HTTP")
        await t.advance(60)
        await t.result("db1.ladc1", "Disk", CRITICAL)
        await t.result("web1.ladc1", "HTTP", CRITICAL)
        assert not t.event("db1.ladc1", "Disk").acknowledged and t.event("web1.ladc1", "HTTP").acknowledged
        logged = await t.logged()
        assert [r for r in logged if r[0] == "PROBLEM"] == [
            ("PROBLEM", "ops", 1, 1, 0), ("PROBLEM", "ops", 1, 1, 0), ("PROBLEM", "ops", 2, 1, 60)]
        assert logged == [("PROBLEM", "ops", 1, 1, 0), ("ACKNOWLEDGEMENT", "ops", 1, 1, 0)] * 2 + [
            ("PROBLEM", "ops", 2, 1, 60)], "only the problem whose ack was not sticky is told again"
    run(scenario)


def test_an_expiring_ack_lets_re_notification_resume_when_it_lapses(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("db1.ladc1", "Disk", CRITICAL)           # re-notified every 30 minutes
        await t.ack("db1.ladc1", "Disk", expires=T0 + 45 * 60)
        await t.advance(44 * 60)
        assert t.held("db1.ladc1", "Disk") is None and [r[0] for r in await t.logged()] == [
            "PROBLEM", "ACKNOWLEDGEMENT"], "acknowledged: no re-notification at 30 minutes"
        await t.advance(2 * 60)
        assert not t.event("db1.ladc1", "Disk").acknowledged
        assert (await t.logged())[2:] == [("PROBLEM", "ops", 2, 1, 45 * 60)]
    run(scenario)


def test_an_unacknowledged_problem_escalates_and_the_recovery_reaches_everyone_told(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("db1.ladc1", "Mysql", CRITICAL, "HARD", 3)
        await t.advance(9 * 60 + 58)
        assert [r[1] for r in await t.logged()] == ["ops", "dba"]
        await t.advance(3)                      # 10 minutes after the problem opened
        await t.result("db1.ladc1", "Mysql", WARNING, "HARD", 3)        # a new state: a second round
        await t.result("db1.ladc1", "Mysql", OK, "HARD", 1)
        assert await t.logged() == [
            ("PROBLEM", "ops", 1, 1, 0), ("PROBLEM", "dba", 1, 1, 0),
            ("ESCALATION", "boss", 2, 2, 600),
            ("PROBLEM", "ops", 2, 1, 601), ("PROBLEM", "dba", 2, 1, 601), ("PROBLEM", "boss", 2, 2, 601),
            ("RECOVERY", "boss", 1, 1, 601), ("RECOVERY", "dba", 1, 1, 601), ("RECOVERY", "ops", 1, 1, 601)]
    run(scenario)


def test_renotification_follows_the_interval_and_a_replayed_result_is_never_told_twice(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("db1.ladc1", "Disk", CRITICAL)
        await t.advance(30 * 60)
        await t.advance(29 * 60)
        await t.result("db1.ladc1", "Disk", CRITICAL)   # the same problem again (a replayed spool)
        assert await t.logged() == [("PROBLEM", "ops", 1, 1, 0), ("PROBLEM", "ops", 2, 1, 1800)]
    run(scenario)


def test_a_muted_host_tells_nothing_until_unmuted_and_then_tells_the_problem_once(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.mute("db1.ladc1", None)
        await t.result("db1.ladc1", "Disk", CRITICAL)
        await t.advance(120)
        assert await t.logged() == []
        assert t.held("db1.ladc1", "Disk") == "muted"
        await t.unmute("db1.ladc1", None)
        await t.advance(2)
        await t.advance(60)
        assert await t.logged() == [("PROBLEM", "ops", 1, 1, 121)]
        await t.mute("db1.ladc1", "Disk")
        await t.result("db1.ladc1", "Disk", OK)
        assert await t.logged() == [("PROBLEM", "ops", 1, 1, 121)], "a recovery while muted is not told"
    run(scenario)


def test_a_downtime_holds_the_problem_and_tells_its_start_and_end(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.downtime("db1.ladc1", "Disk", T0 + 60, T0 + 600)
        await t.advance(60)
        await t.result("db1.ladc1", "Disk", CRITICAL)
        await t.advance(300)
        assert await t.logged() == [("DOWNTIMESTART", "ops", 1, 1, 60)]
        assert t.held("db1.ladc1", "Disk") == "in downtime"
        await t.advance(300)
        assert await t.logged() == [("DOWNTIMESTART", "ops", 1, 1, 60), ("DOWNTIMEEND", "ops", 1, 1, 600),
                                    ("PROBLEM", "ops", 1, 1, 600)]
    run(scenario)


def test_a_flexible_downtime_starts_when_the_check_fails_in_its_window_and_lasts_its_duration(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.downtime("db1.ladc1", "Disk", T0 + 60, T0 + 3600, flexible=600)
        await t.downtime("web1.ladc1", "HTTP", T0 + 60, T0 + 300, flexible=600)     # never triggered
        await t.advance(1200)
        assert await t.logged() == [], "a flexible downtime waits for its check to fail"
        assert t.engine.store.downtimes[2].phase.value == "ended"
        await t.result("db1.ladc1", "Disk", CRITICAL)                 # T0 + 1200: it starts now
        await t.advance(300)
        assert t.held("db1.ladc1", "Disk") == "in downtime"
        await t.advance(301)                                           # its 600 s are over at T0 + 1800
        assert await t.logged() == [("DOWNTIMESTART", "ops", 1, 1, 1201), ("DOWNTIMEEND", "ops", 1, 1, 1800),
                                    ("PROBLEM", "ops", 1, 1, 1800)]
    run(scenario)


RECURRING = OBJECTS + """\
downtimes:
  - name: patching
    hosts: [db1.ladc1]
    services: [Disk]
    ranges: {monday: "09:00-09:30", tuesday: "09:00-09:30", wednesday: "09:00-09:30", thursday: "09:00-09:30",
             friday: "09:00-09:30", saturday: "09:00-09:30", sunday: "09:00-09:30"}
    comment: nightly patching
"""


def test_a_recurring_downtime_covers_a_failure_at_its_second_occurrence(run) -> None:
    """Every day 09:00-09:30 (local time; T0 is 08:00 UTC): the first window passes quietly,
    the check fails in the second and is told once, when the window ends."""
    async def scenario(t: Timeline) -> None:
        day = 86400
        await t.advance(3600 + 1800 + 60, step=30)                    # the first window, 09:00-09:30
        first = [r for r in await t.logged()]
        assert [r[0] for r in first] == ["DOWNTIMESTART", "DOWNTIMEEND"]
        await t.advance(day - 1800 - 60 + 300, step=30)                # into the second, 09:05 the next day
        await t.result("db1.ladc1", "Disk", CRITICAL)
        await t.advance(60)
        assert t.held("db1.ladc1", "Disk") == "in downtime"
        await t.advance(25 * 60, step=10)                              # past 09:30
        logged = await t.logged()
        assert [r[0] for r in logged[2:]] == ["DOWNTIMESTART", "DOWNTIMEEND", "PROBLEM"]
        assert logged[-1][4] - logged[-2][4] <= 10, "told when the window ended"
        series = sorted({d.series for d in t.engine.store.downtimes.values()})
        assert series[:2] == [f"patching@{int(T0) + 3600}", f"patching@{int(T0) + 3600 + day}"], series
    run(scenario, objects=RECURRING)


def test_a_flapping_check_tells_its_flapping_not_its_states(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("db1.ladc1", "Disk", CRITICAL)
        for i in range(4):
            await t.advance(60)
            await t.result("db1.ladc1", "Disk", WARNING if i % 2 == 0 else CRITICAL, flapping=True)
            assert t.held("db1.ladc1", "Disk") == "flapping"
        await t.advance(60)
        await t.result("db1.ladc1", "Disk", CRITICAL, flapping=False)
        assert await t.logged() == [("PROBLEM", "ops", 1, 1, 0), ("FLAPPINGSTART", "ops", 1, 1, 60),
                                    ("FLAPPINGSTOP", "ops", 1, 1, 300)]
    run(scenario)


def test_a_host_going_down_is_told_for_the_host_not_for_each_service(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("web1.ladc1", None, DOWN, "SOFT", 1)
        await t.result("web1.ladc1", "HTTP", CRITICAL)
        await t.result("web1.ladc1", "HTTPS", CRITICAL)
        await t.advance(10)
        assert await t.logged() == [], "services wait while their host's check settles"
        assert t.held("web1.ladc1", "HTTP") == "host check settling"
        await t.result("web1.ladc1", None, DOWN, "HARD", 2)
        await t.advance(400)
        assert await t.logged() == [("PROBLEM", "ops", 1, 1, 10)]
        assert t.held("web1.ladc1", "HTTPS") == "inhibited by its host"
        assert t.event("web1.ladc1", "HTTP").parent_id == t.event("web1.ladc1", None).id
    run(scenario)


def test_outside_the_notification_period_nothing_is_told(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("db1.ladc1", "Night", CRITICAL)
        await t.advance(600)
        assert await t.logged() == []
        assert t.held("db1.ladc1", "Night") == "outside the notification period"
    run(scenario)


def test_a_storm_is_summarised_after_the_threshold(run) -> None:
    services = "\n".join(f"  - {{host: db1.ladc1, description: Disk {i}, command: \"check_dummy!0!ok\", "
                         f"contacts: [ops]}}" for i in range(6))
    objects = OBJECTS + services + "\n"

    async def scenario(t: Timeline) -> None:
        for i in range(6):
            await t.result("db1.ladc1", f"Disk {i}", CRITICAL)
        deadline = time.monotonic() + 5
        while t.engine.queued() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await t.engine.write([])
        rows = await asyncio.to_thread(t.engine.db.read, "SELECT status FROM notification_log ORDER BY id")
        assert [r[0] for r in rows] == ["sent"] * 3 + ["summarised"] * 3
        assert [len(n.summary_ids) for n in t.channel.sent] == [0, 0, 0, 3], "three alone, then one summary"
    run(scenario, objects=objects, settings=Settings(storm_threshold=3, storm_window=60, storm_hold=0.1))


# Web1's Shop depends on db1's Mysql; Checkout depends on Shop and inherits Shop's dependency;
# Cart waits 5 minutes before its first notification; app1 sits behind the switch sw1.
DEPENDENT = OBJECTS.replace("services:\n", """\
  - {name: sw1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops], command: "check_dummy!0!ok"}
  - {name: app1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops], command: "check_dummy!0!ok",
     parents: [sw1.ladc1]}
services:
""") + """\
  - {host: web1.ladc1, description: Shop, command: "check_dummy!0!ok", contacts: [ops]}
  - {host: web1.ladc1, description: Checkout, command: "check_dummy!0!ok", contacts: [ops]}
  - {host: web1.ladc1, description: Cart, command: "check_dummy!0!ok", contacts: [ops], first_notification_delay: 5m}
dependencies:
  - {master: {host: db1.ladc1, service: Mysql}, dependent: {host: web1.ladc1, service: Shop}}
  - {master: {host: web1.ladc1, service: Shop}, dependent: {host: web1.ladc1, service: Checkout},
     inherits_parent: true}
"""


def test_a_dependent_is_held_while_its_master_fails_and_told_after_it_recovers(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("db1.ladc1", "Mysql", OK)
        await t.result("web1.ladc1", "Shop", OK)
        await t.result("db1.ladc1", "Mysql", CRITICAL, "SOFT", 1)
        await t.result("web1.ladc1", "Shop", CRITICAL, "HARD", 1)
        assert t.held("web1.ladc1", "Shop") == "dependency settling", "its master may be about to fail"
        await t.advance(60)
        await t.result("db1.ladc1", "Mysql", CRITICAL, "HARD", 3)
        await t.advance(120)
        assert t.held("web1.ladc1", "Shop") == "dependency failing"
        assert [r[0:2] for r in await t.logged()] == [("PROBLEM", "ops"), ("PROBLEM", "dba")], "Mysql only"
        await t.result("db1.ladc1", "Mysql", OK)
        await t.advance(1)
        assert await t.logged() == [
            ("PROBLEM", "ops", 1, 1, 60), ("PROBLEM", "dba", 1, 1, 60),
            ("RECOVERY", "dba", 1, 1, 180), ("RECOVERY", "ops", 1, 1, 180),
            ("PROBLEM", "ops", 1, 1, 181)], "the web service still fails: told once the database is back"
    run(scenario, objects=DEPENDENT)


def test_a_dependent_that_recovers_before_its_master_is_never_told(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("web1.ladc1", "Shop", OK)
        await t.result("db1.ladc1", "Mysql", CRITICAL, "HARD", 3)
        await t.result("web1.ladc1", "Shop", CRITICAL)
        await t.result("web1.ladc1", "Checkout", CRITICAL)
        await t.advance(30)
        assert t.held("web1.ladc1", "Checkout") == "dependency failing", "Shop's own dependency, inherited"
        await t.result("web1.ladc1", "Shop", OK)
        assert t.held("web1.ladc1", "Checkout") == "dependency failing", "still: Mysql fails"
        await t.advance(30)
        await t.result("web1.ladc1", "Checkout", OK)
        await t.result("db1.ladc1", "Mysql", OK)
        await t.advance(10)
        assert [r[:2] for r in await t.logged()] == [("PROBLEM", "ops"), ("PROBLEM", "dba"),
                                                     ("RECOVERY", "dba"), ("RECOVERY", "ops")], "Mysql only"
    run(scenario, objects=DEPENDENT)


def test_first_notification_delay_holds_the_first_problem_notification(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("web1.ladc1", "Cart", CRITICAL)
        await t.advance(120)
        assert t.held("web1.ladc1", "Cart") == "first notification delay"
        await t.result("web1.ladc1", "Cart", OK)
        await t.advance(600)
        assert await t.logged() == [], "it recovered within the delay: nothing at all"
        await t.result("web1.ladc1", "Cart", CRITICAL)
        await t.advance(299)
        assert await t.logged() == []
        await t.advance(1)
        assert await t.logged() == [("PROBLEM", "ops", 1, 1, 1020)]
        await t.result("web1.ladc1", "Cart", WARNING)
        assert await t.logged() == [("PROBLEM", "ops", 1, 1, 1020), ("PROBLEM", "ops", 2, 1, 1020)], \
            "only the first notification waits"
    run(scenario, objects=DEPENDENT)


def test_a_host_behind_a_down_parent_is_not_told_as_its_own_problem(run) -> None:
    async def scenario(t: Timeline) -> None:
        await t.result("sw1.ladc1", None, DOWN)
        await t.result("app1.ladc1", None, UNREACHABLE)
        await t.advance(60)
        assert t.held("app1.ladc1", None) == "parents down"
        await t.result("sw1.ladc1", None, UP)
        await t.advance(5)
        assert t.held("app1.ladc1", None) == "parents down", "UNREACHABLE until its own next check"
        await t.result("app1.ladc1", None, DOWN)
        assert await t.logged() == [("PROBLEM", "ops", 1, 1, 0), ("RECOVERY", "ops", 1, 1, 60),
                                    ("PROBLEM", "ops", 1, 1, 65)], "the switch, then app1 DOWN on its own"
        await t.result("app1.ladc1", None, UP)
        await t.result("sw1.ladc1", None, DOWN)
        await t.result("app1.ladc1", None, DOWN)    # a poller that did not know the parent's state yet
        await t.advance(1)
        assert t.held("app1.ladc1", None) == "parents down", "its parent's problem, seen here"
    run(scenario, objects=DEPENDENT)


def test_first_results_of_a_group_commit_are_one_statement_and_the_earliest_wins() -> None:
    """A check's first result adds a first_results row; the rows of one group commit are
    written as one statement where the first was (100,000 new checks were 100,000 single-row
    statements), in their order, so INSERT OR IGNORE keeps the earliest."""
    from checkd.engine.db import INSERT_FIRST_RESULT, UPSERT_CHECK, _merge
    from checkd.engine.store import INSERT_HISTORY

    ops = [(INSERT_FIRST_RESULT, [("h", "a", 1.0)]), (INSERT_HISTORY, [("x",)]),
           (INSERT_FIRST_RESULT, [("h", "b", 2.0)]), (INSERT_FIRST_RESULT, [("h", "a", 3.0)]),
           (UPSERT_CHECK, [("h", "a", 0)])]
    merged = _merge(ops, UPSERT_CHECK)
    assert merged == [(UPSERT_CHECK, [("h", "a", 0)]),
                      (INSERT_FIRST_RESULT, [("h", "a", 1.0), ("h", "b", 2.0), ("h", "a", 3.0)]),
                      (INSERT_HISTORY, [("x",)])]
