"""Availability reports (docs/availability.md). In-process, on both stores: a timeline made
through the engine on a fake clock (a service WARNING 1 h, CRITICAL 2 h of which 1 h in a
downtime and 30 min acknowledged, over 10 h), its exact seconds and percentages, with and
without downtime counted as OK, summed per host, host group and site, and the CSV read back;
the weekly mail's schedule on a fake clock. Then a real central: the API's JSON and CSV, the
page, and the weekly mail sent once, also across a restart.
"""

from __future__ import annotations

import asyncio
import csv
import datetime
import html
import io
import time
from pathlib import Path

import pytest

from central.availability_api import csv_text
from central.weekly_report import due_week
from checkd.config import load_node
from checkd.config.errors import ConfigError
from checkd.config.reports import WeeklyReport
from checkd.engine import availability, timelines
from checkd.engine.db import INSERT_FIRST_RESULT
from checkd.engine.store import DELETE_DOWNTIME, INSERT_CANCELLED, UPSERT_EVENT
from checkd.report_periods import DAY, bounds, week_start
from tests.central_proc import CentralProc, result
from tests.notify_env import MailSink, node_extra
from tests.test_engine import T0, Timeline, run, store  # noqa: F401,F811  (fixtures: both stores)
from tests.helpers import wait_for
from tests.test_web import http

H = 3600.0
OK, WARNING, CRITICAL = 0, 1, 2
UP, DOWN = 0, 1

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
contacts:
  - {name: anna, email: anna@example.com}
  - {name: ben, email: ben@example.com}
contact_groups:
  - {name: managers, members: [anna, ben]}
hostgroups:
  - {name: databases, members: [db1.ladc1]}
  - {name: everything, members: [db1.ladc1, web1.nydc1]}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1, command: "check_dummy!0!up"}
  - {name: web1.nydc1, address: 127.0.0.1, site: nydc1, command: "check_dummy!0!up"}
  - {name: web2.nydc1, address: 127.0.0.1, site: nydc1}
services:
  - {host: db1.ladc1, description: Mysql, command: "check_dummy!0!ok"}
  - {host: db1.ladc1, description: Disk, command: "check_dummy!0!ok"}
  - {host: web1.nydc1, description: HTTP, command: "check_dummy!0!ok"}
"""


def states(entry: dict, *names: str) -> list[tuple[float, float, float]]:
    """(seconds, downtime, acknowledged) of each named state of a report entry."""
    return [(s["seconds"], s["downtime"], s["acknowledged"]) for s in (entry["states"][n] for n in names)]


async def downtime(t: Timeline, host: str, service: str | None, start: float, end: float) -> int:
    made, ops = t.engine.store.new_downtimes([(host, service)], start, end, "alice", "maintenance")
    await t.engine.commit(ops, t.engine.downtimes.added(made[0], t.now))
    return made[0].id


async def cancel(t: Timeline, did: int) -> None:
    """As central's DELETE /api/v1/downtimes/ID does (central/operations.py)."""
    dt = t.engine.store.pop_downtime(did)
    assert dt is not None
    await t.engine.write([(DELETE_DOWNTIME, [(did,)]), (INSERT_CANCELLED, [dt.cancelled_row(t.now)])])


async def at(t: Timeline, offset: float, host: str, service: str | None, status: int) -> None:
    t.now = T0 + offset
    await t.result(host, service, status)


