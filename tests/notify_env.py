"""A real central process wired to a real SMTP server (aiosmtpd on 127.0.0.1) and,
when asked, a real prosody: what the notification tests and the latency
benchmark run against."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import email.message
import email.policy
import threading
import time
from pathlib import Path
from typing import Any, Callable

from aiosmtpd.controller import Controller

from tests.central_proc import CentralProc, result
from tests.helpers import REPO, free_port

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
timeperiods:
  - {{name: never, alias: "a period that is never active"}}
contacts:
  - {{name: ops, email: "{ops_email}", jabber: "{ops_jid}"}}
  - {{name: boss, email: boss@example.com}}
  - {{name: night, email: night@example.com, notification_period: never}}
contact_groups:
  - {{name: oncall, members: [ops, night]}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops]}}
  - {{name: web1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops], command: "check_dummy!0!up",
     max_attempts: 2, retry_interval: 10s}}
{storm_hosts}
services:
  - host: db1.ladc1
    description: Mysql Health Slave Check
    command: "check_dummy!0!ok"
    contact_groups: [oncall]
    runbook: https://wiki.example.com/mysql-lag
    notes: Page the DBA on call
    escalations:
      - {{after: {escalate_after}, contacts: [boss]}}
  - {{host: db1.ladc1, description: Disk /, command: "check_dummy!0!ok", contacts: [ops]}}
  - {{hosts: [web1.ladc1], description: HTTP, command: "check_dummy!0!ok", contacts: [ops]}}
  - {{hosts: [web1.ladc1], description: HTTPS, command: "check_dummy!0!ok", contacts: [ops]}}
{storm_services}
"""


def objects(ops_jid: str = "ops@localhost", storm: int = 0, escalate_after: str = "4s", webhook: str = "",
            ops_email: str = "ops@example.com") -> str:
    hosts = "\n".join(f"  - {{name: s{i:03d}.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops]}}"
                      for i in range(storm // 10))
    services = "\n".join(
        f"  - {{hosts: [{', '.join(f's{i:03d}.ladc1' for i in range(storm // 10))}], description: Disk {j}, "
        f"command: \"check_dummy!0!ok\", contacts: [ops]}}" for j in range(10)) if storm else ""
    text = OBJECTS.format(ops_jid=ops_jid, storm_hosts=hosts, storm_services=services,
                          escalate_after=escalate_after, ops_email=ops_email)
    if webhook:     # a contact reached only by webhook, for one service
        text = text.replace("contact_groups:\n", f"  - {{name: hook, webhook: \"{webhook}\"}}\ncontact_groups:\n", 1)
        text += f"  - {{host: db1.ladc1, description: Queue, command: \"check_dummy!0!ok\", contacts: [hook]}}\n"
    return text


class MailSink:
    """aiosmtpd on 127.0.0.1:port keeping every message; start()/stop() any number of times."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.messages: list[email.message.EmailMessage] = []
        self.arrival: list[float] = []          # time.time() each message was accepted
        self.rcpts: list[list[str]] = []        # each message's RCPT TO addresses (the envelope)
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        # Called with each message after it is kept and before the 250 reply goes out
        # (a test can kill the sender there: accepted, but never confirmed to it).
        self.on_message: Callable[[email.message.EmailMessage], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(msg)            # type: ignore[arg-type]
            self.arrival.append(time.time())
            self.rcpts.append(list(envelope.rcpt_tos))
        if self.on_message is not None:
            self.on_message(msg)            # type: ignore[arg-type]
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=30)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def envelope_to(self, msg: email.message.EmailMessage) -> list[str]:
        with self._lock:
            return self.rcpts[self.messages.index(msg)]

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def wait(self, predicate: Callable[[email.message.EmailMessage], bool], count: int = 1,
             timeout: float = 15.0) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [m for m in self.messages if predicate(m)]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, (f"{len(found)} of {count} mails in {timeout}s; have: "
                                             f"{[(m['To'], m['Subject']) for m in self.messages]}")
                return found
            time.sleep(0.05)


def node_extra(smtp_port: int, jabber: dict[str, Any] | None = None, notify: str = "", email: str = "") -> str:
    """The node file's channel sections; `email` adds settings to `email:` (e.g. `subject: "..."`)."""
    text = (f"  email: {{smtp_host: 127.0.0.1, smtp_port: {smtp_port}, from: checkd@example.com, "
            f"timeout: 5s{', ' + email if email else ''}}}\n")
    if jabber:
        text += "  jabber: {" + ", ".join(f"{k}: {v}" for k, v in jabber.items()) + "}\n"
    if notify:
        text += f"  notify: {{{notify}}}\n"
    return text


def central(directory: Path, smtp_port: int, jabber: dict[str, Any] | None = None, notify: str = "",
            email: str = "", **objects_kw: Any) -> CentralProc:
    return CentralProc(directory, objects=objects(**objects_kw), extra=node_extra(smtp_port, jabber, notify, email))


def event_id(c: CentralProc, host: str, service: str | None) -> int:
    for p in c.get("/api/v1/problems")["problems"]:
        if p["host"] == host and p["service"] == service:
            return int(p["id"])
    raise AssertionError(f"no open problem for {host}/{service}")


def wait_logged(c: CentralProc, eid: int, status: str = "sent", timeout: float = 10.0) -> list[dict[str, Any]]:
    """The event's notification log once no row is pending any more."""
    deadline = time.monotonic() + timeout
    while True:
        rows = c.get(f"/api/v1/events/{eid}")["notifications"]
        if rows and all(r["status"] != "pending" for r in rows):
            return rows
        assert time.monotonic() < deadline, f"notifications of {eid} still pending: {rows}"
        time.sleep(0.05)


class Desk:
    """An operator's desk: a real central (`objects`) mailing to a MailSink, results posted by
    hand for ladc1 and nydc1, and the CLI with the central's node file."""

    def __init__(self, tmp: Path, objects: str):
        self.sink = MailSink()
        self.sink.start()
        self.central = CentralProc(tmp, objects=objects, extra=node_extra(self.sink.port))
        self.seq = {"poller-ladc1": 0, "poller-nydc1": 0}

    def post(self, host: str, service: str, status: int) -> int:
        """A result; the ID of the check's open problem afterwards (0: none)."""
        poller = "poller-nydc1" if host.endswith("nydc1") else "poller-ladc1"
        self.seq[poller] += 1
        code, answer = self.central.post_results(poller, [result(self.seq[poller], host, service, status,
                                                                 f"status {status}")])
        assert code == 200 and answer["accepted"] == 1, answer
        return next((p["id"] for p in self.central.get("/api/v1/problems")["problems"]
                     if (p["host"], p["service"]) == (host, service)), 0)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "checkd", *args, "-c", str(self.central.config)], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                              timeout=60)

    def mails(self, kind: str, what: str) -> list[str]:
        return [m["Subject"] for m in self.sink.messages if m["X-Checkd-Type"] == kind and what in m["Subject"]]

    def __enter__(self) -> Desk:
        self.central.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.central.stop()
        self.sink.stop()
