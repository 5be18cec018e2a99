"""The scheduler runs real plugins on time with Nagios' soft/hard timing."""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path

from checkd.config import load_objects
from checkd.config.load import SHIPPED_PLUGINS
from checkd.result import CheckResult
from checkd.run.runner import Runner
from checkd.scheduler import Scheduler, site_checks
from checkd.states import StateType
from tests.helpers import require_plugins


def make_objects(tmp: Path, services: str) -> Path:
    objdir = tmp / "objects"
    objdir.mkdir()
    (objdir / "o.yaml").write_text(textwrap.dedent("""\
        commands:
          from_file: "/bin/sh -c 'read s < $ARG1$; echo \\"state $s\\"; exit $s'"
          dummy: "$PLUGINDIR$/check_dummy $ARG1$ '$ARG2$'"
          sleeper: "/bin/sleep $ARG1$"
        hosts:
          - {name: h1.site1, address: 127.0.0.1}
        """) + textwrap.dedent(services))
    return objdir


def state_file(tmp: Path, name: str, status: int = 0) -> Path:
    """A file a from_file check reads its exit status from."""
    path = tmp / name
    path.write_text(f"{status}\n")
    return path


async def collect(objdir: Path, seconds: float, max_concurrent: int = 256,
                  between: list[tuple[float, Path, str]] | None = None) -> list[CheckResult]:
    objs = load_objects(objdir)
    results: list[CheckResult] = []

    async def sink(r: CheckResult) -> None:
        results.append(r)

    runner = Runner(SHIPPED_PLUGINS)
    sched = Scheduler(objs, site_checks(objs, "site1"), runner, sink, max_concurrent=max_concurrent)
    sched.start()
    elapsed = 0.0
    for at, path, text in sorted(between or []):
        await asyncio.sleep(at - elapsed)
        elapsed = at
        path.write_text(text)
    await asyncio.sleep(seconds - elapsed)
    await sched.stop()
    await runner.close()
    return results


def test_soft_hard_sequence_with_retry_timing(tmp_path: Path) -> None:
    require_plugins()
    state = state_file(tmp_path, "state")
    objdir = make_objects(tmp_path, """\
        services:
          - {host: h1.site1, description: S, command: "from_file!%s", interval: 1.2s,
             retry_interval: 0.3s, max_attempts: 3}
        """ % state)
    results = asyncio.run(collect(objdir, 6.5, between=[(1.5, state, "2\n"), (4.8, state, "0\n")]))
    seq = [(r.status, r.state_type, r.attempt) for r in results]
    first_crit = next(i for i, r in enumerate(results) if r.status == 2)
    assert seq[first_crit:first_crit + 4] == [(2, StateType.SOFT, 1), (2, StateType.SOFT, 2),
                                              (2, StateType.HARD, 3), (2, StateType.HARD, 1)]
    gaps = [results[i + 1].scheduled - results[i].scheduled for i in range(first_crit, first_crit + 3)]
    assert 0.25 < gaps[0] < 0.45 and 0.25 < gaps[1] < 0.45, f"soft retries not at retry_interval: {gaps}"
    assert 1.1 < gaps[2] < 1.4, f"after HARD the normal interval applies: {gaps}"
    recovery = next(r for r in results[first_crit:] if r.status == 0)
    assert (recovery.state_type, recovery.attempt) == (StateType.HARD, 1)
    assert all(r.output.startswith("state ") for r in results)


def test_first_checks_are_spread_over_the_interval(tmp_path: Path) -> None:
    require_plugins()
    services = "services:\n" + "".join(
        f"  - {{host: h1.site1, description: S{i:02d}, command: \"dummy!0!ok\", interval: 2s}}\n"
        for i in range(20))
    results = asyncio.run(collect(make_objects(tmp_path, services), 1.9))
    firsts = sorted(r.scheduled for r in results)
    assert len(firsts) == 20, "every check ran once in its first interval"
    gaps = [b - a for a, b in zip(firsts, firsts[1:])]
    assert all(0.05 < g < 0.15 for g in gaps), f"not evenly spread (2s / 20 = 0.1s): {gaps}"


def test_concurrency_bound_holds_and_waiting_counts_as_latency(tmp_path: Path) -> None:
    services = "services:\n" + "".join(
        f"  - {{host: h1.site1, description: S{i:02d}, command: \"sleeper!0.4\", interval: 0.1s, timeout: 5s}}\n"
        for i in range(12))
    results = asyncio.run(collect(make_objects(tmp_path, services), 2.0, max_concurrent=3))
    assert len(results) >= 9
    events = sorted([(r.started, 1) for r in results] + [(r.finished, -1) for r in results])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 3, f"{peak} checks ran at once with max_concurrent=3"
    assert max(r.latency for r in results) > 0.3, "queued checks must show their wait as latency"


def test_a_poller_that_starts_far_behind_runs_16_checks_at_first_then_its_full_limit(tmp_path: Path) -> None:
    """Slow start (docs/scheduling.md): 40 checks all due at once start 16 at a time, and the
    limit grows by one with each finished check up to max_concurrent_checks."""
    services = "services:\n" + "".join(
        f"  - {{host: h1.site1, description: S{i:02d}, command: \"sleeper!0.3\", interval: 0.01s, timeout: 5s}}\n"
        for i in range(40))
    results = asyncio.run(collect(make_objects(tmp_path, services), 2.5, max_concurrent=40))
    events = sorted([(r.started, 1) for r in results] + [(r.finished, -1) for r in results])
    first_end = min(r.finished for r in results)
    running, at_first_end, peak = 0, 0, 0
    for t, delta in events:
        running += delta
        peak = max(peak, running)
        if t < first_end:
            at_first_end = running
    assert at_first_end == 16, f"{at_first_end} checks ran before the first one finished (slow start: 16)"
    assert peak > 30, f"the limit did not grow towards max_concurrent=40: at most {peak} at once"


