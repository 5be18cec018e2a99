"""The embedded runner: plugins that raise, loop or hang become UNKNOWN, and
nothing they do blocks the event loop or the other checks running beside them."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest

from checkd.plugin_output import RawRun, interpret
from checkd.run.embedded import EmbeddedRunner
from checkd.states import Status

ROOT = Path(__file__).resolve().parent.parent
TEST_PLUGINS = ROOT / "tests" / "plugins"
PLUGINS = ROOT / "plugins"


def runner(**kwargs: float) -> EmbeddedRunner:
    return EmbeddedRunner([TEST_PLUGINS, PLUGINS], **kwargs)


def run(name: str, *args: str, timeout: float = 5.0) -> RawRun:
    return asyncio.run(runner().run(name, list(args), timeout))


def wait_until(condition, limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Ticker:
    """Measures how late the loop wakes a task that sleeps `period`: the loop's lag."""

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.max_lag = 0.0
        self.task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.period)
            self.max_lag = max(self.max_lag, loop.time() - before - self.period)

    def __enter__(self) -> Ticker:
        self.task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()


@pytest.mark.parametrize("name, text", [
    ("check_raises", "UNKNOWN: plugin check_raises failed: ZeroDivisionError: division by zero"),
    ("check_exits", "UNKNOWN: plugin check_exits failed: SystemExit: 7"),
    ("check_async_exits", "UNKNOWN: plugin check_async_exits failed: SystemExit: 7"),
    ("check_bad_return", "UNKNOWN: plugin check_bad_return failed: returned tuple, not Outcome"),
    ("check_no_function", "UNKNOWN: plugin check_no_function failed: AttributeError: "
                          "check_no_function.py defines no check(args) function"),
])
def test_a_failing_plugin_is_unknown_with_one_clear_line(name: str, text: str) -> None:
    out = interpret(run(name))
    assert (out.status, out.output, out.long_output) == (Status.UNKNOWN, text, "")


def test_a_plugin_with_a_syntax_error_is_unknown_naming_the_file_and_line() -> None:
    out = interpret(run("check_syntax_error"))
    assert out.status is Status.UNKNOWN
    assert out.output.startswith("UNKNOWN: plugin check_syntax_error failed: SyntaxError: ")
    assert "check_syntax_error.py, line 3" in out.output


def test_a_raising_plugin_gives_the_same_bytes_embedded_and_as_a_script() -> None:
    proc = subprocess.run([sys.executable, str(TEST_PLUGINS / "check_raises.py")], capture_output=True)
    assert proc.returncode == 3, proc.stderr
    embedded = run("check_raises")
    assert (embedded.exit_code, embedded.stdout) == (proc.returncode, proc.stdout)


@pytest.mark.parametrize("name", ["../plugins/check_load", "check-load", "", "check_load.py"])
def test_a_name_that_is_not_a_plain_identifier_is_refused(name: str) -> None:
    raw = run(name)
    assert raw.error is not None and "invalid plugin name" in raw.error
    assert interpret(raw).status is Status.UNKNOWN


def test_an_unknown_plugin_cannot_run() -> None:
    raw = run("check_nonexistent")
    assert raw.error is not None and "no plugin check_nonexistent" in raw.error


def test_a_pure_python_loop_is_stopped_by_the_injected_exception() -> None:
    r = runner()
    started = time.monotonic()
    raw = asyncio.run(r.run("check_loops", [], 0.5))
    assert time.monotonic() - started < 5
    assert raw.timed_out and interpret(raw).output == "(check timed out after 0.5s)"
    assert wait_until(lambda: r.running_threads == 0, 10), "the looping thread did not die"
    assert r.leaked_threads == 0


def test_a_thread_stuck_in_sleep_is_counted_as_leaked_until_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> tuple[RawRun, float, int, int]:
        r = runner(leak_grace=0.2)
        started = time.monotonic()
        raw = await r.run("check_sleeps", ["3"], timeout=0.3)
        returned_after = time.monotonic() - started
        await asyncio.sleep(0.6)
        leaked_while_asleep = r.leaked_threads
        await asyncio.to_thread(wait_until, lambda: r.leaked_threads == 0, 15)
        return raw, returned_after, leaked_while_asleep, r.leaked_threads

    with caplog.at_level(logging.WARNING, logger="checkd.run.embedded"):
        raw, returned_after, leaked_while_asleep, leaked_after = asyncio.run(scenario())
    assert raw.timed_out
    assert returned_after < 2.5, "the runner waited for the sleeping thread"
    assert leaked_while_asleep == 1
    assert leaked_after == 0, "the thread should die once sleep() returns and the exception fires"
    assert any("check_sleeps" in r.getMessage() for r in caplog.records)


