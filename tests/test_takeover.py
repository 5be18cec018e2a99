"""Central polls a site itself when its poller goes silent (SIGSTOP, kill -9), hands the
checks back when the poller is heard again, runs its own site's checks and freshness
checks. Real central, real poller, real plugins, real SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.central_proc import CentralProc, start_poller
from tests.helpers import require_plugins, wait_for
from tests.notify_env import MailSink, node_extra
from tests.sshd import Sshd

OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/$ARG1$; echo \\"state $s at $(date +%s.%N)\\"; exit $s'"
  remote_echo: {{ssh: "echo ssh ok as $(id -un); exit 0"}}
contacts:
  - {{name: ops, email: ops@example.com}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, contacts: [ops], ssh: {ssh}}}
  - {{name: checkd-central, address: 127.0.0.1, site: central, contacts: [ops]}}
services:
  - {{host: db1.ladc1, description: Replication, command: "from_file!repl", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops]}}
  - {{host: db1.ladc1, description: Nightly, command: "from_file!nightly", interval: 1h,
     freshness_threshold: 3s, contacts: [ops]}}
  - {{host: checkd-central, description: Reach ladc1, command: "from_file!reach", interval: 0.5s, contacts: [ops]}}
  - {{host: db1.ladc1, description: SSH echo, command: remote_echo, interval: 0.5s, contacts: [ops]}}
"""
STALE, HOLD = 3.0, 3.0


class Site:
    """Central, the ladc1 poller as a process, the state files the checks read, and a mailbox."""

    def __init__(self, tmp_path: Path, sink: MailSink, sshd: Sshd):
        self.tmp, self.sink = tmp_path, sink
        self.states = tmp_path / "states"
        self.states.mkdir()
        for name in ("repl", "nightly", "reach"):
            self.set(name, 0)
        extra = node_extra(sink.port) + (f"  freshness: {{site_stale_after: {STALE}s, hold_down: {HOLD}s, "
                                         "start_grace: 0s, contacts: [ops]}\n")
        ssh = (f"{{user: {sshd.user}, port: {sshd.port}, key: {sshd.client_key}, "
               f"known_hosts: {sshd.known_hosts}}}")
        self.central = CentralProc(tmp_path, objects=OBJECTS.format(dir=self.states, ssh=ssh), extra=extra)
        self.poller: subprocess.Popen[bytes] | None = None

    def set(self, name: str, status: int) -> None:
        (self.states / name).write_text(f"{status}\n")

    def start_poller(self) -> None:
        self.poller = start_poller(self.tmp, self.central.url)

    def stop_poller(self) -> None:
        if self.poller is not None and self.poller.poll() is None:
            os.kill(self.poller.pid, signal.SIGCONT)
            self.poller.terminate()
            self.poller.wait(timeout=30)

    def check(self, service: str, host: str = "db1.ladc1") -> dict[str, Any]:
        doc = self.central.get(f"/api/v1/status?host={host}")
        return next(s for s in doc["services"] if s["service"] == service)

    def poller_status(self) -> dict[str, Any]:
        return next(p for p in self.central.get("/api/v1/status")["pollers"] if p["name"] == "poller-ladc1")

    def events_of(self, service: str) -> list[int]:
        return [p["id"] for p in self.central.get("/api/v1/problems")["problems"] if p["service"] == service]


@pytest.fixture
def site(tmp_path: Path, sshd: Sshd) -> Iterator[Site]:
    require_plugins()
    sink = MailSink()
    sink.start()
    s = Site(tmp_path, sink, sshd)
    s.central.start()
    s.start_poller()
    try:
        yield s
    finally:
        s.stop_poller()
        s.central.stop()
        sink.stop()


def subjects(sink: MailSink) -> list[str]:
    return [m["Subject"] for m in sink.messages]