def test_a_hand_computed_timeline_gives_exact_seconds_and_percentages(run) -> None:
    async def scenario(t: Timeline) -> None:
        for host, service in (("db1.ladc1", None), ("db1.ladc1", "Mysql"), ("db1.ladc1", "Disk"),
                              ("web1.nydc1", None)):
            await at(t, -H, host, service, OK)             # known from before the period
        await at(t, 2 * H, "db1.ladc1", "Mysql", WARNING)
        await at(t, 3 * H, "db1.ladc1", "Mysql", CRITICAL)
        t.now = T0 + 3.5 * H
        await t.ack("db1.ladc1", "Mysql")                  # until the recovery: 1.5 h, 1 h of it in downtime
        await downtime(t, "db1.ladc1", "Mysql", T0 + 4 * H, T0 + 6 * H)
        await at(t, 4 * H, "web1.nydc1", "HTTP", OK)       # its first result: undetermined before
        await at(t, 5 * H, "db1.ladc1", "Mysql", OK)
        await at(t, 7 * H, "web1.nydc1", None, DOWN)
        host_down = await downtime(t, "web1.nydc1", None, T0 + 7.5 * H, T0 + 9 * H)   # the host and HTTP
        await at(t, 8 * H, "web1.nydc1", None, UP)
        t.now = T0 + 8.5 * H
        await cancel(t, host_down)                         # what it covered until then still counts
        t.now = T0 + 10 * H
        await t.engine.write([])
        objs = t.engine.objs
        keys = availability.checks_of(objs)
        assert keys == [("db1.ladc1", None), ("db1.ladc1", "Mysql"), ("db1.ladc1", "Disk"), ("web1.nydc1", None),
                        ("web1.nydc1", "HTTP")], "web2.nydc1 has no host check: no row of its own"
        rep = await asyncio.to_thread(availability.report, t.engine.db, objs, keys, T0, T0 + 10 * H)
        as_ok = await asyncio.to_thread(availability.report, t.engine.db, objs, keys, T0, T0 + 10 * H, True)
        check(rep.json(), as_ok.json())
        read_back(csv_text(rep))
        assert availability.checks_of(objs, hostgroup="databases") == keys[:3]
        assert availability.checks_of(objs, service="[DH]*") == [keys[2], keys[4]], "a pattern: no host checks"
        with pytest.raises(LookupError, match="unknown host 'db9'"):
            availability.checks_of(objs, host="db9")
    run(scenario, objects=OBJECTS)


def check(doc: dict, as_ok: dict) -> None:
    by = {(c["host"], c["service"]): c for c in doc["checks"]}
    mysql = by[("db1.ladc1", "Mysql")]
    assert mysql["seconds"] == 10 * H and mysql["known"] == 10 * H
    # OK 0-2 h and 5-10 h (5-6 h in downtime); WARNING 2-3 h; CRITICAL 3-5 h: 4-5 h in downtime,
    # acknowledged from 3.5 h, of which 30 min outside the downtime.
    assert states(mysql, "OK", "WARNING", "CRITICAL", "UNKNOWN") == [
        (7 * H, H, 0), (H, 0, 0), (2 * H, H, 0.5 * H), (0, 0, 0)]
    assert [mysql["states"][s]["percent"] for s in ("OK", "WARNING", "CRITICAL")] == [70.0, 10.0, 20.0]
    assert mysql["availability"] == 70.0 and mysql["undetermined"] == {"seconds": 0.0, "percent": 0.0}
    mysql_ok = {(c["host"], c["service"]): c for c in as_ok["checks"]}[("db1.ladc1", "Mysql")]
    assert states(mysql_ok, "OK", "WARNING", "CRITICAL") == [(8 * H, 2 * H, 0), (H, 0, 0), (H, 0, 0.5 * H)]
    assert mysql_ok["availability"] == 80.0
    host = by[("web1.nydc1", None)]          # DOWN 7-8 h; the host downtime 7.5 h until cancelled at 8.5 h
    assert states(host, "UP", "DOWN", "UNREACHABLE") == [(9 * H, 0.5 * H, 0), (H, 0.5 * H, 0), (0, 0, 0)]
    assert host["availability"] == 90.0
    assert {(c["host"], c["service"]): c for c in as_ok["checks"]}[("web1.nydc1", None)]["availability"] == 95.0
    http_ = by[("web1.nydc1", "HTTP")]       # first result at 4 h; the host's downtime covers it too
    assert http_["undetermined"] == {"seconds": 4 * H, "percent": 40.0}
    assert states(http_, "OK") == [(6 * H, H, 0)] and http_["states"]["OK"]["percent"] == 60.0
    assert http_["availability"] == 100.0, "of the known time"
    assert by[("db1.ladc1", "Disk")]["availability"] == 100.0
    hosts = {h["host"]: h for h in doc["hosts"]}
    db1 = hosts["db1.ladc1"]["services"]    # Mysql + Disk
    assert db1["checks"] == 2 and db1["seconds"] == 20 * H
    assert states(db1, "OK", "WARNING", "CRITICAL") == [(17 * H, H, 0), (H, 0, 0), (2 * H, H, 0.5 * H)]
    assert db1["states"]["OK"]["percent"] == 85.0 and hosts["db1.ladc1"]["hosts"]["availability"] == 100.0
    groups = {g["hostgroup"]: g for g in doc["hostgroups"]}
    assert sorted(groups) == ["databases", "everything"]
    every = groups["everything"]
    assert every["hosts"]["checks"] == 2 and every["hosts"]["availability"] == 95.0          # 19 h UP of 20
    svc = every["services"]                 # Mysql, Disk, HTTP: 30 h, 4 h of them undetermined
    assert (svc["checks"], svc["seconds"], svc["known"]) == (3, 30 * H, 26 * H)
    assert svc["states"]["OK"]["seconds"] == 23 * H and svc["availability"] == round(23 / 26 * 100, 4)
    sites = {s["site"]: s for s in doc["sites"]}
    assert sites["nydc1"]["services"]["undetermined"]["seconds"] == 4 * H and sites["ladc1"]["hosts"]["checks"] == 1
    assert doc["total"]["services"]["states"]["CRITICAL"]["acknowledged"] == 0.5 * H


