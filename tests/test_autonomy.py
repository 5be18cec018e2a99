"""A poller alerts on its own when central is gone (kill -9) or cut off (a partition),
and hands over when central is back: same event IDs, nothing sent twice, the split
brain merged. Real central, real poller, real plugins, aiosmtpd and prosody."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.central_proc import CentralProc, start_poller
from tests.helpers import require_plugins, wait_for
from tests.notify_env import MailSink
from tests.paging_receivers import Receivers
from tests.prosody import Prosody, Recorder, require_prosody
from tests.tcp_proxy import Proxy

OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/$ARG1$; echo \\"state $s at $(date +%s.%N)\\"; exit $s'"
contacts:
  - {{name: ops, email: ops@example.com, pagerduty: ops{jabber}}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, contacts: [ops]}}
services:
  - {{host: db1.ladc1, description: Replication, command: "from_file!repl", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops]}}
"""
AUTONOMY = 2.0
PD_KEY = "pd-autonomy-key"
VIA_POLLER = "ladc1 poller, central unreachable"


class Setup:
    def __init__(self, tmp: Path, sink: MailSink, jabber: dict[str, str] | None = None, ops_jid: str = "",
                 freshness: str = "site_stale_after: 1h", pagerduty: str = ""):
        """`pagerduty`: a PagerDuty receiver's URL, for central and the poller (docs/integrations.md)."""
        self.tmp, self.sink = tmp, sink
        self.pagerduty = (f"  pagerduty: {{url: {pagerduty}, services: {{ops: {{routing_key: {PD_KEY}}}}}}}\n"
                          if pagerduty else "")
        self.states = tmp / "states"
        self.states.mkdir()
        self.set(0)
        extra = (f"  email: {{smtp_host: 127.0.0.1, smtp_port: {sink.port}, from: checkd@example.com}}\n"
                 f"  freshness: {{{freshness}}}\n{self.pagerduty}")
        if jabber:
            extra += "  jabber: {" + ", ".join(f"{k}: {v}" for k, v in jabber.items()) + "}\n"
        objs = OBJECTS.format(dir=self.states, jabber=f", jabber: {ops_jid}" if ops_jid else "")
        self.central = CentralProc(tmp, objects=objs, extra=extra)
        self.poller: subprocess.Popen[bytes] | None = None

    def set(self, status: int) -> None:
        (self.states / "repl").write_text(f"{status}\n")

    def start_poller(self, central_url: str, jabber: dict[str, str] | None = None) -> None:
        extra = (f"  autonomy_after: {AUTONOMY}s\n"
                 f"  email: {{smtp_host: 127.0.0.1, smtp_port: {self.sink.port}, from: checkd-ladc1@example.com}}\n"
                 f"{self.pagerduty}")
        if jabber:
            extra += "  jabber: {" + ", ".join(f"{k}: {v}" for k, v in jabber.items()) + "}\n"
        self.poller = start_poller(self.tmp, central_url, extra=extra)

    def stop(self) -> None:
        if self.poller is not None and self.poller.poll() is None:
            self.poller.terminate()
            assert self.poller.wait(timeout=30) == 0
        self.central.stop()

    def poller_log(self) -> str:
        return (self.tmp / "poller.log").read_text()

    def problems(self) -> list[dict[str, Any]]:
        return [p for p in self.central.get("/api/v1/problems")["problems"] if p["service"] == "Replication"]

    def mails(self, kind: str) -> list[Any]:
        return [m for m in self.sink.messages if m["X-Checkd-Type"] == kind and "Replication" in m["Subject"]]


