"""Acknowledgements as operators use them, end to end: a real central, aiosmtpd, the CLI.
Not sticky (ends on WARNING -> CRITICAL, Nagios), expiring (notifications resume),
several at once and a whole host's; the history says why each ended."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.notify_env import Desk

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
contacts:
  - {name: ops, email: ops@example.com}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops]}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops]}
services:
  - {hosts: [db1.ladc1, web1.ladc1], description: Disk /, command: "check_dummy!0!ok", contacts: [ops],
     notification_interval: 3s}
  - {hosts: [web1.ladc1], description: HTTP, command: "check_dummy!0!ok", contacts: [ops]}
"""


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    with Desk(tmp_path, OBJECTS) as d:
        yield d


def test_an_ack_that_is_not_sticky_ends_when_warning_turns_critical(desk: Desk) -> None:
    eid = desk.post("db1.ladc1", "Disk /", 1)
    desk.sink.wait(lambda m: m["Subject"] == f"db1.ladc1/Disk / WARNING [ID#:{eid}]")
    out = desk.cli("ack", str(eid), "-m", "cleaning up", "--not-sticky")
    assert out.returncode == 0 and "not sticky" in out.stdout, out
    desk.sink.wait(lambda m: m["X-Checkd-Type"] == "ACKNOWLEDGEMENT")
    time.sleep(4)                                       # past notification_interval: acknowledged, quiet
    assert len(desk.mails("PROBLEM", "Disk /")) == 1
    desk.post("db1.ladc1", "Disk /", 2)                 # WARNING -> CRITICAL: the ack ends, it is told
    desk.sink.wait(lambda m: m["Subject"] == f"db1.ladc1/Disk / CRITICAL [ID#:{eid}]")
    event = desk.central.get(f"/api/v1/events/{eid}")
    assert event["acknowledged"] is False
    assert [h["kind"] for h in event["history"]][-3:] == ["ack", "state", "ack_ended"]
    out = desk.cli("comment", str(eid), "new", "disk", "ordered")
    assert out.returncode == 0 and f"[ID#:{eid}]" in out.stdout, out
    assert desk.central.get(f"/api/v1/events/{eid}")["history"][-1]["output"] == "new disk ordered"


def test_several_at_once_a_whole_host_and_an_expiry(desk: Desk) -> None:
    disk = desk.post("web1.ladc1", "Disk /", 2)
    http = desk.post("web1.ladc1", "HTTP", 2)
    db = desk.post("db1.ladc1", "Disk /", 2)
    desk.sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM", count=3)
    out = desk.cli("ack", "--host", "web1.ladc1", "-m", "rack power", "--expire", "3s")
    assert out.returncode == 0 and f"#{disk}, #{http}" in out.stdout and "until" in out.stdout, out
    status, doc = desk.central.write("POST", "/api/v1/ack", {"event_ids": [db, 999999], "comment": "same"})
    assert status == 200 and doc["acknowledged"] == [db] and doc["not_open"] == [999999], doc
    problems = {p["id"]: p for p in desk.central.get("/api/v1/problems")["problems"]}
    assert all(problems[i]["acknowledged"] for i in (disk, http, db))
    assert problems[disk]["ack_expires"] and problems[db]["ack_expires"] is None
    # web1's acknowledgements lapse after 3 s: web1/Disk / (re-notified every 3 s) is told again.
    wait_for(lambda: not desk.central.get(f"/api/v1/events/{disk}")["acknowledged"], 10, "the expiry")
    before = len(desk.mails("PROBLEM", "web1.ladc1/Disk /"))
    desk.sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and "web1.ladc1/Disk /" in m["Subject"],
                   count=before + 1, timeout=10)
    assert len(desk.mails("PROBLEM", "db1.ladc1/Disk /")) == 1, "a sticky ack without expiry holds"
    assert "ack_expired" in [h["kind"] for h in desk.central.get(f"/api/v1/events/{disk}")["history"]]
    assert desk.central.write("POST", "/api/v1/ack", {"event_id": db, "expire": "-1h"})[0] == 400
    assert desk.central.write("POST", "/api/v1/ack", {"event_id": db, "sticky": "yes"})[0] == 400