def read_back(text: str) -> None:
    rows = {(r["host"], r["service"]): r for r in csv.DictReader(io.StringIO(text))}
    assert len(rows) == 5
    mysql = rows[("db1.ladc1", "Mysql")]
    assert (mysql["ok_seconds"], mysql["ok_downtime_seconds"], mysql["critical_seconds"],
            mysql["critical_acknowledged_seconds"], mysql["availability_percent"]) == (
        "25200", "3600", "7200", "1800", "70")
    assert mysql["up_seconds"] == "" and mysql["since"] == datetime.datetime.fromtimestamp(T0).astimezone().isoformat()
    host = rows[("web1.nydc1", "")]
    assert (host["down_seconds"], host["down_downtime_seconds"], host["ok_seconds"]) == ("3600", "1800", "")
    assert rows[("web1.nydc1", "HTTP")]["undetermined_percent"] == "40"


def test_a_check_with_two_first_results_is_known_from_the_earlier(store) -> None:
    """first_results has no key in a new state directory (rows appended, checkd/engine/schema.py):
    should a check get a second row, the report still counts it as known from its first."""
    db = store()
    db.open()
    db.start()

    async def write() -> None:
        await db.write([(INSERT_FIRST_RESULT, [("db1.ladc1", "Mysql", T0 - 2 * H)])])
        await db.write([(INSERT_FIRST_RESULT, [("db1.ladc1", "Mysql", T0 - H)])])
    asyncio.run(write())
    key = ("db1.ladc1", "Mysql")
    assert timelines.read(db, [key], T0 - 3 * H, T0)[key].known_from == T0 - 2 * H
    db.stop()