def test_hung_plugins_do_not_hold_up_quick_checks_timers_or_the_loop() -> None:
    async def scenario() -> dict[str, object]:
        r = runner()
        loop = asyncio.get_running_loop()
        with Ticker() as ticker:
            started = loop.time()
            hung = [loop.create_task(r.run(name, [], 3.0))
                    for name in ("check_loops", "check_sleeps", "check_async_sleeps", "check_loops")]
            await asyncio.sleep(0.05)  # let the hung ones get going first

            async def timed(aw: Awaitable[object]) -> float:
                await aw
                return loop.time() - started

            quick = [timed(r.run("check_echo", ["OK", str(i)], 3.0)) for i in range(50)]
            quick_done = await asyncio.gather(*quick, timed(asyncio.sleep(0.5)))
            hung_raws = await asyncio.gather(*hung)
            total = loop.time() - started
        return {"quick": quick_done[:-1], "timer": quick_done[-1], "hung": hung_raws,
                "total": total, "lag": ticker.max_lag}

    result = asyncio.run(scenario())
    # Generous bounds (2-core CI box), but all far below the 3 s the hung plugins hold.
    assert max(result["quick"]) < 2.5, result["quick"]
    assert 0.5 <= result["timer"] < 2.0
    assert result["lag"] < 0.5, f"event loop blocked for {result['lag']:.3f}s"
    assert all(raw.timed_out for raw in result["hung"])
    assert result["total"] < 6


def test_the_quick_checks_beside_hung_ones_give_their_own_results() -> None:
    async def scenario() -> list[RawRun]:
        r = runner()
        hung = asyncio.get_running_loop().create_task(r.run("check_loops", [], 1.0))
        raws = await asyncio.gather(*(r.run("check_echo", ["WARNING", f"n{i}"], 5.0) for i in range(20)))
        await hung
        return list(raws)

    for i, raw in enumerate(asyncio.run(scenario())):
        out = interpret(raw)
        assert (out.status, out.output, out.perfdata) == (Status.WARNING, f"WARNING: n{i}", "n=2;;;0")


def test_two_thousand_embedded_file_age_checks_complete(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")

    async def scenario() -> list[RawRun]:
        r = runner()
        limit = asyncio.Semaphore(64)  # a poller bounds concurrent checks too

        async def one() -> RawRun:
            async with limit:
                return await r.run("check_file_age", ["-f", str(path), "-w", "600", "-c", "900"], 30.0)

        return await asyncio.gather(*(one() for _ in range(2000)))

    started = time.monotonic()
    raws = asyncio.run(scenario())
    elapsed = time.monotonic() - started
    assert elapsed < 120
    assert all(interpret(raw).status is Status.OK for raw in raws)
    # Same file, same perfdata: only the age moves, one value per second the run took (a loaded
    # CI machine took over 3 s, and a fixed bound of 3 values failed there).
    assert len({raw.stdout.split(b"|")[1] for raw in raws}) <= int(elapsed) + 2


def test_a_changed_plugin_file_is_reloaded(tmp_path: Path) -> None:
    plugin = tmp_path / "check_version.py"

    def write(version: int) -> None:
        plugin.write_text("from checkd.pluginapi import Outcome, Status\n\n"
                          f"def check(args):\n    return Outcome(Status.OK, 'version {version}')\n")
        os.utime(plugin, ns=(version * 10**9, version * 10**9))  # mtimes apart, whatever the clock

    async def scenario() -> list[str]:
        r = EmbeddedRunner([tmp_path])
        outputs = []
        for version in (1, 1, 2):
            write(version)
            outputs.append(interpret(await r.run("check_version", [], 5.0)).output)
        return outputs

    assert asyncio.run(scenario()) == ["OK: version 1", "OK: version 1", "OK: version 2"]


def test_cancelling_a_run_stops_its_plugin_thread() -> None:
    r = runner()

    async def scenario() -> None:
        task = asyncio.get_running_loop().create_task(r.run("check_loops", [], 60.0))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert wait_until(lambda: r.running_threads == 0, 10)
