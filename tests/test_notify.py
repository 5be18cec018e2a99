"""Notifications end to end: a real central process, results posted as a poller
would, mail received by a real SMTP server (aiosmtpd) and Jabber by a real
prosody, both on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.server
import itertools
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest

from tests.central_proc import CentralProc, result
from tests.notify_env import MailSink, central, event_id, node_extra, wait_logged
from tests.prosody import Prosody, Recorder, require_prosody

SVC = "Mysql Health Slave Check"
LADC1 = "poller-ladc1"


@pytest.fixture
def sink() -> Iterator[MailSink]:
    """A real SMTP server for one test, stopped however the test ends."""
    mail = MailSink()
    mail.start()
    try:
        yield mail
    finally:
        mail.stop()


def test_problem_escalation_ack_recovery_and_a_quiet_period(tmp_path, sink):
    with central(tmp_path, sink.port, escalate_after="4s") as c:
        seq = itertools.count(1)
        opened = time.time()
        st, _ = c.post_results(LADC1, [result(next(seq), "db1.ladc1", SVC, 2, "CRITICAL - slave lag 900s",
                                              long_output="Seconds_Behind_Master: 900")])
        assert st == 200
        eid = event_id(c, "db1.ladc1", SVC)
        [m] = sink.wait(lambda m: m["To"] == "ops@example.com")
        assert m["Subject"] == f"db1.ladc1/Mysql Health Slave Check CRITICAL [ID#:{eid}]"
        assert (m["X-Checkd-Event-ID"], m["X-Checkd-State"], m["X-Checkd-Site"], m["X-Checkd-Type"]) == \
            (str(eid), "CRITICAL", "ladc1", "PROBLEM")
        body = m.get_content()
        for text in ("CRITICAL - slave lag 900s", "Seconds_Behind_Master: 900", "Site:     ladc1",
                     "Runbook:  https://wiki.example.com/mysql-lag", "Notes:    Page the DBA on call"):
            assert text in body
        # Told within moments of the check: "for 0s", as a person would write it, not "for 0.0123s".
        assert re.search(r"is CRITICAL \(for \ds\)\.", body), body

        # Nobody acknowledges: level 2 is told after 4 s, as an ESCALATION with the same ID.
        [esc] = sink.wait(lambda m: m["To"] == "boss@example.com", timeout=15)
        assert esc["Subject"] == f"ESCALATION db1.ladc1/Mysql Health Slave Check CRITICAL [ID#:{eid}]"
        assert esc["X-Checkd-Type"] == "ESCALATION"
        assert sink.arrival[sink.messages.index(esc)] >= opened + 4

        # The acknowledgement reaches both, and nothing more goes out while the problem lasts.
        st, _ = c.write("POST", "/api/v1/ack", {"event_id": eid, "comment": "looking", "author": "alice"})
        assert st == 200
        acks = sink.wait(lambda m: m["X-Checkd-Type"] == "ACKNOWLEDGEMENT", count=2)
        assert sorted(a["To"] for a in acks) == ["boss@example.com", "ops@example.com"]
        assert acks[0]["Subject"] == f"ACKNOWLEDGEMENT db1.ladc1/Mysql Health Slave Check CRITICAL [ID#:{eid}]"
        assert "alice" in acks[0].get_content() and "looking" in acks[0].get_content()
        c.post_results(LADC1, [result(next(seq), "db1.ladc1", SVC, 2, "CRITICAL - slave lag 950s")])
        time.sleep(2.5)
        assert len(sink.messages) == 4, [m["Subject"] for m in sink.messages]

        # Recovery: same ID, to everyone who heard of the problem.
        c.post_results(LADC1, [result(next(seq), "db1.ladc1", SVC, 0, "OK - slave lag 0s")])
        recs = sink.wait(lambda m: m["X-Checkd-Type"] == "RECOVERY", count=2)
        assert {r["Subject"] for r in recs} == {f"RECOVERY db1.ladc1/Mysql Health Slave Check OK [ID#:{eid}]"}
        assert sorted(r["To"] for r in recs) == ["boss@example.com", "ops@example.com"]

        # `night` is in the on-call group but its notification_period is never active.
        assert sink.to("night@example.com") == []
        log = {(r["type"], r["contact"], r["status"]) for r in wait_logged(c, eid)}
        assert log == {("PROBLEM", "ops", "sent"), ("ESCALATION", "boss", "sent"),
                       ("ACKNOWLEDGEMENT", "ops", "sent"), ("ACKNOWLEDGEMENT", "boss", "sent"),
                       ("RECOVERY", "ops", "sent"), ("RECOVERY", "boss", "sent")}


def test_mail_filters_can_sort_by_a_subject_tag_and_a_sub_address(tmp_path, sink):
    """Gmail filters cannot read X-Checkd-Type: the kind shows in the subject tag and the
    +label address instead; the other contacts' mail is as it always was."""
    with central(tmp_path, sink.port, escalate_after="1h", email='subject: "[checkd {label}] {subject}"',
                 ops_email="ops+{label}@example.com") as c:
        c.post_results(LADC1, [result(1, "db1.ladc1", "Disk /", 1, "DISK WARNING - 91%")])
        disk = event_id(c, "db1.ladc1", "Disk /")
        [warn] = sink.wait(lambda m: "Disk" in m["Subject"])
        assert warn["Subject"] == f"[checkd WARNING] db1.ladc1/Disk / WARNING [ID#:{disk}]"
        assert warn["To"] == "ops+warning@example.com" and sink.envelope_to(warn) == ["ops+warning@example.com"]
        c.post_results(LADC1, [result(2, "db1.ladc1", "Disk /", 2, "DISK CRITICAL - 99%")])
        [crit] = sink.wait(lambda m: "CRITICAL" in m["Subject"])
        assert (crit["Subject"], sink.envelope_to(crit)) == \
            (f"[checkd CRITICAL] db1.ladc1/Disk / CRITICAL [ID#:{disk}]", ["ops+critical@example.com"])
        c.post_results(LADC1, [result(3, "db1.ladc1", "Disk /", 0, "DISK OK")])
        [rec] = sink.wait(lambda m: m["X-Checkd-Type"] == "RECOVERY")
        assert (rec["Subject"], sink.envelope_to(rec)) == \
            (f"[checkd RECOVERY] RECOVERY db1.ladc1/Disk / OK [ID#:{disk}]", ["ops+recovery@example.com"])
        # The headers stay the contract they were; the envelope and To: agree on every mail.
        c.post_results(LADC1, [result(4, "db1.ladc1", SVC, 2, "CRITICAL - lag")])
        mysql = event_id(c, "db1.ladc1", SVC)
        [other] = sink.wait(lambda m: "Mysql" in m["Subject"])
        assert (other["X-Checkd-Type"], other["X-Checkd-State"], other["X-Checkd-Event-ID"]) == \
            ("PROBLEM", "CRITICAL", str(mysql))
        assert all(sink.envelope_to(m) == [m["To"]] for m in sink.messages)
        log = {(r["type"], r["contact"], r["status"]) for r in wait_logged(c, disk)}
        assert log == {("PROBLEM", "ops", "sent"), ("RECOVERY", "ops", "sent")}


