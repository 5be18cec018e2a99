"""The poller as a real process: results reach central exactly once, in order,
through a central outage and a kill -9 of the poller."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkd.spool import Spool
from tests.fake_central import FakeCentral
from tests.helpers import REPO, require_plugins, wait_for


class CentralThread:
    """FakeCentral on its own event loop in a thread, so the test can block freely."""

    def __init__(self) -> None:
        self.central = FakeCentral({"poller-t1": "tok"})
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.central.start())

    def call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)  # type: ignore[arg-type]

    def close(self) -> None:
        self.call(self.central.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def central() -> Iterator[CentralThread]:
    c = CentralThread()
    yield c
    c.close()


def write_config(tmp: Path, url: str, services: int = 20) -> Path:
    (tmp / "objects").mkdir()
    svc = "".join(f"  - {{host: h1.t1, description: S{i}, command: \"dummy!{i % 3}!s{i}\", interval: 0.2s,"
                  f" max_attempts: 2, retry_interval: 0.2s}}\n" for i in range(services))
    (tmp / "objects" / "o.yaml").write_text(textwrap.dedent("""\
        commands:
          dummy: "$PLUGINDIR$/check_dummy $ARG1$ '$ARG2$'"
        hosts:
          - {name: h1.t1, address: 127.0.0.1}
        services:
        """) + svc)
    node = tmp / "poller.yaml"
    node.write_text(textwrap.dedent(f"""\
        poller:
          name: poller-t1
          site: t1
          central: {url}
          token: tok
          state_dir: state
          objects: objects
          heartbeat_interval: 0.5s
        """))
    return node


def start_poller(node: Path, **popen: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "checkd", "poller", "-c", str(node)], cwd=REPO,
                            stderr=open(node.parent / "poller.log", "ab"), **popen)


def durable_seqs(state_dir: Path) -> set[int]:
    async def read() -> set[int]:
        spool = Spool(state_dir / "spool")
        await spool.open()
        try:
            return {r["seq"] for r in spool.read(0, 1 << 30)}
        finally:
            await spool.close()
    return asyncio.run(read())



def test_outage_and_kill_minus_9_lose_nothing_and_seq_keeps_rising(tmp_path: Path, central: CentralThread) -> None:
    require_plugins()
    node = write_config(tmp_path, central.central.url)
    poller = start_poller(node)
    try:
        wait_for(lambda: len(central.central.results("poller-t1")) > 50, 20, "first results at central")
        central.call(central.central.fail("down"))
        time.sleep(2.0)                               # central down: the poller keeps spooling
        poller.send_signal(signal.SIGKILL)
        poller.wait(timeout=10)
        before = central.central.results("poller-t1")[:]
        spooled = durable_seqs(tmp_path / "state")    # what the killed poller had made durable
        assert spooled and min(spooled) > max(before) - 600, "the outage's results are in the spool"
        poller = start_poller(node)
        time.sleep(1.0)
        central.call(central.central.recover())
        wait_for(lambda: spooled <= set(central.central.results("poller-t1")), 30, "the spool to arrive")
        wait_for(lambda: max(central.central.results("poller-t1")) > max(spooled) + 20, 20, "new results")
    finally:
        poller.terminate()
        assert poller.wait(timeout=30) == 0, (tmp_path / "poller.log").read_text()[-2000:]
    seqs = central.central.results("poller-t1")
    assert seqs == sorted(seqs), "results arrived out of order"
    assert len(seqs) == len(set(seqs)), "a result was stored twice"
    assert spooled <= set(seqs), "a result that reached the spool was lost"
    # After the restart seq went on above everything the first run handed out.
    after = [s for s in seqs if s not in spooled and s not in before]
    assert after and min(after) > max(spooled)
    results = [r for b in central.central.received for r in b["batch"]]
    assert {r["output"] for r in results} >= {f"OK: s{i}" for i in range(0, 20, 3)}
    assert all(r["state_type"] in ("SOFT", "HARD") and r["started"] >= r["scheduled"] - 0.05 for r in results)


def test_sigterm_stops_the_poller_cleanly(tmp_path: Path, central: CentralThread) -> None:
    require_plugins()
    node = write_config(tmp_path, central.central.url, services=5)
    poller = start_poller(node)
    wait_for(lambda: len(central.central.results("poller-t1")) > 5, 20, "results")
    started = time.monotonic()
    poller.terminate()
    assert poller.wait(timeout=30) == 0
    assert time.monotonic() - started < 10
    assert (tmp_path / "state" / "retention.json").exists(), "check states are saved at shutdown"
    log = (tmp_path / "poller.log").read_text()
    assert "poller poller-t1 stopped" in log and "Traceback" not in log
    assert os.path.exists(tmp_path / "state" / "spool")


def test_a_soft_problem_goes_on_counting_attempts_across_a_restart(tmp_path: Path, central: CentralThread) -> None:
    """Retention: a restart in the middle of confirming a problem neither starts the count
    again (a late alert) nor forgets the history (docs/scheduling.md)."""
    require_plugins()
    node = write_config(tmp_path, central.central.url, services=0)
    (tmp_path / "objects" / "o.yaml").write_text(textwrap.dedent("""\
        commands:
          dummy: "$PLUGINDIR$/check_dummy $ARG1$ '$ARG2$'"
        hosts:
          - {name: h1.t1, address: 127.0.0.1}
        services:
          - {host: h1.t1, description: Disk, command: "dummy!2!disk full", interval: 2s,
             max_attempts: 8, retry_interval: 0.3s}
        """))

    def attempts() -> list[tuple[str, int]]:
        return [(r["state_type"], r["attempt"]) for b in central.central.received for r in b.get("batch", ())]

    poller = start_poller(node)
    try:
        wait_for(lambda: ("SOFT", 3) in attempts(), 20, "the third SOFT attempt")
    finally:
        poller.terminate()
        assert poller.wait(timeout=30) == 0, (tmp_path / "poller.log").read_text()[-2000:]
    before = attempts()
    assert before[-1][0] == "SOFT" and before[-1][1] >= 3
    poller = start_poller(node)
    try:
        wait_for(lambda: ("HARD", 8) in attempts(), 30, "the HARD state at attempt 8")
    finally:
        poller.terminate()
        assert poller.wait(timeout=30) == 0, (tmp_path / "poller.log").read_text()[-2000:]
    after = attempts()[len(before):]
    # The first run after the restart is the next attempt, never attempt 1 again.
    assert after[0] == ("SOFT", before[-1][1] + 1), (before, after)
    assert [a for _, a in after][:8 - before[-1][1]] == list(range(before[-1][1] + 1, 9))


def test_sigterm_to_the_whole_process_group_loses_no_check(tmp_path: Path, central: CentralThread) -> None:
    """`systemctl stop` sends SIGTERM to every process of the unit, exec workers included: they
    must finish their jobs for the poller, not die with checks in flight (sent as UNKNOWN)."""
    require_plugins()
    node = write_config(tmp_path, central.central.url, services=20)
    poller = start_poller(node, start_new_session=True)
    try:
        wait_for(lambda: len(central.central.results("poller-t1")) > 100, 20, "results")
    finally:
        os.killpg(poller.pid, signal.SIGTERM)
        assert poller.wait(timeout=30) == 0
    log = (tmp_path / "poller.log").read_text()
    assert "exec worker" not in log and "Traceback" not in log, log[-2000:]
    outputs = [r["output"] for b in central.central.received for r in b.get("batch", ())]
    assert not [o for o in outputs if "worker" in o], "a check was reported as lost with its worker"


def test_a_passive_service_and_a_closed_period_give_no_results_of_their_own(tmp_path: Path,
                                                                            central: CentralThread) -> None:
    """`active: false` (an imported `active_checks_enabled 0`) and a check_period that never
    opens: the poller sends nothing for them by itself; a reschedule from central is a forced
    check and runs once; a reload that makes the service active starts it."""
    require_plugins()
    node = write_config(tmp_path, central.central.url, services=0)
    objects = textwrap.dedent("""\
        commands:
          dummy: "$PLUGINDIR$/check_dummy $ARG1$ '$ARG2$'"
        timeperiods:
          - {name: never}
        hosts:
          - {name: h1.t1, address: 127.0.0.1}
        services:
          - {host: h1.t1, description: Active, command: "dummy!0!ok", interval: 0.2s}
          - {host: h1.t1, description: Passive, command: "dummy!0!ok", interval: 0.2s, active: %s}
          - {host: h1.t1, description: Closed, command: "dummy!0!ok", interval: 0.2s, check_period: never}
        """)
    (tmp_path / "objects" / "o.yaml").write_text(objects % "false")

    def results(service: str) -> list[dict[str, Any]]:
        return [r for b in central.central.received for r in b.get("batch", ()) if r["service"] == service]

    never = "h1.t1/Closed is not run: its check_period never is active at no time"
    poller = start_poller(node)
    try:
        wait_for(lambda: len(results("Active")) > 10, 20, "results of the active service")
        time.sleep(1.0)
        assert results("Passive") == [] and results("Closed") == []
        for service in ("Passive", "Closed"):
            central.loop.call_soon_threadsafe(central.central.commands.append,
                                              {"type": "reschedule", "host": "h1.t1", "service": service})
            wait_for(lambda: results(service), 10, f"the forced check of {service}")
        time.sleep(1.5)
        assert [r["check_type"] for r in results("Passive")] == ["forced"], "a forced check runs once"
        assert [r["check_type"] for r in results("Closed")] == ["forced"]
        assert (tmp_path / "poller.log").read_text().count(never) == 1, "logged once, not at each look"
        (tmp_path / "objects" / "o.yaml").write_text(objects % "true")
        poller.send_signal(signal.SIGHUP)
        wait_for(lambda: len(results("Passive")) > 3, 20, "the service made active by a reload")
    finally:
        poller.terminate()
        assert poller.wait(timeout=30) == 0, (tmp_path / "poller.log").read_text()[-2000:]
    log = (tmp_path / "poller.log").read_text()
    assert log.count(never) == 2, "once more for the reloaded configuration: " + log[-3000:]
    assert results("Closed")[1:] == [], "nothing but the forced check"
