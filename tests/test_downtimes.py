"""Downtimes as operators schedule them, end to end: a real central, aiosmtpd, the CLI.
A site's downtime made as one series and cancelled whole; a flexible one that waits for
the failure; a recurring one made through the API; a change of end from the web page.
(The fixed and recurring timelines are in tests/test_engine.py on a fake clock.)"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.notify_env import Desk
from tests.test_web import csrf_of, http, login

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
contacts:
  - {name: ops, email: ops@example.com}
hostgroups:
  - {name: web, members: [web1.ladc1, web2.nydc1]}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops]}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops]}
  - {name: web2.nydc1, address: 127.0.0.1, site: nydc1, contacts: [ops]}
services:
  - {hosts: [db1.ladc1, web1.ladc1, web2.nydc1], description: Disk /, command: "check_dummy!0!ok", contacts: [ops]}
"""


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    with Desk(tmp_path, OBJECTS) as d:
        yield d


def test_a_sites_downtime_is_one_series_and_cancelled_whole(desk: Desk) -> None:
    out = desk.cli("downtime", "--site", "ladc1", "1h", "-m", "rack move")
    assert out.returncode == 0 and "series" in out.stdout, out
    listed = desk.central.get("/api/v1/downtimes")["downtimes"]
    assert sorted(d["host"] for d in listed) == ["db1.ladc1", "web1.ladc1"] and len({d["series"] for d in listed}) == 1
    desk.post("web1.ladc1", "Disk /", 2)          # in the downtime: held
    desk.post("web2.nydc1", "Disk /", 2)          # another site: told
    desk.sink.wait(lambda m: "web2.nydc1" in m["Subject"] and m["X-Checkd-Type"] == "PROBLEM")
    time.sleep(1.5)
    assert desk.mails("PROBLEM", "web1.ladc1") == []
    listing = desk.cli("downtimes")
    assert listing.returncode == 0 and listing.stdout.count("in effect") == 2, listing
    out = desk.cli("downtime", "--cancel", str(listed[0]["id"]), "--series")
    assert out.returncode == 0 and "cancelled downtimes" in out.stdout, out
    # Cancelled while in effect: told so (to the host's contacts), and the held problem once.
    desk.sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and "web1.ladc1" in m["Subject"])
    assert len(desk.mails("DOWNTIMECANCELLED", "ladc1")) == 2
    time.sleep(1.5)
    assert len(desk.mails("PROBLEM", "web1.ladc1")) == 1
    assert desk.central.get("/api/v1/downtimes?ended=hide")["downtimes"] == []


def test_a_flexible_downtime_waits_for_the_failure_then_holds_it_for_its_duration(desk: Desk) -> None:
    status, doc = desk.central.write("POST", "/api/v1/downtimes", {
        "host": "db1.ladc1", "service": "Disk /", "duration": "1h", "flexible": "3s", "comment": "fsck"})
    assert status == 201, doc
    time.sleep(1.5)
    assert desk.mails("DOWNTIMESTART", "db1") == [], "a flexible downtime waits for its check to fail"
    desk.post("db1.ladc1", "Disk /", 2)
    failed = time.time()
    desk.sink.wait(lambda m: m["X-Checkd-Type"] == "DOWNTIMESTART")
    [problem] = desk.sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and "db1" in m["Subject"], timeout=10)
    assert time.time() - failed >= 2.5, "held for the flexible downtime's 3 s"
    assert desk.mails("DOWNTIMEEND", "db1") and problem["Subject"].startswith("db1.ladc1/Disk / CRITICAL")
    [dt] = desk.central.get("/api/v1/downtimes?host=db1.ladc1")["downtimes"]
    assert dt["flexible"] and abs(dt["triggered"] - failed) < 2 and dt["phase"] == "ended"


def test_a_recurring_downtime_made_through_the_api_and_changed_on_the_web_page(desk: Desk) -> None:
    now = datetime.datetime.now()
    if now.hour == 23 and now.minute >= 50:
        time.sleep((60 - now.minute) * 60 - now.second + 5)        # keep today's range within today
        now = datetime.datetime.now()
    day = now.strftime("%A").lower()
    ranges = {day: f"{now:%H:%M}-{(now + datetime.timedelta(minutes=10)):%H:%M}"}
    status, doc = desk.central.write("POST", "/api/v1/downtimes", {
        "hostgroups": ["web"], "comment": "weekly patching", "recurring": {"name": "patching", "ranges": ranges}})
    assert status == 201, doc
    made = wait_for(lambda: desk.central.get("/api/v1/downtimes?series=")["downtimes"], 10, "the window made")
    assert sorted(d["host"] for d in made) == ["web1.ladc1", "web2.nydc1"]
    assert made[0]["series"].startswith("patching@") and made[0]["author"] == "ops"
    [schedule] = desk.central.get("/api/v1/downtimes/schedules")["schedules"]
    assert (schedule["name"], schedule["hostgroups"], schedule["source"]) == ("patching", ["web"], "api")
    bad = desk.central.write("POST", "/api/v1/downtimes", {"hostgroups": ["web"], "recurring": {
        "name": "x", "ranges": {"funday": "02:00-03:00"}}})
    assert bad[0] == 400 and "funday" in bad[1]["error"]
    # On web1's page: one hour longer, then cancelled.
    c, dt = desk.central, next(d for d in made if d["host"] == "web1.ladc1")
    cookie = login(c)
    page = "/host/web1.ladc1"
    html = http(c, "GET", page, cookie=cookie)[2]
    assert f'id="do-extend-{dt["id"]}"' in html
    form = {"csrf": csrf_of(html), "next": page, "downtime_id": str(dt["id"])}
    assert http(c, "POST", "/action/downtime_end", {**form, "change": "extend"}, cookie=cookie)[0] == 303
    [changed] = c.get("/api/v1/downtimes?host=web1.ladc1")["downtimes"]
    assert changed["end"] == dt["end"] + 3600
    assert http(c, "POST", "/action/downtime_end", {**form, "change": "cancel"}, cookie=cookie)[0] == 303
    assert c.get("/api/v1/downtimes?host=web1.ladc1")["downtimes"] == []
    assert c.write("DELETE", "/api/v1/downtimes/schedules/patching")[0] == 200
