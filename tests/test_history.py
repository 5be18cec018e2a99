"""The history search (docs/history.md) against one real central: results posted by hand
for hosts of two sites, an ack and a comment, then every filter of GET /api/v1/history
alone and together, paging, the refusals, `checkd history` and the /history page.
The search's SQL also runs on PostgreSQL, both ways it can be planned, against SQLite's answer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from checkd.engine import history
from checkd.engine.db import Database, SqliteDatabase
from checkd.engine.store import INSERT_HISTORY
from tests.central_proc import CentralProc, result
from tests.helpers import REPO
from tests.test_web import http

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$"
hostgroups:
  - {name: web, members: [web1.ladc1, web2.nydc1]}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: web2.nydc1, address: 127.0.0.1, site: nydc1}
services:
  - {hosts: [db1.ladc1, web2.nydc1], description: Disk /, command: "check_dummy!0"}
  - {host: db1.ladc1, description: Mysql, command: "check_dummy!0"}
"""
NOW = time.time()
AGO = {"disk": 3 * 3600, "mysql": 2 * 3600, "web1": 5400, "web2": 3600, "disk_ok": 1800}


class Story:
    """What happened, by name: each row as (event_id, kind) and the central it happened at."""

    def __init__(self, c: CentralProc):
        self.c = c
        ladc = [result(1, "db1.ladc1", "Disk /", 2, "DISK CRITICAL - 99% on /var", finished=NOW - AGO["disk"]),
                result(2, "db1.ladc1", "Mysql", 1, "slave lag 40s <b>", finished=NOW - AGO["mysql"]),
                result(3, "web1.ladc1", None, 1, "PING CRITICAL - 100% loss", finished=NOW - AGO["web1"])]
        assert c.post_results("poller-ladc1", ladc)[1]["accepted"] == 3
        assert c.post_results("poller-nydc1", [result(1, "web2.nydc1", "Disk /", 3, "no such device",
                                                      finished=NOW - AGO["web2"])])[1]["accepted"] == 1
        ids = {(p["host"], p["service"]): p["id"] for p in c.get("/api/v1/problems")["problems"]}
        self.disk, self.mysql, self.web1, self.web2 = (ids[k] for k in (
            ("db1.ladc1", "Disk /"), ("db1.ladc1", "Mysql"), ("web1.ladc1", None), ("web2.nydc1", "Disk /")))
        assert c.post_results("poller-ladc1", [result(4, "db1.ladc1", "Disk /", 0, "DISK OK",
                                                      finished=NOW - AGO["disk_ok"])])[1]["accepted"] == 1
        assert c.write("POST", "/api/v1/ack", {"event_id": self.mysql, "comment": "Looking at the REPLICA",
                                               "author": "anna"})[0] == 200
        assert c.write("POST", "/api/v1/comments", {"host": "web2.nydc1", "service": "Disk /",
                                                    "text": "disk_2 replaced", "author": "bob"})[0] == 201

    def rows(self, query: str = "") -> list[tuple[int, str]]:
        doc = self.c.get("/api/v1/history" + query)
        return [(r["event_id"], r["kind"]) for r in doc["history"]]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    with CentralProc(tmp_path_factory.mktemp("history"), objects=OBJECTS) as c:
        yield Story(c)


def test_every_row_newest_first_with_its_check_site_state_and_link(story: Story) -> None:
    s = story
    doc = s.c.get("/api/v1/history")
    assert [(r["event_id"], r["kind"]) for r in doc["history"]] == [
        (s.web2, "comment"), (s.mysql, "ack"), (s.disk, "recovery"), (s.web2, "open"), (s.web1, "open"),
        (s.mysql, "open"), (s.disk, "open")]
    ack = doc["history"][1]
    assert ack == {"event_id": s.mysql, "host": "db1.ladc1", "service": "Mysql", "site": "ladc1",
                   "ts": ack["ts"], "kind": "ack", "state": "WARNING", "status": 1,
                   "output": "Looking at the REPLICA", "author": "anna", "url": f"/event/{s.mysql}"}
    host_row = doc["history"][4]
    assert (host_row["service"], host_row["state"], host_row["site"]) == (None, "DOWN", "ladc1")
    assert abs(doc["history"][-1]["ts"] - (NOW - AGO["disk"])) < 1
    assert (doc["more"], doc["next"], doc["limit"], doc["offset"]) == (False, None, 100, 0)