def test_kill_9_and_replays_never_notify_twice_and_never_drop(tmp_path, sink):
    c = central(tmp_path, sink.port, escalate_after="1h")
    with c:
        first = [result(1, "db1.ladc1", SVC, 2, "CRITICAL - lag"), result(2, "db1.ladc1", "Disk /", 1, "WARN")]
        assert c.post_results(LADC1, first)[0] == 200
        eid, disk = event_id(c, "db1.ladc1", SVC), event_id(c, "db1.ladc1", "Disk /")
        sink.wait(lambda m: m["To"] == "ops@example.com", count=2)
        wait_logged(c, eid)
        wait_logged(c, disk)
        c.restart(kill=True)
        # The poller did not get its ack and sends the batch again, then new results in the same state.
        assert c.post_results(LADC1, first)[1]["duplicates"] == 2
        assert c.post_results(LADC1, [result(3, "db1.ladc1", SVC, 2, "CRITICAL - lag"),
                                      result(4, "db1.ladc1", "Disk /", 1, "WARN")])[0] == 200
        time.sleep(2.5)
        assert sorted(m["Subject"] for m in sink.to("ops@example.com")) == sorted([
            f"db1.ladc1/Mysql Health Slave Check CRITICAL [ID#:{eid}]",
            f"db1.ladc1/Disk / WARNING [ID#:{disk}]"])

        # Decided while the mail server is down, then central killed: sent once after the restart.
        sink.stop()
        assert c.post_results(LADC1, [result(5, "db1.ladc1", "Disk /", 2, "CRIT - 99% full")])[0] == 200
        deadline = time.monotonic() + 10
        while not any(r["attempts"] for r in c.get(f"/api/v1/events/{disk}")["notifications"]):
            assert time.monotonic() < deadline, "the delivery was never tried"
            time.sleep(0.05)
        c.stop(kill=True)
        sink.start()
        c.start()
        [crit] = sink.wait(lambda m: "CRITICAL" in m["Subject"] and "Disk" in m["Subject"])
        assert crit["Subject"] == f"db1.ladc1/Disk / CRITICAL [ID#:{disk}]"
        wait_logged(c, disk)
        time.sleep(1.5)
        assert len(sink.to("ops@example.com")) == 3


