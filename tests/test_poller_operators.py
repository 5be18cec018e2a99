"""Operators act at a poller while central is down: chat to the poller's own Jabber
account, or its HTTP API with `checkd ... -c poller.yaml`. What they do is handed
to central when it returns and adopted once. Real central and poller processes,
prosody, aiosmtpd, a shell check reading a state file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.central_proc import CentralProc, start_poller
from tests.helpers import REPO, free_port, require_plugins, wait_for
from tests.notify_env import MailSink, node_extra
from tests.prosody import Phone, Prosody, require_prosody

OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/$ARG1$; echo \\"state $s at $(date +%s.%N)\\"; exit $s'"
contacts:
  - {{name: ops, email: ops@example.com}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, contacts: [ops]}}
services:
  - {{host: db1.ladc1, description: Replication, command: "from_file!repl", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops], notification_interval: 4s}}
  - {{host: db1.ladc1, description: Backup, command: "from_file!backup", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops]}}
"""
AUTONOMY = 2.0
OPERATOR_TOKEN = "poller-ops-secret"


class Outage:
    """Central, the ladc1 poller with its own Jabber account and operator API, prosody
    with an operator and a stranger, one mailbox."""

    def __init__(self, tmp: Path, sink: MailSink, prosody: Prosody):
        self.tmp, self.sink, self.prosody = tmp, sink, prosody
        self.states = tmp / "states"
        self.states.mkdir()
        for name in ("repl", "backup"):
            self.set(name, 0)
        self.central_jid = prosody.register("checkd", "botpw")
        self.poller_jid = prosody.register("ladc1", "ladc1pw")
        self.ops = prosody.register("ops", "opspw")
        self.stranger = prosody.register("stranger", "strangepw")
        server = f"127.0.0.1:{prosody.port}"
        self.central = CentralProc(tmp, objects=OBJECTS.format(dir=self.states), extra=node_extra(
            sink.port, {"jid": self.central_jid, "password": "botpw", "server": server, "tls": "false",
                        "admins": f"[{self.ops}]"}) + "  freshness: {site_stale_after: 1h}\n")
        self.status_port = free_port()
        self.poller_extra = (
            f"  autonomy_after: {AUTONOMY}s\n  status_listen: 127.0.0.1:{self.status_port}\n"
            f"  api_tokens: {{ops: {OPERATOR_TOKEN}}}\n"
            f"  email: {{smtp_host: 127.0.0.1, smtp_port: {sink.port}, from: checkd-ladc1@example.com}}\n"
            f"  jabber: {{jid: {self.poller_jid}, password: ladc1pw, server: '{server}', tls: false, "
            f"admins: [{self.ops}]}}\n")
        self.poller: subprocess.Popen[bytes] | None = None

    def set(self, name: str, status: int) -> None:
        (self.states / name).write_text(f"{status}\n")

    def start(self) -> None:
        self.central.start()
        self.poller = start_poller(self.tmp, self.central.url, extra=self.poller_extra)
        wait_for(lambda: "event IDs" in self.poller_log(), 20, "an ID block for the poller")

    def poller_log(self) -> str:
        return (self.tmp / "poller.log").read_text()

    def cli(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        """`checkd ARGS -c poller.yaml`, as an operator types it."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("CHECKD_TOKEN", None)
        extra = ["--token", token] if token else []
        return subprocess.run([sys.executable, "-m", "checkd", *args, "-c", str(self.tmp / "poller.yaml"), *extra],
                              capture_output=True, text=True, cwd=REPO, env=env, timeout=60)

    def mails(self, kind: str, what: str = "") -> list[Any]:
        return [m for m in self.sink.messages if m["X-Checkd-Type"] == kind and what in m["Subject"]]

    def stop(self) -> None:
        if self.poller is not None and self.poller.poll() is None:
            self.poller.terminate()
            assert self.poller.wait(timeout=30) == 0
        self.central.stop()


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    require_plugins()
    require_prosody()
    sink = MailSink()
    sink.start()
    try:
        with Prosody() as prosody:
            s = Outage(tmp_path, sink, prosody)
            try:
                yield s
            finally:
                s.stop()
    finally:
        sink.stop()


def test_an_ack_in_chat_to_the_poller_holds_while_central_is_down_and_central_adopts_it(outage: Outage):
    s, sink, prosody = outage, outage.sink, outage.prosody

    async def scenario() -> None:
        me = Phone(s.ops, "opspw", prosody.port, s.poller_jid)
        guest = Phone(s.stranger, "strangepw", prosody.port, s.poller_jid)
        for phone in (me, guest):
            await phone.start()
        try:
            await asyncio.to_thread(s.start)
            await asyncio.to_thread(s.central.stop, True)           # kill -9
            s.set("repl", 2)
            await asyncio.to_thread(wait_for, lambda: "alerts on its own now" in s.poller_log(), 20,
                                    "the poller alerting on its own")
            # The poller pages, and pages again after notification_interval: nobody has acked.
            pages = await asyncio.to_thread(sink.wait, lambda m: m["X-Checkd-Type"] == "PROBLEM", 2, 20)
            eid = int(pages[0]["X-Checkd-Event-ID"])
            assert "Sent via: ladc1 poller, central unreachable" in pages[0].get_content()

            # A stranger's ack is refused and logged; the problem stays unacknowledged.
            refusal = await guest.ask(f"ack {eid} mine now")
            assert "You may not give me commands" in refusal
            assert f"refused command from {s.stranger}" in s.poller_log()

            # The operator's is taken: the acknowledgement goes out, the re-notifications stop.
            listing = await me.ask("wassup")
            assert "central unreachable" in listing and f"[ID#:{eid}]" in listing and "ACK" not in listing
            reply = await me.ask(f"ack {eid} looking")
            assert reply == f"Acknowledged [ID#:{eid}] db1.ladc1/Replication; escalation stopped."
            await asyncio.to_thread(sink.wait, lambda m: m["X-Checkd-Type"] == "ACKNOWLEDGEMENT")
            problems = len(s.mails("PROBLEM"))
            await asyncio.sleep(9)              # two notification intervals
            assert len(s.mails("PROBLEM")) == problems, "paged again after the ack"

            # Central returns: event eid shows the operator's ack; nothing is sent again.
            told = len(sink.messages)
            await asyncio.to_thread(s.central.start)
            await asyncio.to_thread(wait_for, lambda: "no longer alerts on its own" in s.poller_log(), 20,
                                    "the handover")
            event = await asyncio.to_thread(wait_for, lambda: (e := s.central.get(f"/api/v1/events/{eid}"))
                                            and e["acknowledged"] and e, 20, "the event acknowledged at central")
            assert event["ack_author"] == s.ops and event["ack_comment"] == "looking"
            assert [(h["kind"], h["author"]) for h in event["history"] if h["kind"] == "ack"] == [("ack", s.ops)]
            await asyncio.sleep(5)
            assert len(sink.messages) == told, [m["Subject"] for m in sink.messages[told:]]
        finally:
            for phone in (me, guest):
                await phone.stop()

    asyncio.run(scenario())


def test_the_cli_acts_at_the_poller_only_while_central_is_down(outage: Outage):
    """`checkd wassup|dis -c poller.yaml` against the poller's own API: refused while central
    answers, refused without the operator token, taken while the poller alerts on its own,
    and central adopts the mute when it returns."""
    s, sink = outage, outage.sink
    s.start()
    early = s.cli("dis", "db1.ladc1/Backup")
    assert early.returncode != 0 and "central is reachable" in early.stderr, early
    s.central.stop(kill=True)
    s.set("backup", 2)
    wait_for(lambda: "alerts on its own now" in s.poller_log(), 20, "the poller alerting on its own")
    sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and "Backup" in m["Subject"])
    listing = s.cli("wassup")
    assert listing.returncode == 0 and "db1.ladc1/Backup" in listing.stdout, listing
    stranger = s.cli("dis", "db1.ladc1/Backup", token="guess")
    assert stranger.returncode != 0 and "api_tokens" in stranger.stderr, stranger
    assert "failed authentication from 127.0.0.1: POST /api/v1/notifications" in s.poller_log()
    muted = s.cli("dis", "db1.ladc1/Backup", "2h")
    assert muted.returncode == 0, muted
    s.central.start()
    wait_for(lambda: "no longer alerts on its own" in s.poller_log(), 20, "the handover")
    backup = next(v for v in s.central.get("/api/v1/status?host=db1.ladc1")["services"] if v["service"] == "Backup")
    assert backup["muted"] is True