def test_checks_stored_before_first_results_are_known_from_their_first_problem_or_last_change(store) -> None:
    db = store()
    db.open()
    upsert = "INSERT OR REPLACE INTO checks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    check = ("db1.ladc1", "Mysql", 0, "HARD", 1, "ok", "", "", T0, T0 - H, "poller-ladc1", None, 0)
    event = (7, "db1.ladc1", "Mysql", T0 - 3 * H, T0 - H, 0, None, 0, 0, None, None, "central", None, 0, 0, 1, 1, None)
    with_no_problem = ("db1.ladc1", "", 0, "HARD", 1, "up", "", "", T0, T0 - 2 * H, "poller-ladc1", None, 0)
    db.start()

    async def write() -> None:
        # As a state directory from before first_results: checks and events, no first results.
        await db.write([(upsert, [check, with_no_problem]), (UPSERT_EVENT, [event])])
    asyncio.run(write())
    db.stop()
    for start in ("the next start", "the one after"):     # seeded once, not again at each start
        db.open()
        assert sorted(db.read("SELECT host, service, finished FROM first_results")) == [
            ("db1.ladc1", "", T0 - 2 * H), ("db1.ladc1", "Mysql", T0 - 3 * H)], start
        db.stop()


def test_the_weekly_mail_is_due_once_a_week_at_its_time() -> None:
    weekly = WeeklyReport(contact_groups=("managers",), day="tuesday", at="08:30")
    monday = week_start(T0)
    last_week = week_start(monday - DAY)
    tuesday = datetime.datetime.fromtimestamp(monday) + datetime.timedelta(days=1, hours=8, minutes=30)
    assert due_week(tuesday.timestamp() - 60, weekly, 0) is None, "a minute early"
    assert due_week(tuesday.timestamp(), weekly, 0) == last_week
    assert due_week(monday + 5 * DAY, weekly, 0) == last_week, "central was down on Tuesday: sent when it is back"
    assert due_week(tuesday.timestamp() + 60, weekly, int(last_week)) is None, "sent already"
    assert due_week(monday + 8 * DAY + 9 * H, weekly, int(last_week)) == monday, "a week later: the week before"
    since, until = bounds("lastweek", T0)
    assert (since, until) == (last_week, monday) and datetime.datetime.fromtimestamp(since).weekday() == 0


EMAIL = "  email: {smtp_host: 127.0.0.1, from: checkd@example.com}\n"


@pytest.mark.parametrize("email, weekly, words", [
    (EMAIL, "{contact_groups: [managers], day: mondy}", "day: expected a day of the week"),
    (EMAIL, '{contact_groups: [managers], at: "25:00"}', 'at: expected a time of day such as "08:00"'),
    (EMAIL, "{contact_groups: [manager]}", "contact_groups: no contact group 'manager' (did you mean \"managers\"?)"),
    (EMAIL, "{day: monday}", "say who gets it: contacts: and/or contact_groups:"),
    ("", "{contacts: [anna]}", "reports: weekly is sent by email: add an email: section"),
], ids=["day", "at", "group", "nobody", "no-email"])
def test_a_weekly_report_that_cannot_go_out_is_refused_at_load(tmp_path: Path, email: str, weekly: str,
                                                                words: str) -> None:
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "a.yaml").write_text(OBJECTS)
    node = tmp_path / "central.yaml"
    node.write_text(f"central:\n  state_dir: s\n  objects: objects\n{email}  reports:\n    weekly: {weekly}\n")
    with pytest.raises(ConfigError) as e:
        load_node(node)
    assert f"{node}:{6 if email else 5}: " in str(e.value) and words in str(e.value), str(e.value)