def test_a_storm_of_200_problems_is_summarised(tmp_path, sink):
    with central(tmp_path, sink.port, storm=200, notify="storm_threshold: 10, storm_hold: 2s") as c:
        keys = [(f"s{i:03d}.ladc1", f"Disk {j}") for i in range(20) for j in range(10)]
        batch = [result(n, h, s, 2, f"DISK CRITICAL - {h} {s} full") for n, (h, s) in enumerate(keys, 1)]
        assert c.post_results(LADC1, batch)[0] == 200
        ids = {event_id(c, h, s) for h, s in keys}
        assert len(ids) == 200
        [summary] = sink.wait(lambda m: m["X-Checkd-Type"] == "SUMMARY", timeout=20)
        time.sleep(1.0)
        mails = sink.to("ops@example.com")
        assert len(mails) == 11, [m["Subject"] for m in mails]
        assert summary["Subject"].startswith("SUMMARY 190 problems [ID#:")
        assert summary["Subject"].endswith(",+170 more]")
        body = summary.get_content()
        listed = {int(x) for x in re.search(r"Event IDs: ([\d, ]+)", body).group(1).split(", ")}
        single = {int(m["X-Checkd-Event-ID"]) for m in mails if m["X-Checkd-Type"] == "PROBLEM"}
        # Every problem is in exactly one mail: nothing lost, nothing twice.
        assert len(single) == 10 and len(listed) == 190
        assert single | listed == ids and not single & listed
        assert "DISK CRITICAL" in body
        statuses = {r["status"] for eid in list(listed)[:5] for r in wait_logged(c, eid)}
        assert statuses == {"summarised"}


def test_a_host_down_notifies_once_for_the_host(tmp_path, sink):
    with central(tmp_path, sink.port) as c:
        seq = itertools.count(1)
        post = lambda *items: c.post_results(LADC1, [result(next(seq), *i) for i in items])  # noqa: E731
        # The services fail while the host check is still retrying (SOFT DOWN) ...
        post(("web1.ladc1", None, 1, "PING CRITICAL - 100% loss", "SOFT"))
        post(("web1.ladc1", "HTTP", 2, "connection refused"), ("web1.ladc1", "HTTPS", 2, "connection refused"))
        time.sleep(2.0)
        assert sink.messages == []
        # ... then the host is HARD DOWN: one mail, for the host.
        post(("web1.ladc1", None, 1, "PING CRITICAL - 100% loss", "HARD", 2))
        hid = event_id(c, "web1.ladc1", None)
        [m] = sink.wait(lambda m: True)
        assert m["Subject"] == f"web1.ladc1 DOWN [ID#:{hid}]" and m["X-Checkd-State"] == "DOWN"
        time.sleep(2.5)
        assert len(sink.messages) == 1, [m["Subject"] for m in sink.messages]
        post(("web1.ladc1", None, 0, "PING OK"), ("web1.ladc1", "HTTP", 0, "ok"), ("web1.ladc1", "HTTPS", 0, "ok"))
        [r] = sink.wait(lambda m: m["X-Checkd-Type"] == "RECOVERY")
        assert r["Subject"] == f"RECOVERY web1.ladc1 UP [ID#:{hid}]"
        time.sleep(1.5)
        assert len(sink.messages) == 2