def test_each_filter_alone(story: Story) -> None:
    s = story
    assert s.rows("?host=db1.ladc1") == [(s.mysql, "ack"), (s.disk, "recovery"), (s.mysql, "open"),
                                        (s.disk, "open")]
    assert s.rows("?host=web*") == [(s.web2, "comment"), (s.web2, "open"), (s.web1, "open")]
    assert s.rows("?host=web?.nydc1&host=web1.ladc1") == s.rows("?host=web*"), "repeated: either"
    assert s.rows("?service=Disk%20/") == [(s.web2, "comment"), (s.disk, "recovery"), (s.web2, "open"),
                                          (s.disk, "open")], "a service filter leaves the host's rows out"
    assert s.rows("?service=M*") == [(s.mysql, "ack"), (s.mysql, "open")]
    assert s.rows("?hostgroup=web") == s.rows("?host=web*")
    assert s.rows("?site=nydc1") == [(s.web2, "comment"), (s.web2, "open")]
    assert s.rows("?state=CRITICAL") == [(s.disk, "open")]
    assert s.rows("?state=down&state=unknown,ok") == [(s.web2, "comment"), (s.disk, "recovery"),
                                                      (s.web2, "open"), (s.web1, "open")]
    assert s.rows("?kind=open&kind=recovery") == [(s.disk, "recovery"), (s.web2, "open"), (s.web1, "open"),
                                                  (s.mysql, "open"), (s.disk, "open")]
    assert s.rows("?author=anna") == [(s.mysql, "ack")]
    assert s.rows("?author=bob") == [(s.web2, "comment")]
    assert s.rows("?text=replica") == [(s.mysql, "ack")], "a comment's text, ignoring case"
    assert s.rows("?text=" + urllib.parse.quote("%")) == [(s.web1, "open"), (s.disk, "open")], \
        "% is a character, not a wildcard"
    assert s.rows("?text=disk_2") == [(s.web2, "comment")] and s.rows("?text=slave_lag") == [], "so is _"
    assert s.rows("?text=<b>") == [(s.mysql, "open")]
    assert s.rows("?since=150m") == [(s.web2, "comment"), (s.mysql, "ack"), (s.disk, "recovery"),
                                     (s.web2, "open"), (s.web1, "open"), (s.mysql, "open")]
    assert s.rows(f"?until={NOW - 2.5 * 3600:.0f}") == [(s.disk, "open")]
    assert s.rows("?host=nothing*") == [], "a pattern that matches no host is no error"


def test_filters_together(story: Story) -> None:
    s = story
    assert s.rows("?site=ladc1&state=WARNING&kind=open") == [(s.mysql, "open")]
    assert s.rows("?hostgroup=web&site=ladc1") == [(s.web1, "open")], "both: the web host at ladc1"
    assert s.rows("?host=db1.ladc1&service=Disk%20/&since=4h&until=1h") == [(s.disk, "open")]
    assert s.rows("?hostgroup=web&host=db*") == [], "no host is both"
    assert s.rows("?site=nydc1&author=bob&text=REPLACED&kind=comment&state=UNKNOWN") == [(s.web2, "comment")]
    assert s.rows("?site=nydc1&author=anna") == []


def test_pages_follow_each_other(story: Story) -> None:
    first = story.c.get("/api/v1/history?site=ladc1&limit=2")
    assert first["more"] and first["next"] == "/api/v1/history?site=ladc1&limit=2&offset=2"
    second = story.c.get(first["next"])
    third = story.c.get(second["next"])
    assert third["more"] is False and third["next"] is None
    assert [(r["event_id"], r["kind"]) for doc in (first, second, third) for r in doc["history"]] == \
        story.rows("?site=ladc1")


@pytest.mark.parametrize(("query", "says"), [
    ("state=BROKEN", "state: 'BROKEN' is not a state"), ("kind=acked", "kind: 'acked' is not a kind"),
    ("since=yesterday", "since: 'yesterday' is not"), ("until=nan", "until: 'nan' is not"), ("since=1h&until=2h", "since must be before until"),
    ("since=1h&since=2h", "since: give it once"),
    ("limit=0", "limit: a whole number from 1 to 1,000"), ("limit=1001", "limit: a whole number"),
    ("offset=-1", "offset: a whole number from 0"), ("hostgroup=nope", "unknown host group 'nope'"),
    ("site=paris", "unknown site 'paris' (sites: ladc1, nydc1)"),
    ("host=db1", "unknown host 'db1': neither configured nor in the history (for part of a name, a pattern: *db1*)"),
    ("service=Load", "unknown service 'Load'"), ("hosts=db1.ladc1", "unknown parameter 'hosts'")])
def test_a_bad_filter_is_refused_with_what_is_wrong(story: Story, query: str, says: str) -> None:
    status, doc = story.c.call("GET", "/api/v1/history?" + query)
    assert status == 400 and says in doc["error"], (status, doc)


