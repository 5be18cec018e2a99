"""`active: false` and `check_period` in the scheduler, with real plugins and a real Scheduler.

The wall clock the scheduler sees is shifted (its `wall=` argument) so that a time period
opens or closes a second or two into the test; everything else runs in real time.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from checkd.config import load_objects
from checkd.config.load import SHIPPED_PLUGINS
from checkd.config.model import Objects
from checkd.result import CheckResult
from checkd.run.runner import Runner
from checkd.scheduler import NEVER_RECHECK, Scheduler, site_checks
from tests.helpers import require_plugins

HEAD = """\
commands:
  dummy: "$PLUGINDIR$/check_dummy $ARG1$ '$ARG2$'"
timeperiods:
  - {name: office, monday: "09:00-17:00", tuesday: "09:00-17:00", wednesday: "09:00-17:00",
     thursday: "09:00-17:00", friday: "09:00-17:00"}
  - {name: never}
"""
MONDAY = datetime.date(2026, 12, 7)


def local(day: datetime.date, hhmmss: str) -> float:
    """Epoch seconds of a local wall time (the scheduler evaluates periods in the local zone)."""
    return datetime.datetime.combine(day, datetime.time.fromisoformat(hhmmss)).timestamp()


def shifted(to: float) -> Callable[[], float]:
    """A wall clock that reads `to` now and runs at the real pace."""
    delta = to - time.time()
    return lambda: time.time() + delta


def objects(tmp: Path, body: str, name: str = "o") -> Objects:
    objdir = tmp / name
    objdir.mkdir(exist_ok=True)
    (objdir / "o.yaml").write_text(HEAD + textwrap.dedent(body))
    return load_objects(objdir)


Scenario = Callable[[Scheduler, list[CheckResult]], Awaitable[None]]


async def run(objs: Objects, wall: Callable[[], float], scenario: Scenario) -> list[CheckResult]:
    results: list[CheckResult] = []

    async def sink(r: CheckResult) -> None:
        results.append(r)

    runner = Runner(SHIPPED_PLUGINS)
    sched = Scheduler(objs, site_checks(objs, "site1"), runner, sink, wall=wall)
    sched.start()
    try:
        await scenario(sched, results)
    finally:
        await sched.stop()
        await runner.close()
    return results


def of(results: list[CheckResult], service: str | None, host: str = "h1.site1") -> list[CheckResult]:
    return [r for r in results if r.service == service and r.host == host]


def test_a_check_waits_for_its_period_to_open_and_then_runs_on_time(tmp_path: Path) -> None:
    """Nagios' get_next_valid_time: outside the period the next run is where the period opens,
    not the next interval tick that happens to fall inside it."""
    require_plugins()
    objs = objects(tmp_path, """\
        hosts:
          - {name: h1.site1}
        services:
          - {host: h1.site1, description: Office, command: "dummy!0!ok", interval: 0.4s, check_period: office}
          - {host: h1.site1, description: Always, command: "dummy!0!ok", interval: 0.4s}
        """)
    nine = local(MONDAY, "09:00:00")

    async def scenario(sched: Scheduler, results: list[CheckResult]) -> None:
        await asyncio.sleep(0.5)
        assert sched.next_check(("h1.site1", "Office")) == pytest.approx(nine, abs=0.05)
        await asyncio.sleep(2.3)

    results = asyncio.run(run(objs, shifted(nine - 1.5), scenario))
    office, always = of(results, "Office"), of(results, "Always")
    assert always and always[0].scheduled < nine - 1.0, "a check without a period runs at once"
    assert office, "the check runs once its period has opened"
    assert all(r.scheduled >= nine for r in office), [r.scheduled - nine for r in office]
    assert office[0].scheduled == pytest.approx(nine, abs=0.06), "the first run is due when the period opens"
    gaps = [b.scheduled - a.scheduled for a, b in zip(office, office[1:])]
    assert gaps and all(0.35 < g < 0.45 for g in gaps), f"then every interval: {gaps}"


def test_at_the_end_of_its_period_a_check_stops_until_the_next_working_day(tmp_path: Path) -> None:
    require_plugins()
    objs = objects(tmp_path, """\
        hosts:
          - {name: h1.site1}
        services:
          - {host: h1.site1, description: Office, command: "dummy!0!ok", interval: 0.3s, check_period: office}
        """)
    five = local(MONDAY, "17:00:00")

    async def scenario(sched: Scheduler, results: list[CheckResult]) -> None:
        await asyncio.sleep(2.5)
        assert sched.next_check(("h1.site1", "Office")) == pytest.approx(
            local(MONDAY + datetime.timedelta(days=1), "09:00:00"), abs=0.05)

    results = asyncio.run(run(objs, shifted(five - 1.0), scenario))
    assert len(results) >= 2, "it ran while its period lasted"
    assert all(r.scheduled < five for r in results), [r.scheduled - five for r in results]


def test_a_period_that_is_never_active_is_logged_once_and_not_run(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    require_plugins()
    objs = objects(tmp_path, """\
        hosts:
          - {name: h1.site1}
        services:
          - {host: h1.site1, description: Never, command: "dummy!0!ok", interval: 0.2s, check_period: never}
        """)
    key = ("h1.site1", "Never")

    async def scenario(sched: Scheduler, results: list[CheckResult]) -> None:
        await asyncio.sleep(1.0)
        # Not a busy loop nor a tick every interval: looked at again in a day.
        assert sched.next_check(key) == pytest.approx(time.time() - 1.0 + NEVER_RECHECK, abs=0.5)
        assert not sched.run_once(key) and not sched.run_once(key), "no freshness check outside the period"

    with caplog.at_level(logging.INFO, logger="checkd.scheduler"):
        results = asyncio.run(run(objs, time.time, scenario))
    assert results == []
    said = [r.getMessage() for r in caplog.records if "Never" in r.getMessage()]
    assert len([m for m in said if "active at no time in the next year" in m]) == 1, said
    assert len([m for m in said if "outside its check_period never" in m]) == 1, said


def test_a_passive_check_runs_only_when_forced_or_for_freshness(tmp_path: Path) -> None:
    require_plugins()
    objs = objects(tmp_path, """\
        hosts:
          - {name: h1.site1}
        services:
          - {host: h1.site1, description: Passive, command: "dummy!0!ok", interval: 0.2s, active: false}
          - {host: h1.site1, description: Active, command: "dummy!0!ok", interval: 0.2s}
        """)
    key = ("h1.site1", "Passive")

    async def scenario(sched: Scheduler, results: list[CheckResult]) -> None:
        await asyncio.sleep(1.2)
        assert not of(results, "Passive") and of(results, "Active")
        assert sched.next_check(key) is None
        assert sched.reschedule_now(key)
        await asyncio.sleep(1.0)
        assert [r.check_type for r in of(results, "Passive")] == ["forced"], "one forced run, no timer after it"
        assert sched.next_check(key) is None
        assert sched.run_once(key, "freshness")
        await asyncio.sleep(1.0)

    results = asyncio.run(run(objs, time.time, scenario))
    assert [r.check_type for r in of(results, "Passive")] == ["forced", "freshness"]


def test_a_forced_check_runs_outside_its_period_and_the_period_then_applies(tmp_path: Path) -> None:
    require_plugins()
    objs = objects(tmp_path, """\
        hosts:
          - {name: h1.site1}
        services:
          - {host: h1.site1, description: Office, command: "dummy!0!ok", interval: 0.2s, check_period: office}
        """)
    key = ("h1.site1", "Office")
    saturday = local(MONDAY - datetime.timedelta(days=2), "12:00:00")

    async def scenario(sched: Scheduler, results: list[CheckResult]) -> None:
        await asyncio.sleep(0.5)
        assert not results
        assert sched.reschedule_now(key)
        await asyncio.sleep(1.0)
        assert sched.next_check(key) == pytest.approx(local(MONDAY, "09:00:00"), abs=0.05)

    results = asyncio.run(run(objs, shifted(saturday), scenario))
    assert [r.check_type for r in results] == ["forced"]


def test_no_on_demand_check_of_a_passive_host_or_one_outside_its_period(tmp_path: Path) -> None:
    """A failing service checks its UP host at once (Nagios' on-demand host check), but not
    a host whose checks are passive or whose check_period is closed: that is no forced check."""
    require_plugins()
    objs = objects(tmp_path, """\
        hosts:
          - {name: ok.site1, command: "dummy!0!up", interval: 1h}
          - {name: passive.site1, command: "dummy!0!up", interval: 1h, active: false}
          - {name: closed.site1, command: "dummy!0!up", interval: 1h, check_period: never}
        services:
          - {hosts: [ok.site1, passive.site1, closed.site1], description: Disk, command: "dummy!2!full",
             interval: 0.2s, retry_interval: 0.2s, max_attempts: 5}
        """)

    async def scenario(sched: Scheduler, results: list[CheckResult]) -> None:
        await asyncio.sleep(2.0)

    results = asyncio.run(run(objs, time.time, scenario))
    hosts = [r for r in results if r.service is None]
    assert {r.host for r in results if r.service == "Disk"} == {"ok.site1", "passive.site1", "closed.site1"}
    assert {r.host for r in hosts} == {"ok.site1"}, [(r.host, r.check_type) for r in hosts]


def test_a_reload_applies_active_and_check_period_changes(tmp_path: Path) -> None:
    """Made active: runs soon (spread over at most a minute, here its interval); made passive:
    stops; a period that was closed and is open now after the reload: runs now, not when the
    old period would have opened."""
    require_plugins()
    before = """\
        hosts:
          - {name: h1.site1}
        services:
          - {host: h1.site1, description: Woken, command: "dummy!0!ok", interval: 0.3s, active: %s}
          - {host: h1.site1, description: Silenced, command: "dummy!0!ok", interval: 0.3s, active: %s}
          - {host: h1.site1, description: Reopened, command: "dummy!0!ok", interval: 0.3s, check_period: %s}
        """
    objs = objects(tmp_path, before % ("false", "true", "never"), "before")
    after = objects(tmp_path, before % ("true", "false", "office"), "after")
    monday_noon = local(MONDAY, "12:00:00")

    async def scenario(sched: Scheduler, results: list[CheckResult]) -> None:
        await asyncio.sleep(1.0)
        assert {r.service for r in results} == {"Silenced"}
        sched.reconfigure(after, site_checks(after, "site1"))
        reloaded = len(of(results, "Silenced"))
        await asyncio.sleep(1.5)
        assert len(of(results, "Silenced")) <= reloaded + 1, "at most the run in flight at the reload"
        assert sched.next_check(("h1.site1", "Silenced")) is None

    results = asyncio.run(run(objs, shifted(monday_noon), scenario))
    assert len(of(results, "Woken")) >= 3 and len(of(results, "Reopened")) >= 3


def test_a_scheduler_never_started_does_not_start_checks_on_reload(tmp_path: Path) -> None:
    """Central's freshness scheduler only runs checks through run_once; a reload that adds
    a check to it must not start polling that check on a timer."""
    require_plugins()
    objs = objects(tmp_path, """\
        hosts:
          - {name: h1.site1}
        services:
          - {host: h1.site1, description: A, command: "dummy!0!ok", interval: 0.2s}
        """)

    async def scenario() -> list[CheckResult]:
        results: list[CheckResult] = []

        async def sink(r: CheckResult) -> None:
            results.append(r)

        runner = Runner(SHIPPED_PLUGINS)
        sched = Scheduler(objs, [], runner, sink)
        sched.reconfigure(objs, site_checks(objs, "site1"))
        await asyncio.sleep(1.0)
        assert sched.run_once(("h1.site1", "A"))
        await asyncio.sleep(0.5)
        await sched.stop()
        await runner.close()
        return results

    assert [r.check_type for r in asyncio.run(scenario())] == ["freshness"]