def test_no_problem_mail_while_muted_or_in_downtime_and_one_when_it_ends(tmp_path, sink):
    with central(tmp_path, sink.port, escalate_after="1h") as c:
        st, _ = c.write("POST", "/api/v1/notifications", {"host": "db1.ladc1", "enabled": False})
        assert st == 200
        c.post_results(LADC1, [result(1, "db1.ladc1", "Disk /", 2, "DISK CRITICAL")])
        eid = event_id(c, "db1.ladc1", "Disk /")
        time.sleep(2.5)
        assert sink.messages == []
        c.post_results(LADC1, [result(2, "db1.ladc1", "Disk /", 2, "DISK CRITICAL")])
        st, _ = c.write("POST", "/api/v1/notifications", {"host": "db1.ladc1", "enabled": True})
        assert st == 200
        [m] = sink.wait(lambda m: True)
        assert m["Subject"] == f"db1.ladc1/Disk / CRITICAL [ID#:{eid}]"

        # A downtime: announced, quiet while it lasts, and when it ends (announced too) one
        # notification with the problem still there.
        st, dt = c.write("POST", "/api/v1/downtimes", {"host": "db1.ladc1", "service": SVC, "duration": "4s",
                                                       "comment": "replica rebuild"})
        assert st == 201
        [start] = sink.wait(lambda m: m["X-Checkd-Type"] == "DOWNTIMESTART")
        assert start["Subject"] == "DOWNTIMESTART db1.ladc1/Mysql Health Slave Check OK"
        c.post_results(LADC1, [result(3, "db1.ladc1", SVC, 2, "CRITICAL - rebuilding")])
        mysql = event_id(c, "db1.ladc1", SVC)
        time.sleep(max(0.0, dt["end"] - time.time() - 0.5))
        assert len(sink.messages) == 2, [m["Subject"] for m in sink.messages]
        [late] = sink.wait(lambda m: "Mysql" in m["Subject"] and m["X-Checkd-Type"] == "PROBLEM")
        assert late["Subject"] == f"db1.ladc1/Mysql Health Slave Check CRITICAL [ID#:{mysql}]"
        assert sink.arrival[sink.messages.index(late)] >= dt["end"]
        time.sleep(2.5)
        assert sorted(m["Subject"] for m in sink.messages[2:]) == [
            f"DOWNTIMEEND db1.ladc1/Mysql Health Slave Check CRITICAL [ID#:{mysql}]", late["Subject"]]


def test_jabber_alerts_fallback_for_failed_mail_and_reconnect_after_prosody_restart(tmp_path, sink):
    require_prosody()
    with Prosody() as prosody:
        bot = prosody.register("checkd", "botpw")
        ops = prosody.register("ops", "opspw")
        room = "noc@conference.localhost"
        jabber = {"jid": bot, "password": "botpw", "server": f"127.0.0.1:{prosody.port}", "tls": "false",
                  "room": room}
        c = central(tmp_path, sink.port, jabber=jabber, ops_jid=ops, escalate_after="1h")

        async def scenario() -> None:
            phone = Recorder(ops, "opspw", prosody.port, room=room, nick="ops")
            await phone.start()
            try:
                await asyncio.to_thread(c.start)
                await asyncio.to_thread(c.post_results, LADC1, [result(1, "db1.ladc1", SVC, 2, "CRITICAL - lag")])
                eid = await asyncio.to_thread(event_id, c, "db1.ladc1", SVC)
                subject = f"db1.ladc1/Mysql Health Slave Check CRITICAL [ID#:{eid}]"
                _, body, _ = await phone.wait_for(lambda s, b, r: s == bot, timeout=20)
                assert body.splitlines()[0] == subject and "CRITICAL - lag" in body
                # The group chat hears it once too (the room is joined before central starts).
                sender, in_room, _ = await phone.wait_for(lambda s, b, r: r, timeout=20)
                assert sender.startswith(room) and in_room.splitlines()[0] == subject
                [m] = await asyncio.to_thread(sink.wait, lambda m: True)
                assert m["Subject"] == subject

                # Mail down: the alert reaches the phone with the failure, and the mail follows later.
                sink.stop()
                await asyncio.to_thread(c.post_results, LADC1, [result(2, "db1.ladc1", "Disk /", 2, "DISK CRIT")])
                disk = await asyncio.to_thread(event_id, c, "db1.ladc1", "Disk /")
                _, notice, _ = await phone.wait_for(lambda s, b, r: "Email to ops@example.com failed" in b, 20)
                assert notice.splitlines()[0] == f"db1.ladc1/Disk / CRITICAL [ID#:{disk}]"
                sink.start()
                [late] = await asyncio.to_thread(sink.wait, lambda m: "Disk" in m["Subject"], 1, 30)
                assert late["X-Checkd-Event-ID"] == str(disk)

                # prosody restarts: central's client reconnects and the next alert arrives.
                await asyncio.to_thread(prosody.restart)
                await phone.stop()
                phone = Recorder(ops, "opspw", prosody.port)
                await phone.start(timeout=20)
                await asyncio.to_thread(c.post_results, LADC1, [result(3, "db1.ladc1", SVC, 0, "OK")])
                _, rec, _ = await phone.wait_for(lambda s, b, r: b.startswith("RECOVERY"), timeout=40)
                assert rec.splitlines()[0] == f"RECOVERY db1.ladc1/Mysql Health Slave Check OK [ID#:{eid}]"
            finally:
                await phone.stop()
                await asyncio.to_thread(c.stop)

        asyncio.run(scenario())