def test_sigstop_poller_central_takes_over_alerts_and_hands_back(site: Site):
    wait_for(lambda: site.check("Replication")["polled_by"] == "poller-ladc1", 20, "the poller's first result")
    # Central's own site, and a freshness check of a service that would not run for an hour.
    assert wait_for(lambda: site.check("Reach ladc1", "checkd-central")["polled_by"] == "central", 10,
                    "central's own check")
    # Nightly ran once on the poller at start; its next run is an hour away, its threshold 3 s.
    wait_for(lambda: site.check("Nightly")["polled_by"] == "central", 10, "the freshness check")
    assert site.poller_status()["connected"] and not site.poller_status()["takeover"]
    assert "freshness: no result for db1.ladc1/Nightly" in site.central.log.read_text()

    os.kill(site.poller.pid, signal.SIGSTOP)
    stopped = time.time()
    wait_for(lambda: site.check("Replication")["polled_by"] == "central", STALE + 10, "takeover")
    took_over = time.time() - stopped
    assert site.poller_status()["takeover"] is True
    # Checks over SSH too: central opens its own pooled connection to the site's host.
    wait_for(lambda: site.check("SSH echo")["polled_by"] == "central", 10, "the SSH check from central")
    assert site.check("SSH echo")["output"].startswith("ssh ok as ") and site.check("SSH echo")["state"] == "OK"
    [notice] = site.sink.wait(lambda m: "@checkd/Site ladc1" in m["Subject"])
    assert notice["Subject"].startswith("@checkd/Site ladc1 CRITICAL [ID#:")
    assert "central polls site ladc1 itself" in notice.get_content()

    # A problem that starts during the takeover is alerted by central.
    site.set("repl", 2)
    [problem] = site.sink.wait(lambda m: "Replication" in m["Subject"])
    eid = site.events_of("Replication")
    assert problem["Subject"] == f"db1.ladc1/Replication CRITICAL [ID#:{eid[0]}]"

    os.kill(site.poller.pid, signal.SIGCONT)
    resumed = time.time()
    wait_for(lambda: not site.poller_status()["takeover"], HOLD + 10, "handback")
    handed_back = time.time() - resumed
    wait_for(lambda: site.check("Replication")["polled_by"] == "poller-ladc1", 10, "the poller's results again")
    site.sink.wait(lambda m: m["Subject"].startswith("RECOVERY @checkd/Site ladc1 OK"))
    assert site.events_of("Replication") == eid             # the same event, not a second one
    site.set("repl", 0)
    site.sink.wait(lambda m: m["Subject"].startswith("RECOVERY db1.ladc1/Replication"))
    time.sleep(1.0)
    assert sum("Replication" in s for s in subjects(site.sink)) == 2, subjects(site.sink)
    print(f"\ntakeover {took_over:.1f}s after SIGSTOP, handback {handed_back:.1f}s after SIGCONT")


def test_kill_9_poller_takeover_then_restart_hands_back(site: Site):
    wait_for(lambda: site.check("Replication")["polled_by"] == "poller-ladc1", 20, "the poller's first result")
    site.set("repl", 2)
    wait_for(lambda: site.events_of("Replication"), 10, "the problem")
    eid = site.events_of("Replication")
    site.poller.kill()
    site.poller.wait()
    wait_for(lambda: site.check("Replication")["polled_by"] == "central", STALE + 10, "takeover")
    site.start_poller()
    wait_for(lambda: not site.poller_status()["takeover"], HOLD + 20, "handback")
    wait_for(lambda: site.check("Replication")["polled_by"] == "poller-ladc1", 10, "the poller's results again")
    assert site.events_of("Replication") == eid
    assert sum("Replication" in s for s in subjects(site.sink)) == 1, subjects(site.sink)


def test_a_passive_service_of_a_taken_over_site_still_gets_its_freshness_check(tmp_path: Path):
    """Central's takeover timers never run a passive (`active: false`) check, so its freshness
    check must: without it a site taken over would leave its passive services unchecked."""
    require_plugins()
    objects = ("commands:\n  ok: \"/usr/lib/nagios/plugins/check_dummy 0 fresh\"\n"
               "hosts:\n  - {name: db1.ladc1, address: 127.0.0.1}\n"
               "services:\n  - {host: db1.ladc1, description: Nightly, command: ok, active: false,"
               " freshness_threshold: 2s}\n  - {host: db1.ladc1, description: Load, command: ok, interval: 1s}\n")
    with CentralProc(tmp_path, objects=objects,
                     extra="  freshness: {site_stale_after: 1s, start_grace: 0s}\n") as central:
        def polled_by(service: str) -> Any:
            doc = central.get("/api/v1/status?host=db1.ladc1")
            return next((s["polled_by"] for s in doc["services"] if s["service"] == service), None)

        wait_for(lambda: polled_by("Load") == "central", 15, "the takeover")
        wait_for(lambda: polled_by("Nightly") == "central", 15, "the passive service's freshness check")
        assert "freshness: no result for db1.ladc1/Nightly" in central.log.read_text()