def test_kill_9_central_the_poller_alerts_then_hands_over(tmp_path):
    require_plugins()
    require_prosody()
    sink = MailSink()
    sink.start()
    pager = Receivers()             # PagerDuty's Events API: paged by the poller, then by central
    pager.start()
    with Prosody() as prosody:
        central_jid = prosody.register("checkd", "botpw")
        poller_jid = prosody.register("ladc1", "ladc1pw")
        ops = prosody.register("ops", "opspw")
        common = {"server": f"127.0.0.1:{prosody.port}", "tls": "false"}
        s = Setup(tmp_path, sink, jabber={"jid": central_jid, "password": "botpw", **common}, ops_jid=ops,
                  pagerduty=pager.url)

        async def scenario() -> None:
            phone = Recorder(ops, "opspw", prosody.port)
            await phone.start()
            try:
                await asyncio.to_thread(s.central.start)
                s.start_poller(s.central.url, jabber={"jid": poller_jid, "password": "ladc1pw", **common})
                await asyncio.to_thread(wait_for, lambda: "event IDs" in s.poller_log(), 20, "an ID block")
                await asyncio.to_thread(s.central.stop, True)           # kill -9
                killed = time.time()
                s.set(2)
                [problem] = await asyncio.to_thread(sink.wait, lambda m: "Replication" in m["Subject"], 1, 20)
                first_alert = time.time() - killed
                eid = int(problem["X-Checkd-Event-ID"])
                assert problem["Subject"] == f"db1.ladc1/Replication CRITICAL [ID#:{eid}]"
                assert f"Sent via: {VIA_POLLER}" in problem.get_content()
                sender, chat, _ = await phone.wait_for(lambda s_, b, r: s_ == poller_jid, 20)
                assert chat.splitlines()[0] == problem["Subject"] and f"Via: {VIA_POLLER}" in chat
                [trigger] = await asyncio.to_thread(wait_for, lambda: pager.of("pagerduty"), 10, "the poller's page")
                assert (trigger.body["event_action"], trigger.body["dedup_key"]) == ("trigger", f"checkd-{eid}")
                assert trigger.body["payload"]["custom_details"]["via"] == VIA_POLLER

                # Central comes back: the log is handed over, the spool replayed, the event has the same ID.
                await asyncio.to_thread(s.central.start)
                await asyncio.to_thread(wait_for, lambda: [p["id"] for p in s.problems()] == [eid], 20,
                                        "the event under the poller's ID")
                # The poller logs it just after central committed the handover (a few ms later).
                await asyncio.to_thread(wait_for, lambda: "no longer alerts on its own" in s.poller_log(), 5,
                                        "the poller's handover line")
                s.set(0)
                _, rec, _ = await phone.wait_for(lambda s_, b, r: b.startswith("RECOVERY"), 20)
                assert rec.splitlines()[0] == f"RECOVERY db1.ladc1/Replication OK [ID#:{eid}]"
                assert "Via: central" in rec
                await asyncio.to_thread(sink.wait, lambda m: m["X-Checkd-Type"] == "RECOVERY")
                await asyncio.sleep(1.5)
                # One incident: the poller's trigger, central's resolve under the same key, nothing twice.
                assert [(r.body["event_action"], r.body["dedup_key"]) for r in pager.of("pagerduty")] == [
                    ("trigger", f"checkd-{eid}"), ("resolve", f"checkd-{eid}")]
                assert [m["Subject"] for m in sink.messages] == [
                    f"db1.ladc1/Replication CRITICAL [ID#:{eid}]", f"RECOVERY db1.ladc1/Replication OK [ID#:{eid}]"]
                chats = [b.splitlines()[0] for s_, b, r in phone.messages if s_ in (poller_jid, central_jid)]
                assert sorted(chats) == sorted([f"db1.ladc1/Replication CRITICAL [ID#:{eid}]",
                                                f"RECOVERY db1.ladc1/Replication OK [ID#:{eid}]"]), chats
                print(f"\nfirst autonomous alert {first_alert:.1f}s after kill -9 of central")
            finally:
                await phone.stop()

        try:
            asyncio.run(scenario())
        finally:
            s.stop()
            sink.stop()
            pager.stop()


def test_a_partition_both_alert_then_one_event_acknowledged_and_recovered_once(tmp_path):
    require_plugins()
    sink = MailSink()
    sink.start()
    s = Setup(tmp_path, sink, freshness="site_stale_after: 3s, hold_down: 2s, start_grace: 0s")
    s.central.start()
    proxy = Proxy(s.central.port)
    proxy.heal()
    s.start_poller(f"http://127.0.0.1:{proxy.port}")
    try:
        wait_for(lambda: "event IDs" in s.poller_log(), 20, "an ID block")
        proxy.cut()
        cut = time.time()
        wait_for(lambda: "alerts on its own now" in s.poller_log(), 20, "the poller going autonomous")
        wait_for(lambda: any(p["takeover"] for p in s.central.get("/api/v1/status")["pollers"]), 20, "takeover")
        s.set(2)
        # Both sides alert: each under its own ID, each saying who sent it.
        problems = wait_for(lambda: len(s.mails("PROBLEM")) >= 2 and s.mails("PROBLEM"), 20, "two alerts")
        by_via = {("central unreachable" in m.get_content()): int(m["X-Checkd-Event-ID"]) for m in problems}
        central_id, poller_id = by_via[False], by_via[True]
        assert central_id != poller_id

        proxy.heal()
        healed = time.time()
        wait_for(lambda: "no longer alerts on its own" in s.poller_log(), 30, "the handover")
        merged = wait_for(lambda: [h for h in s.central.get(f"/api/v1/events/{central_id}")["history"]
                                   if h["kind"] == "merged"], 20, "the merge")
        assert f"[ID#:{poller_id}]" in merged[0]["output"]
        assert [p["id"] for p in s.problems()] == [central_id]
        wait_for(lambda: not any(p["takeover"] for p in s.central.get("/api/v1/status")["pollers"]), 20, "handback")

        # Acknowledged once, by either ID; recovered once.
        st, _ = s.central.write("POST", "/api/v1/ack", {"event_id": poller_id, "comment": "on it"})
        assert st == 200
        sink.wait(lambda m: m["X-Checkd-Type"] == "ACKNOWLEDGEMENT")
        s.set(0)
        sink.wait(lambda m: m["X-Checkd-Type"] == "RECOVERY")
        time.sleep(1.5)
        assert len(s.mails("ACKNOWLEDGEMENT")) == 1 and len(s.mails("RECOVERY")) == 1, \
            [m["Subject"] for m in sink.messages]
        assert s.mails("RECOVERY")[0]["Subject"] == f"RECOVERY db1.ladc1/Replication OK [ID#:{central_id}]"
        told = s.central.get(f"/api/v1/events/{central_id}")["notifications"]
        assert [(n["type"], n["status"]) for n in told if n["type"] == "PROBLEM"] == [("PROBLEM", "sent")] * 2
        print(f"\npartition: healed {healed - cut:.1f}s after the cut")
    finally:
        proxy.cut()
        s.stop()
        sink.stop()
