"""A poller knows what central decided (acks, rollouts, mutes, downtimes, each problem's
notification progress) and honours it when it alerts on its own after kill -9 of
central. Real central and poller processes, shell checks reading state files, aiosmtpd."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.central_proc import CentralProc, start_poller
from tests.helpers import require_plugins, wait_for
from tests.notify_env import MailSink, node_extra

OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/$ARG1$; echo \\"state $s at $(date +%s.%N)\\"; exit $s'"
contacts:
  - {{name: ops, email: ops@example.com}}
  - {{name: lead, email: lead@example.com}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, contacts: [ops]}}
  - {{name: web1.ladc1, address: 127.0.0.1, contacts: [ops]}}
services:
  - {{host: db1.ladc1, description: Replication, command: "from_file!repl", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops], escalations: [{{after: {escalate}, contacts: [lead]}}]}}
  - {{host: db1.ladc1, description: Backup, command: "from_file!backup", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops], escalations: [{{after: {escalate}, contacts: [lead]}}]}}
  - {{host: web1.ladc1, description: HTTP, command: "from_file!http", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops]}}
"""
AUTONOMY = 2.0
VIA_POLLER = "ladc1 poller, central unreachable"


class Site:
    """Central and the ladc1 poller (alerting on its own after AUTONOMY s), one mailbox."""

    def __init__(self, tmp: Path, sink: MailSink, escalate: str = "1h"):
        self.tmp, self.sink = tmp, sink
        self.states = tmp / "states"
        self.states.mkdir()
        for name in ("repl", "backup", "http"):
            self.set(name, 0)
        self.central = CentralProc(tmp, objects=OBJECTS.format(dir=self.states, escalate=escalate),
                                   extra=node_extra(sink.port) + "  freshness: {site_stale_after: 1h}\n")
        self.poller: subprocess.Popen[bytes] | None = None

    def set(self, name: str, status: int) -> None:
        (self.states / name).write_text(f"{status}\n")

    def start(self) -> None:
        self.central.start()
        self.start_poller()
        wait_for(lambda: "event IDs" in self.poller_log(), 20, "an ID block for the poller")

    def start_poller(self) -> None:
        self.poller = start_poller(self.tmp, self.central.url, extra=(
            f"  autonomy_after: {AUTONOMY}s\n"
            f"  email: {{smtp_host: 127.0.0.1, smtp_port: {self.sink.port}, from: checkd-ladc1@example.com}}\n"))

    def restart_poller(self, kill: bool) -> None:
        assert self.poller is not None
        self.poller.kill() if kill else self.poller.terminate()
        self.poller.wait(timeout=30)
        self.start_poller()

    def poller_log(self) -> str:
        return (self.tmp / "poller.log").read_text()

    def wait_decisions(self, text: str) -> None:
        """Until the poller logged a copy of central's decisions saying `text`."""
        wait_for(lambda: any("central's decisions" in ln and text in ln for ln in self.poller_log().splitlines()),
                 15, f"the poller to know: {text}")

    def kill_central(self) -> float:
        self.central.stop(kill=True)
        return time.time()

    def mails(self, kind: str, what: str) -> list[Any]:
        return [m for m in self.sink.messages if m["X-Checkd-Type"] == kind and what in m["Subject"]]

    def stop(self) -> None:
        if self.poller is not None and self.poller.poll() is None:
            self.poller.terminate()
            assert self.poller.wait(timeout=30) == 0
        self.central.stop()


@pytest.fixture
def sink() -> Iterator[MailSink]:
    require_plugins()
    s = MailSink()
    s.start()
    yield s
    s.stop()


def test_a_rollout_muted_at_central_holds_the_pollers_page_until_it_expires(tmp_path: Path, sink: MailSink):
    site = Site(tmp_path, sink)
    site.start()
    try:
        status, d = site.central.write("POST", "/api/v1/deployments", {
            "action": "start", "hosts": ["web1.ladc1"], "module": "web", "revision": "42", "engineer": "ann",
            "mute_for": "15s"})
        assert status == 201, d
        expires = d["expires"]
        site.wait_decisions("1 rollout(s)")
        site.kill_central()
        site.restart_poller(kill=True)      # what it knows survives kill -9 of the poller too
        site.set("http", 2)
        wait_for(lambda: "alerts on its own now" in site.poller_log(), 20, "the poller alerting on its own")
        # During the rollout: nothing, though the poller alerts on its own and HTTP is CRITICAL.
        while time.time() < expires - 0.5:
            assert not site.mails("PROBLEM", "HTTP"), "paged for a host muted by a rollout"
            time.sleep(0.1)
        # After its expiry, still failing: one page, from the poller.
        [page] = sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and "HTTP" in m["Subject"], timeout=10)
        assert sink.arrival[sink.messages.index(page)] >= expires - 0.1
        assert f"Sent via: {VIA_POLLER}" in page.get_content()
        time.sleep(2)
        assert len(site.mails("PROBLEM", "HTTP")) == 1
    finally:
        site.stop()


def test_a_problem_acked_at_central_is_not_escalated_by_the_poller(tmp_path: Path, sink: MailSink):
    """Replication is acked at central before it dies, Backup is not: when the escalation
    time passes with the poller alerting on its own, only Backup is escalated."""
    site = Site(tmp_path, sink, escalate="8s")
    site.start()
    try:
        site.set("repl", 2)
        site.set("backup", 2)
        sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM", count=2)
        opened = time.time()
        [repl] = [p for p in site.central.get("/api/v1/problems")["problems"] if p["service"] == "Replication"]
        status, _ = site.central.write("POST", "/api/v1/ack", {"event_id": repl["id"], "comment": "looking"})
        assert status == 200
        site.wait_decisions("1 acknowledged of 2 open problem(s)")
        site.kill_central()
        wait_for(lambda: "alerts on its own now" in site.poller_log(), 20, "the poller alerting on its own")
        # The unacked problem escalates from the poller: the escalation time has really passed.
        [esc] = sink.wait(lambda m: m["X-Checkd-Type"] == "ESCALATION", timeout=20)
        assert "Backup" in esc["Subject"] and f"Sent via: {VIA_POLLER}" in esc.get_content()
        assert time.time() - opened >= 7
        time.sleep(2)
        assert not site.mails("ESCALATION", "Replication"), "escalated a problem acked at central"
        assert len(site.mails("PROBLEM", "Replication")) == 1
    finally:
        site.stop()