def test_checkd_history_prints_one_line_per_row(story: Story) -> None:
    s = story
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "checkd", "history", "--url", s.c.url, *args],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
    done = run("--host", "db*", "--since", "24h", "--state", "WARNING", "--limit", "1")
    acked = time.localtime(s.c.get("/api/v1/history?kind=ack")["history"][0]["ts"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{time.strftime('%Y-%m-%d %H:%M:%S', acked)} ack WARNING db1.ladc1/Mysql [ID#:{s.mysql}] by anna: "
        "Looking at the REPLICA", "… more: --offset 1"]
    assert run("--site", "nydc1", "--kind", "open").stdout.endswith(
        f"open UNKNOWN web2.nydc1/Disk / [ID#:{s.web2}]: no such device\n")
    assert run("--author", "nobody").stdout == "nothing in the history matches\n"
    bad = run("--since", "soon")
    assert bad.returncode == 1 and bad.stderr.startswith("checkd history: 400: since: 'soon' is not")


def test_the_history_page_lists_the_rows_and_keeps_its_filter(story: Story) -> None:
    s = story
    status, headers, page = http(s.c, "GET", "/history?host=db*&state=WARNING&kind=open&kind=ack&since=24h"
                                             "&text=&limit=50")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    rows = page.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == 2 and f'<a href="/event/{s.mysql}">#{s.mysql}</a>' in rows[0] and ">ack<" in rows[0]
    assert "slave lag 40s &lt;b&gt;" in rows[1] and "<b>" not in rows[1], "output is escaped"
    assert '<a href="/service/db1.ladc1/Mysql">db1.ladc1/Mysql</a>' in rows[0]
    assert '<input name="host" value="db*"' in page and '<input name="since" value="24h"' in page
    assert 'value="WARNING" checked' in page and 'value="CRITICAL">' in page
    assert "<option selected>open</option>" in page and "<option selected>ack</option>" in page
    assert "<option selected>50</option>" in page
    status, _, page = http(s.c, "GET", "/history?site=ladc1&limit=2&offset=2")
    assert 'href="/history?site=ladc1&amp;limit=2"' in page and \
        'href="/history?site=ladc1&amp;limit=2&amp;offset=4"' in page, "newer and older pages"
    status, _, page = http(s.c, "GET", "/history?host=%3Cscript%3E&since=later")
    assert status == 400 and "since: &#39;later&#39; is not" in page
    assert '<input name="host" value="&lt;script&gt;"' in page, "what was typed stays in the form, escaped"
    assert '<a class="navlink" href="/history">History</a>' in http(s.c, "GET", "/")[2], "linked from the header"
    assert 'href="/history?host=db1.ladc1&amp;service=Disk%20%2F" id="all-history"' in \
        http(s.c, "GET", "/service/db1.ladc1/Disk%20%2F")[2], "and from a check's page"


# --- the SQL on both stores -----------------------------------------------------------------

EVENTS = [(1, "db1.ladc1", "Disk /"), (2, "db1.ladc1", ""), (3, "web1.ladc1", "Disk /"), (4, "gone.ladc1", "HTTP")]
HISTORY = [(1, 100.0, "open", 2, "DISK CRITICAL 99%", None), (2, 110.0, "open", 1, "PING down", None),
           (3, 120.0, "open", 1, "disk WARNING", None), (1, 130.0, "ack", 2, "Ticket 42: Über disk", "anna"),
           (4, 140.0, "open", 2, "HTTP 503", None), (3, 150.0, "comment", 1, "50%_off", "bob"),
           (1, 160.0, "recovery", 0, "DISK OK", None)]


def _stored(db: Database) -> Database:
    async def fill() -> None:
        db.start()
        await db.write([("INSERT INTO events (id, host, service, opened, status, flapping, acknowledged, source) "
                         "VALUES (?,?,?,0,2,0,0,'central')", EVENTS), (INSERT_HISTORY, HISTORY)])
        db.stop()
    db.open()
    asyncio.run(fill())
    return db


SEARCHES = [history.Search(), history.Search(hosts=("db1.ladc1",)), history.Search(services=("Disk /",)),
            history.Search(hosts=("db1.ladc1", "web1.ladc1"), services=("Disk /",), since=110, until=160),
            history.Search(host_states=(1,), service_states=(2,)), history.Search(text="Über DISK"),
            history.Search(text="critical 9"), history.Search(text="%_"), history.Search(author="bob"),
            history.Search(kinds=("ack", "comment")), history.Search(limit=2, offset=2), history.Search(hosts=())]
ANSWERS = [[1, 3, 4, 1, 3, 2, 1], [1, 1, 2, 1], [1, 3, 1, 3, 1], [3, 1, 3], [4, 1, 2, 1], [1], [1], [3], [3],
           [3, 1], [4, 1], []]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_the_search_sql_gives_the_same_rows_on_both_stores_and_both_plans(
        store: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if store == "postgresql":
        from checkd.engine.pgdb import PostgresDatabase
        db: Database = PostgresDatabase(request.getfixturevalue("postgres_dsn"))
    else:
        db = SqliteDatabase(tmp_path / "central.sqlite")
    _stored(db)
    try:
        hosts, services = history.names(db)
        assert (sorted(hosts), sorted(services)) == (["db1.ladc1", "gone.ladc1", "web1.ladc1"], ["Disk /", "HTTP"])
        for plan in ("from the events", "from the newest row"):
            # FEW_EVENTS 0: even one check's rows are read from the time index down.
            monkeypatch.setattr(history, "FEW_EVENTS", 5000 if plan == "from the events" else 0)
            got = [history.search(db, s) for s in SEARCHES]
            assert [[r[0] for r in rows] for rows, _ in got] == ANSWERS, plan
            assert [more for _, more in got][:1] + [more for _, more in got][10:11] == [False, True]
        rows, _ = history.search(db, history.Search(kinds=("ack",)))
        assert rows == [(1, 130.0, "ack", 2, "Ticket 42: Über disk", "anna", "db1.ladc1", "Disk /")]
    finally:
        db.stop()