def test_flapping_is_told_once_not_as_a_stream_of_problems(tmp_path, sink):
    with central(tmp_path, sink.port, escalate_after="1h") as c:
        seq = itertools.count(1)
        post = lambda status, flapping: c.post_results(  # noqa: E731
            LADC1, [result(next(seq), "db1.ladc1", "Disk /", status, f"status {status}", flapping=flapping)])
        post(2, False)
        first = event_id(c, "db1.ladc1", "Disk /")
        post(0, False)
        post(2, True)                   # flap detection kicks in: one FLAPPINGSTART
        flapping = event_id(c, "db1.ladc1", "Disk /")
        for _ in range(5):
            post(0, True)
            post(2, True)
        last = event_id(c, "db1.ladc1", "Disk /")
        sink.wait(lambda m: m["X-Checkd-Type"] == "FLAPPINGSTART")
        time.sleep(2.0)
        kinds = sorted((m["X-Checkd-Type"], m["X-Checkd-Event-ID"]) for m in sink.messages)
        assert kinds == sorted([("PROBLEM", str(first)), ("RECOVERY", str(first)),
                                ("FLAPPINGSTART", str(flapping))]), kinds
        # Flapping stops with the check still CRITICAL: FLAPPINGSTOP, then the problem itself.
        post(2, False)
        sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and m["X-Checkd-Event-ID"] == str(last))
        sink.wait(lambda m: m["X-Checkd-Type"] == "FLAPPINGSTOP")
        time.sleep(1.5)
        assert len(sink.messages) == 5


class Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that answers 503 to the first POST and 200 after."""

    received: list[dict] = []
    refused = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Hook.refused == 0:
            Hook.refused += 1
            self.send_response(503)
        else:
            Hook.received.append(body)
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_webhook_is_retried_until_it_accepts(tmp_path, sink):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks/checkd?token=secret"
        with central(tmp_path, sink.port, webhook=url) as c:
            c.post_results(LADC1, [result(1, "db1.ladc1", "Queue", 2, "QUEUE CRITICAL - 5000 jobs")])
            eid = event_id(c, "db1.ladc1", "Queue")
            [row] = wait_logged(c, eid, timeout=20)
            assert (row["status"], row["attempts"], row["channel"]) == ("sent", 2, "webhook")
            [body] = Hook.received
            assert (body["event_id"], body["type"], body["subject"]) == \
                (eid, "PROBLEM", f"db1.ladc1/Queue CRITICAL [ID#:{eid}]")
            assert "secret" not in (tmp_path / "central.log").read_text()
    finally:
        server.shutdown()
        server.server_close()


def test_an_adopted_problem_round_that_reached_level_2_is_not_escalated_again(tmp_path, sink):
    """A poller alone told ops and, the escalation being due already, boss (level 2) in one
    PROBLEM round. Central adopts that log: boss must not hear of it again as an ESCALATION."""
    with central(tmp_path, sink.port, escalate_after="1s") as c:
        token = "tok-ladc1"
        _, block = c.call("POST", "/api/v1/ids/reserve", {"count": 10}, token=token)
        eid, opened = block["first"], time.time() - 30

        def row(n: int, contact: str, level: int) -> dict:
            payload = {"event_id": eid, "kind": "PROBLEM", "host": "db1.ladc1", "service": SVC,
                       "state": "CRITICAL", "site": "ladc1", "output": "lag", "contact": contact,
                       "channel": "email", "address": f"{contact}@example.com", "since": opened,
                       "created": opened + 5, "long_output": "", "escalation_level": level, "author": "",
                       "comment": "", "runbook": "", "notes": "", "via": "ladc1 poller, central unreachable",
                       "summary_ids": [], "log_id": n}
            return {"id": n, "event_id": eid, "kind": "PROBLEM", "contact": contact, "channel": "email",
                    "number": 1, "level": level, "created": opened + 5, "status": "sent", "done": opened + 6,
                    "attempts": 1, "error": None, "payload": json.dumps(payload)}

        st, doc = c.call("POST", "/api/v1/notifications/adopt", {"rows": [row(1, "ops", 1), row(2, "boss", 2)]},
                         token=token)
        assert (st, doc) == (200, {"adopted": 2, "events": 0, "actions": 0, "skipped": 0})
        st, _ = c.post_results(LADC1, [result(1, "db1.ladc1", SVC, 2, "lag", finished=opened, event_id=eid)])
        assert st == 200 and event_id(c, "db1.ladc1", SVC) == eid
        time.sleep(3)                   # the escalation was due 29 s ago: the notifier has looked at it
        assert sink.messages == [], [(m["To"], m["Subject"]) for m in sink.messages]
        told = c.get(f"/api/v1/events/{eid}")["notifications"]
        assert sorted((n["type"], n["contact"]) for n in told) == [("PROBLEM", "boss"), ("PROBLEM", "ops")]


DOWNTIME_OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
contacts:
  - {name: ops, email: ops@example.com}
  - {name: quiet, email: quiet@example.com, service_notification_options: [warning, critical, recovery],
     host_notification_options: [down, recovery]}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops, quiet]}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops]}
services:
  - {host: db1.ladc1, description: Disk /, command: "check_dummy!0!ok", contacts: [ops, quiet]}
  - {host: web1.ladc1, description: HTTP, command: "check_dummy!0!ok", contacts: [ops], notifications_enabled: false}
"""


