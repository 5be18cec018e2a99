"""The daemons under a service manager: sd_notify (READY, STATUS, WATCHDOG), a blocked
loop reported, SIGHUP reload (good, bad, under load, nothing lost), /metrics and
`checkd status`, and refusing state from a newer checkd."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkd import daemon
from tests.central_proc import CentralProc, poller_node, start_poller
from tests.helpers import REPO, free_port, require_plugins, wait_for


class NotifySocket:
    """What systemd listens on: a unix datagram socket; keeps (time, message)."""

    def __init__(self, directory: Path):
        self.path = str(directory / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.got: list[tuple[float, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except (socket.timeout, OSError):
                continue
            self.got.append((time.monotonic(), data.decode()))

    def lines(self, prefix: str) -> list[str]:
        return [m for _, m in self.got for line in m.splitlines() if line.startswith(prefix)]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def test_a_blocked_loop_stops_the_watchdog_pings_and_is_reported(tmp_path, monkeypatch, caplog):
    ns = NotifySocket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", ns.path)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")      # ping every 0.2 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)

    def stuck_in_a_blocking_call() -> None:
        time.sleep(2.0)                                 # what a bug in a handler would do

    async def main() -> None:
        watch = daemon.LoopWatch(status=lambda: "12 checks/s", blocked_after=0.8)
        watch.start()
        await asyncio.sleep(1.0)
        stuck_in_a_blocking_call()
        await asyncio.sleep(1.0)
        await watch.stop()

    with caplog.at_level(logging.WARNING, logger="checkd.daemon"):
        asyncio.run(main())
    ns.close()
    pings = [t for t, m in ns.got if m == "WATCHDOG=1"]
    assert len(pings) >= 6
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) >= 1.9 and sorted(gaps)[len(gaps) // 2] < 0.5     # silent only while blocked
    assert ns.lines("STATUS=12 checks/s")
    blocked = [r for r in caplog.records if "event loop blocked for" in r.getMessage()]
    assert len(blocked) == 1 and "stuck_in_a_blocking_call" in blocked[0].detail    # type: ignore[attr-defined]
    assert any("event loop running again" in r.getMessage() for r in caplog.records)


OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/state; echo \\"$s at $(date +%s.%N)\\"; exit $s'"
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1}}
services:
{services}
"""


def objects(states: Path, names: list[str]) -> str:
    lines = "\n".join(f"  - {{host: db1.ladc1, description: {n}, command: from_file, interval: 0.5s}}"
                      for n in names)
    return OBJECTS.format(dir=states, services=lines)


@pytest.fixture
def system(tmp_path: Path) -> Iterator[tuple[CentralProc, Path, NotifySocket]]:
    require_plugins()
    states = tmp_path / "states"
    states.mkdir()
    (states / "state").write_text("0\n")
    central = CentralProc(tmp_path, objects=objects(states, [f"S{i:03d}" for i in range(100)]))
    central.start()
    ns = NotifySocket(tmp_path)
    yield central, states, ns
    ns.close()
    central.stop()


def start_watched_poller(tmp_path: Path, central: CentralProc, ns: NotifySocket, status_port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "2000000"}
    env.pop("WATCHDOG_PID", None)
    return start_poller(tmp_path, central.url, extra=f"  status_listen: 127.0.0.1:{status_port}\n", env=env)


def service(c: CentralProc, name: str) -> dict[str, Any] | None:
    return next((s for s in c.get("/api/v1/status?host=db1.ladc1")["services"] if s["service"] == name), None)


def test_poller_ready_status_metrics_and_reload_under_load(system, tmp_path):
    central, states, ns = system
    port = free_port()
    poller = start_watched_poller(tmp_path, central, ns, port)
    try:
        wait_for(lambda: ns.lines("READY=1"), 20, "READY=1")
        wait_for(lambda: len(ns.lines("WATCHDOG=1")) >= 2 and ns.lines("STATUS="), 10, "pings and a status line")
        assert "checks/s" in ns.lines("STATUS=")[-1]
        wait_for(lambda: (service(central, "S099") or {}).get("last_check"), 20, "results of every check")

        status = subprocess.run([sys.executable, "-m", "checkd", "status", "-c", str(tmp_path / "poller.yaml")],
                                capture_output=True, text=True, cwd=REPO, timeout=30)
        assert status.returncode == 0 and "central:               connected" in status.stdout, status
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "checkd_checks_total" in text and 'checkd_check_latency_seconds_bucket{le="0.5"}' in text

        # A broken config: refused with file and line; the old one keeps running.
        objects_file = tmp_path / "objects" / "objects.yaml"
        good = objects_file.read_text()
        objects_file.write_text(good.replace("interval: 0.5s", "interval: soon", 1))
        seq_before = central.get("/api/v1/status")["pollers"][0]["seq"]
        poller.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in (tmp_path / "poller.log").read_text(), 10, "the refusal")
        log = (tmp_path / "poller.log").read_text()
        assert f"{objects_file}:" in log and "interval" in log
        wait_for(lambda: central.get("/api/v1/status")["pollers"][0]["seq"] > seq_before + 100, 10,
                 "results going on")

        # A good one: a new check starts, a removed one stops, nothing else is disturbed.
        objects_file.write_text(objects(states, [f"S{i:03d}" for i in range(99)] + ["New check"]))
        os.kill(central.proc.pid, signal.SIGHUP)            # both read the shared objects
        wait_for(lambda: "configuration reloaded" in central.log.read_text(), 10, "central's reload")
        poller.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded: 100 checks (1 new, 1 removed)" in
                 (tmp_path / "poller.log").read_text(), 10, "the reload")
        wait_for(lambda: len(ns.lines("RELOADING=1")) == 2 and len(ns.lines("READY=1")) >= 3, 10,
                 "RELOADING=1 then READY=1 around each reload")
        wait_for(lambda: (service(central, "New check") or {}).get("polled_by") == "poller-ladc1", 10,
                 "the new check's result")
        # S099 is gone from both: a result of it would be refused by central, loudly. Results
        # spooled before the poller's reload may still arrive; after the backlog, none.
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: "checkd_spool_backlog 0.0" in urllib.request.urlopen(metrics_url, timeout=10).read().decode(),
                 20, "the spool drained")
        refused = central.log.read_text().count("S099")
        time.sleep(1.5)
        assert central.log.read_text().count("S099") == refused
        assert "checkd_checks_configured 100.0" in urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    finally:
        poller.terminate()
        assert poller.wait(timeout=30) == 0
    # Nothing lost: central holds every result the poller spooled, without a gap.
    spooled = int((tmp_path / "state-poller" / "spool" / "last_seq").read_text())
    assert central.get("/api/v1/status")["pollers"][0]["seq"] == spooled
    assert "seq gap" not in central.log.read_text()
    assert ns.lines("STOPPING=1")