def test_a_down_host_behind_a_down_parent_is_unreachable(tmp_path: Path) -> None:
    require_plugins()
    objdir = tmp_path / "objects"
    objdir.mkdir()
    (objdir / "o.yaml").write_text(textwrap.dedent("""\
        commands:
          dummy: "$PLUGINDIR$/check_dummy $ARG1$ '$ARG2$'"
        hosts:
          - {name: switch1.site1, command: "dummy!2!switch dead", interval: 0.3s, max_attempts: 1}
          - {name: behind.site1, parents: [switch1.site1], command: "dummy!2!no answer", interval: 0.3s,
             max_attempts: 1}
          - {name: elsewhere.site1, command: "dummy!2!no answer", interval: 0.3s, max_attempts: 1}
          - {name: up.site1, parents: [switch1.site1], command: "dummy!1!slow but there", interval: 0.3s}
        """))
    results = asyncio.run(collect(objdir, 1.5))
    last = {r.host: r for r in results}
    assert last["switch1.site1"].status == 1                   # DOWN
    assert last["behind.site1"].status == 2                    # UNREACHABLE: its only parent is down
    assert last["elsewhere.site1"].status == 1                 # DOWN: no parents
    assert last["up.site1"].status == 0                        # WARNING from a host check is UP
    assert all(r.service is None for r in results)


def test_a_result_read_late_keeps_the_time_its_plugin_ended(tmp_path: Path) -> None:
    """A poller stopped (SIGSTOP, a stalled loop) while its exec worker finished a plugin must
    not stamp that result with the time it woke up: central would take it for newer than what
    it got meanwhile (after a takeover: an old OK closing a new problem, a false RECOVERY)."""
    objdir = make_objects(tmp_path, """\
        services:
          - {host: h1.site1, description: S, command: "sleeper!0.5", interval: 60s}
        """)

    async def run() -> tuple[CheckResult, float]:
        objs = load_objects(objdir)
        results: list[CheckResult] = []

        async def sink(r: CheckResult) -> None:
            results.append(r)

        runner = Runner(SHIPPED_PLUGINS, exec_workers=1)
        sched = Scheduler(objs, site_checks(objs, "site1"), runner, sink)
        sched.start()
        await asyncio.sleep(0.2)        # the job is with the worker
        time.sleep(4.0)                 # this loop stands still; the worker starts and runs the plugin
        woke = time.time()
        while not results:
            await asyncio.sleep(0.05)
        await sched.stop()
        await runner.close()
        return results[0], woke

    r, woke = asyncio.run(run())
    assert r.finished - r.started >= 0.45, "the plugin's own run time"
    assert r.finished < woke - 1.0, f"stamped when the loop woke: finished {r.finished:.2f}, woke {woke:.2f}"


def test_a_check_does_not_run_while_its_master_fails_its_execution_dependency(tmp_path: Path) -> None:
    require_plugins()
    master = state_file(tmp_path, "master")
    objdir = make_objects(tmp_path, """\
        services:
          - {host: h1.site1, description: DB, command: "from_file!%s", interval: 0.2s, max_attempts: 1}
          - {host: h1.site1, description: Web, command: "dummy!0!ok", interval: 0.2s}
        dependencies:
          - {master: {host: h1.site1, service: DB}, dependent: {host: h1.site1, service: Web},
             execution_failure_criteria: [critical]}
        """ % master)
    results = asyncio.run(collect(objdir, 2.4, between=[(0.6, master, "2\n"), (1.6, master, "0\n")]))
    db = [r for r in results if r.service == "DB"]
    failed = next(r.finished for r in db if r.status == 2)
    back = next(r.finished for r in db if r.status == 0 and r.finished > failed)
    web = [r.started for r in results if r.service == "Web"]
    # At most one: a timer that fired while DB's result was on its way back from the exec worker.
    assert len([t for t in web if failed < t < back - 0.05]) <= 1, "Web ran while DB was CRITICAL"
    assert any(t < failed for t in web) and any(t > back for t in web), "Web runs before and after"


def test_a_failing_host_checks_its_parent_and_a_parent_back_up_checks_its_children(tmp_path: Path) -> None:
    """Nagios' reachability checks, on demand: the switch's own first run would come at 1 s
    and its next at 2 s, the child's next in 30 s."""
    require_plugins()
    switch, child = state_file(tmp_path, "switch", 2), state_file(tmp_path, "child", 2)
    objdir = make_objects(tmp_path, f"""\
        # behind a switch (h1.site1 has no check)
          - {{name: a-child.site1, parents: [switch.site1], command: "from_file!{child}", interval: 30s,
             max_attempts: 1}}
          - {{name: switch.site1, command: "from_file!{switch}", interval: 2s, max_attempts: 1}}
        """)
    results = asyncio.run(collect(objdir, 2.6, between=[(1.0, switch, "0\n"), (1.0, child, "0\n")]))
    sw = [r for r in results if r.host == "switch.site1"]
    kid = [r for r in results if r.host == "a-child.site1"]
    assert sw[0].status == 1 and sw[0].check_type == "forced" and sw[0].finished - kid[0].finished < 0.5, \
        "the child's failure asked for its parent at once"
    up = next(r for r in sw if r.status == 0)
    assert [(r.status, r.check_type) for r in kid] == [(1, "active"), (0, "forced")], "checked again on demand"
    assert kid[1].finished - up.finished < 0.5