def test_downtime_start_end_and_cancel_are_told_once_even_over_restarts(tmp_path, sink):
    """Nagios' semantics: DOWNTIMESTART when a downtime begins, DOWNTIMEEND at its scheduled end,
    DOWNTIMECANCELLED when it is deleted in effect; to the object's contacts that want `downtime`;
    overlapping downtimes of one check tell it once; a restart repeats nothing and drops nothing."""
    c = CentralProc(tmp_path, objects=DOWNTIME_OBJECTS, extra=node_extra(sink.port))
    downtime = lambda **body: c.write("POST", "/api/v1/downtimes", {"comment": "disk swap", **body})  # noqa: E731
    with c:
        types = lambda: sorted((m["X-Checkd-Type"], m["Subject"]) for m in sink.messages)  # noqa: E731
        # No notices where notifications are off: the object's setting, or `dis` on the host.
        assert downtime(host="web1.ladc1", service="HTTP", duration="1h")[0] == 201
        assert c.write("POST", "/api/v1/notifications", {"host": "web1.ladc1", "enabled": False})[0] == 200
        assert downtime(host="web1.ladc1", duration="1h")[0] == 201
        # Two overlapping downtimes of Disk /: one start now, one end when the later one ends.
        st, first = downtime(host="db1.ladc1", service="Disk /", duration="3s")
        st, second = downtime(host="db1.ladc1", service="Disk /", duration="5s")
        [start] = sink.wait(lambda m: m["X-Checkd-Type"] == "DOWNTIMESTART")
        assert start["Subject"] == "DOWNTIMESTART db1.ladc1/Disk / OK" and start["To"] == "ops@example.com"
        assert start["X-Checkd-Event-ID"] == "0"        # no problem is open: no [ID#:]
        body = start.get_content()
        assert "DOWNTIME STARTED: db1.ladc1/Disk / is in scheduled downtime until" in body
        assert f"Downtime: #{first['id']}," in body and "by ops" in body and "disk swap" in body
        # A host downtime scheduled to begin in 2 s is told when it begins.
        st, host = downtime(host="db1.ladc1", start=time.time() + 2, duration="1h")
        [hstart] = sink.wait(lambda m: m["Subject"] == "DOWNTIMESTART db1.ladc1 UP")
        assert sink.arrival[sink.messages.index(hstart)] >= host["start"]
        [end] = sink.wait(lambda m: m["X-Checkd-Type"] == "DOWNTIMEEND", timeout=20)
        assert end["Subject"] == "DOWNTIMEEND db1.ladc1/Disk / OK"
        assert sink.arrival[sink.messages.index(end)] >= second["end"] > first["end"]
        time.sleep(1.5)
        told = types()
        assert told == [("DOWNTIMEEND", "DOWNTIMEEND db1.ladc1/Disk / OK"),
                        ("DOWNTIMESTART", "DOWNTIMESTART db1.ladc1 UP"),
                        ("DOWNTIMESTART", "DOWNTIMESTART db1.ladc1/Disk / OK")]
        assert {m["To"] for m in sink.messages} == {"ops@example.com"}   # quiet does not want `downtime`

        # kill -9 and start again: the running downtime is not announced a second time.
        c.restart(kill=True)
        time.sleep(2.5)
        assert types() == told
        # Deleted while in effect: DOWNTIMECANCELLED, decided (and committed) before the answer;
        # the mail server is down and central is killed before it could send: sent once after.
        sink.stop()
        assert c.write("DELETE", f"/api/v1/downtimes/{host['id']}")[0] == 200
        c.stop(kill=True)
        sink.start()
        c.start()
        [cancelled] = sink.wait(lambda m: m["X-Checkd-Type"] == "DOWNTIMECANCELLED")
        assert cancelled["Subject"] == "DOWNTIMECANCELLED db1.ladc1 UP"
        assert "was deleted; notifications are on again" in cancelled.get_content()
        c.restart()
        time.sleep(2.5)
        assert types() == sorted([*told, ("DOWNTIMECANCELLED", "DOWNTIMECANCELLED db1.ladc1 UP")])
        phases = {d["id"]: d["phase"] for d in c.get("/api/v1/downtimes")["downtimes"]}
        assert phases[first["id"]] == phases[second["id"]] == "ended" and host["id"] not in phases


def test_an_upgraded_state_directory_does_not_announce_downtimes_that_already_began(tmp_path, sink):
    """Downtimes stored by a checkd without downtime notices (schema 2): the one running at the
    upgrade counts as told, the one still to come is told when it begins."""
    c = CentralProc(tmp_path, objects=DOWNTIME_OBJECTS, extra=node_extra(sink.port))
    with c:
        pass                                    # the schema, written by this checkd
    db = sqlite3.connect(tmp_path / "state" / "central.sqlite")
    now = time.time()
    with db:
        for column in ("phase", "flexible", "duration", "triggered", "series"):     # back to schema 2
            db.execute(f"ALTER TABLE downtimes DROP COLUMN {column}")
        db.executemany("INSERT INTO downtimes VALUES (?,?,?,?,?,?,?)", [
            (1, "db1.ladc1", "Disk /", now - 600, now + 3600, "ops", "running since before the upgrade"),
            (2, "db1.ladc1", None, now + 3, now + 3600, "ops", "begins after the upgrade"),
            (3, "web1.ladc1", None, now - 7200, now - 3600, "ops", "long over")])
        db.execute("PRAGMA user_version = 2")
    db.close()
    with c:
        [start] = sink.wait(lambda m: m["X-Checkd-Type"] == "DOWNTIMESTART")
        assert start["Subject"] == "DOWNTIMESTART db1.ladc1 UP"
        time.sleep(1.5)
        assert [m["Subject"] for m in sink.messages] == ["DOWNTIMESTART db1.ladc1 UP"]
        assert [d["phase"] for d in c.get("/api/v1/downtimes")["downtimes"]] == ["active", "active", "ended"]