def test_a_real_central_reports_as_json_csv_and_a_page_and_mails_the_week_once(tmp_path: Path) -> None:
    sink = MailSink()
    sink.start()
    # Due from Monday 00:00: whenever the test runs, last week's report goes out at start.
    extra = node_extra(sink.port) + '  reports: {weekly: {contact_groups: [managers], day: monday, at: "00:00"}}\n'
    c = CentralProc(tmp_path, objects=OBJECTS, extra=extra)
    try:
        c.start()
        reports = sink.wait(lambda m: m["X-Checkd-Type"] == "REPORT")
        mail = reports[0]
        week = time.strftime("%G-W%V", time.localtime(week_start(week_start(time.time()) - DAY)))
        assert mail["Subject"].startswith(f"Availability {week}: ") and sorted(sink.envelope_to(mail)) == [
            "anna@example.com", "ben@example.com"]
        attached = next(p for p in mail.iter_attachments() if p.get_filename() == f"availability-{week}.csv")
        rows = list(csv.DictReader(io.StringIO(attached.get_content())))
        assert [(r["host"], r["service"]) for r in rows] == [("db1.ladc1", ""), ("db1.ladc1", "Mysql"),
                                                             ("db1.ladc1", "Disk"), ("web1.nydc1", ""),
                                                             ("web1.nydc1", "HTTP")]

        t = float(int(time.time()) - 10)
        steps = [(None, UP, 4), ("Mysql", OK, 4), ("Mysql", CRITICAL, 3), ("Disk", OK, 2), ("Mysql", OK, 1)]
        batch = [result(i, "db1.ladc1", svc, status, finished=t - hours_ago * H)
                 for i, (svc, status, hours_ago) in enumerate(steps, start=1)]
        assert c.post_results("poller-ladc1", batch)[1]["accepted"] == 5
        code, made = c.write("POST", "/api/v1/downtimes", {"host": "db1.ladc1", "service": "Mysql", "start": t - 2 * H,
                                                            "end": t + H, "comment": "failover test"})
        assert code == 201, made
        assert c.write("DELETE", f"/api/v1/downtimes/{made['id']}")[0] == 200       # covered T-2h until now

        query = f"host=db1.ladc1&since={t - 4 * H:.0f}&until={t:.0f}"
        doc = c.get(f"/api/v1/availability?{query}")
        by = {(r["host"], r["service"]): r for r in doc["checks"]}
        assert list(by) == [("db1.ladc1", None), ("db1.ladc1", "Mysql"), ("db1.ladc1", "Disk")]
        assert states(by[("db1.ladc1", "Mysql")], "OK", "CRITICAL") == [(2 * H, H, 0), (2 * H, H, 0)]
        assert by[("db1.ladc1", "Mysql")]["availability"] == 50.0
        assert by[("db1.ladc1", "Disk")]["undetermined"]["seconds"] == 2 * H
        assert by[("db1.ladc1", None)]["availability"] == 100.0
        assert c.get(f"/api/v1/availability?{query}&downtime_as_ok=1")["checks"][1]["availability"] == 75.0
        assert [g["hostgroup"] for g in doc["hostgroups"]] == ["databases", "everything"] and doc["period"] is None

        status, headers, text = http(c, "GET", f"/api/v1/availability?{query}&format=csv")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        mysql = next(r for r in csv.DictReader(io.StringIO(text)) if r["service"] == "Mysql")
        assert (mysql["ok_seconds"], mysql["critical_downtime_seconds"], mysql["availability_percent"]) == \
            ("7200", "3600", "50")

        assert c.call("GET", "/api/v1/availability?host=db9")[0] == 404
        assert c.call("GET", "/api/v1/availability?period=fortnight")[0] == 400
        assert c.get("/api/v1/availability?site=nydc1&period=today")["checks"][0]["availability"] is None

        status, headers, page = http(c, "GET", f"/availability?{query}")
        assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
        assert ">Mysql</a>" in page and "50%" in page and "CRITICAL 50%" in page
        assert f'href="{html.escape(f"/api/v1/availability?{query}&format=csv")}" id="csv"' in page
        assert '<a class="navlink" href="/availability">' in http(c, "GET", "/")[2]
        status, _, page = http(c, "GET", "/availability?host=%3Cscript%3E")
        assert status == 404 and "&#39;&lt;script&gt;&#39;" in page and "<script>" not in page.split("</head>")[1]

        c.restart()
        wait_for(lambda: "weekly availability report: last week's went out" in c.log.read_text(), 10,
                 "the report's first look at the clock after the restart")
        assert len([m for m in sink.messages if m["X-Checkd-Type"] == "REPORT"]) == 1, "sent once a week"
    finally:
        c.stop()
        sink.stop()