def test_central_reload_and_metrics(system, tmp_path):
    central, states, _ = system
    objects_file = tmp_path / "objects" / "objects.yaml"
    good = objects_file.read_text()
    objects_file.write_text(good + "  - {host: nosuchhost, description: X, command: from_file}\n")
    os.kill(central.proc.pid, signal.SIGHUP)
    wait_for(lambda: "reload refused" in central.log.read_text(), 10, "the refusal")
    assert f"{objects_file}:" in central.log.read_text()
    objects_file.write_text(good.replace("hosts:\n", "hosts:\n  - {name: db2.ladc1, address: 127.0.0.1}\n"))
    os.kill(central.proc.pid, signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in central.log.read_text(), 10, "the reload")
    assert [h["host"] for h in central.get("/api/v1/status")["hosts"]] == ["db2.ladc1", "db1.ladc1"]
    central.post_results("poller-ladc1", [{"seq": 1, "host": "db2.ladc1", "service": None, "status": 0,
                                           "state_type": "HARD", "attempt": 1, "output": "up", "scheduled": time.time(),
                                           "started": time.time(), "finished": time.time()}])
    text = urllib.request.urlopen(central.url + "/metrics", timeout=10).read().decode()
    assert "checkd_results_total 1.0" in text and "checkd_open_events 0.0" in text
    out = subprocess.run([sys.executable, "-m", "checkd", "status", "--url", central.url], capture_output=True,
                         text=True, cwd=REPO, timeout=30)
    assert out.returncode == 0 and "results stored:        1" in out.stdout


def test_state_from_a_newer_checkd_is_refused(tmp_path):
    c = CentralProc(tmp_path)
    c.start()
    c.stop()
    db = sqlite3.connect(tmp_path / "state" / "central.sqlite")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    out = subprocess.run([sys.executable, "-m", "checkd", "central", "-c", str(c.config)], capture_output=True,
                         text=True, cwd=REPO, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 1 and "written by a newer checkd" in out.stderr

    spool = tmp_path / "state-poller" / "spool"
    spool.mkdir(parents=True)
    (spool / "format").write_text("7\n")
    node = poller_node(tmp_path, "http://127.0.0.1:9")
    out = subprocess.run([sys.executable, "-m", "checkd", "poller", "-c", str(node)],
                         capture_output=True, text=True, cwd=REPO, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 1 and "has format 7, written by a newer checkd" in out.stderr


class FakeDaemon:
    """What daemon.serve runs, reduced to a log of its calls."""

    def __init__(self, start_fails: bool = False):
        self.failed = asyncio.Event()
        self.calls: list[str] = []
        self.start_fails = start_fails

    async def start(self) -> None:
        self.calls.append("start")
        if self.start_fails:
            raise RuntimeError("start failed")
        asyncio.get_running_loop().call_later(0.05, self.failed.set)     # a fatal error, soon

    async def stop(self) -> None:
        self.calls.append("stop")

    def reload(self) -> bool:
        return True

    def status_line(self) -> str:
        return "fine"


def test_serve_stops_on_a_fatal_error_with_exit_code_1_and_stops_after_a_failed_start_only_when_asked():
    app = FakeDaemon()
    assert asyncio.run(daemon.serve(app)) == 1 and app.calls == ["start", "stop"]
    for stop_if_start_fails, calls in ((False, ["start"]), (True, ["start", "stop"])):
        app = FakeDaemon(start_fails=True)
        with pytest.raises(RuntimeError):
            asyncio.run(daemon.serve(app, stop_if_start_fails=stop_if_start_fails))
        assert app.calls == calls
