"""Livestatus (docs/livestatus.md) against one real central: results posted by hand, then a
table of LQL queries over the unix socket with the exact answers (filters, regex, negation,
And/Or/Negate, lists, Stats with groups, Limit, csv/json/python, fixed16, AuthUser), the
errors (each a clear line, the connection closed, never a hang), KeepAlive, TCP from an
allowed address and a refused one, and external commands that show in /api/v1/history."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checkd.config import load_node
from checkd.config.errors import ConfigError
from tests.central_proc import CentralProc, result, write_config
from tests.helpers import REPO, free_port, wait_for

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$"
contacts:
  - {name: anna, email: anna@example.com}
  - {name: bob, email: bob@example.com}
contact_groups:
  - {name: dba, alias: Database people, members: [bob]}
hostgroups:
  - {name: web, alias: Web front ends, members: [web1.ladc1, web2.nydc1]}
hosts:
  - {name: db1.ladc1, address: 10.0.0.1, site: ladc1, contacts: [anna], vars: {rack: r12}}
  - {name: web1.ladc1, address: 10.0.0.2, site: ladc1, alias: Web one}
  - {name: web2.nydc1, address: 10.0.0.3, site: nydc1, contact_groups: [dba], parents: [web1.ladc1]}
  - {name: spare.nydc1, address: 10.0.0.4, site: nydc1}
services:
  - {hosts: [db1.ladc1, web2.nydc1], description: Disk /, command: "check_dummy!0", servicegroups: [disks]}
  - {host: db1.ladc1, description: Mysql, command: "check_dummy!0", contact_groups: [dba]}
  - {hosts: [web1.ladc1, web2.nydc1], description: HTTP, command: "check_dummy!0", interval: 1m}
"""
TCP_ALLOWED = "127.0.0.2"       # the only address allowed on TCP; the tests connect from it or from 127.0.0.1


class LiveSite:
    """The module's central with its results: db1 UP with Disk / CRITICAL and Mysql WARNING,
    web1 DOWN with HTTP CRITICAL, web2 all OK, spare.nydc1 never checked (no host check)."""

    def __init__(self, c: CentralProc, tcp_port: int):
        self.c, self.socket, self.tcp_port = c, c.dir / "live", tcp_port
        batch = [result(1, "db1.ladc1", "Disk /", 2, "DISK CRITICAL - 99% on /", perfdata="/=99%;80;90"),
                 result(2, "db1.ladc1", "Mysql", 1, "slave lag 40s"),
                 result(3, "web1.ladc1", None, 1, "PING CRITICAL - 100% loss"),
                 result(4, "web1.ladc1", "HTTP", 2, "connection refused"),
                 result(5, "db1.ladc1", None, 0, "PING OK")]
        assert c.post_results("poller-ladc1", batch)[1]["accepted"] == 5
        assert c.post_results("poller-nydc1", [result(1, "web2.nydc1", "Disk /", 0, "DISK OK"),
                                               result(2, "web2.nydc1", None, 0, "PING OK")])[1]["accepted"] == 2

    def ask(self, request: str, source: str | None = None, tcp: bool = False) -> bytes:
        """One request on a new connection; everything the server sends until it closes."""
        with self.connect(source, tcp) as s:
            s.sendall(request.encode())
            return read_all(s)

    def connect(self, source: str | None = None, tcp: bool = False) -> socket.socket:
        if tcp:
            s = socket.socket(socket.AF_INET)
            s.settimeout(10)
            s.bind((source or "127.0.0.1", 0))
            s.connect(("127.0.0.1", self.tcp_port))
        else:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(str(self.socket))
        return s


def read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def read_fixed16(s: socket.socket) -> tuple[int, bytes]:
    head = b""
    while len(head) < 16:
        chunk = s.recv(16 - len(head))
        assert chunk, f"closed after {head!r}"
        head += chunk
    assert head[3:4] == b" " and head[-1:] == b"\n" and len(head) == 16, head
    code, length = int(head[:3]), int(head[4:15])
    body = b""
    while len(body) < length:
        chunk = s.recv(length - len(body))
        assert chunk
        body += chunk
    return code, body


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    tcp_port = free_port()
    extra = (f"  livestatus: {{socket: live, mode: \"0600\", timeout: 1s, max_request: 20000,\n"
             f"               tcp: {{listen: \"127.0.0.1:{tcp_port}\", allow: [{TCP_ALLOWED}/32]}}}}\n")
    with CentralProc(tmp_path_factory.mktemp("livestatus"), objects=OBJECTS, extra=extra) as c:
        yield LiveSite(c, tcp_port)


SVC = "GET services\nColumns: host_name description state\n"
CASES = [
    # columns, filters on strings and numbers, regex, case, negation
    (SVC, "db1.ladc1;Disk /;2\nweb2.nydc1;Disk /;0\ndb1.ladc1;Mysql;1\nweb1.ladc1;HTTP;2\nweb2.nydc1;HTTP;0\n"),
    (SVC + "Filter: state != 0\n", "db1.ladc1;Disk /;2\ndb1.ladc1;Mysql;1\nweb1.ladc1;HTTP;2\n"),
    (SVC + "Filter: state >= 2\n", "db1.ladc1;Disk /;2\nweb1.ladc1;HTTP;2\n"),
    (SVC + "Filter: description = Disk /\n", "db1.ladc1;Disk /;2\nweb2.nydc1;Disk /;0\n"),
    (SVC + "Filter: description ~ ^M\n", "db1.ladc1;Mysql;1\n"),
    (SVC + "Filter: description ~~ ^m\n", "db1.ladc1;Mysql;1\n"),
    (SVC + "Filter: description =~ http\n", "web1.ladc1;HTTP;2\nweb2.nydc1;HTTP;0\n"),
    (SVC + "Filter: host_name !~ ^web\n", "db1.ladc1;Disk /;2\ndb1.ladc1;Mysql;1\n"),
    (SVC + "Filter: host_name !=~ DB1.LADC1\nFilter: state = 0\n", "web2.nydc1;Disk /;0\nweb2.nydc1;HTTP;0\n"),
    (SVC + "Filter: state = 2\nFilter: state = 1\nOr: 2\nFilter: host_name = db1.ladc1\nAnd: 2\n",
     "db1.ladc1;Disk /;2\ndb1.ladc1;Mysql;1\n"),
    (SVC + "Filter: host_name = web2.nydc1\nNegate:\nFilter: state = 0\nAnd: 2\n", ""),
    (SVC + "Filter: host_state = 1\n", "web1.ladc1;HTTP;2\n"),
    (SVC + "Filter: host_name = web2.nydc1\nFilter: host_name = db1.ladc1\nOr: 2\n",
     "db1.ladc1;Disk /;2\nweb2.nydc1;Disk /;0\ndb1.ladc1;Mysql;1\nweb2.nydc1;HTTP;0\n"),
    (SVC + "Filter: host_name = web2.nydc1\nFilter: state = 0\nFilter: host_name = db1.ladc1\nOr: 2\nAnd: 2\n",
     "web2.nydc1;Disk /;0\nweb2.nydc1;HTTP;0\n"),
    ("GET hosts\nColumns: name\nFilter: name = web2.nydc1\nFilter: host_name = db1.ladc1\nOr: 2\n",
     "db1.ladc1\nweb2.nydc1\n"),
    ("GET services\nColumns: service_description service_state\nFilter: host_name = db1.ladc1\n"
     "Filter: service_description = Disk /\nAnd: 2\n", "Disk /;2\n"),
    ("GET hosts\nColumns: host_name host_state\nFilter: host_address = 10.0.0.2\n", "web1.ladc1;1\n"),
    (SVC + "Filter: perf_data ~ 99%\n", "db1.ladc1;Disk /;2\n"),
    (SVC + "Limit: 2\n", "db1.ladc1;Disk /;2\nweb2.nydc1;Disk /;0\n"),
    (SVC + "Filter: state != 0\nLimit: 1\n", "db1.ladc1;Disk /;2\n"),
    # list columns: contains, not contains, empty
    ("GET hosts\nColumns: name\nFilter: contacts >= anna\n", "db1.ladc1\n"),
    ("GET hosts\nColumns: name\nFilter: contacts < anna\n", "web1.ladc1\nweb2.nydc1\nspare.nydc1\n"),
    ("GET hosts\nColumns: name parents\nFilter: parents !=\n", "web2.nydc1;web1.ladc1\n"),
    ("GET hosts\nColumns: name\nFilter: contacts =\n", "web1.ladc1\nspare.nydc1\n"),
    ("GET services\nColumns: host_name description groups contact_groups\nFilter: groups >= disks\n",
     "db1.ladc1;Disk /;disks;\nweb2.nydc1;Disk /;disks;\n"),
    ("GET hostgroups\nColumns: name alias members num_hosts num_hosts_down worst_service_state\n",
     "web;Web front ends;web1.ladc1,web2.nydc1;2;1;2\n"),
    ("GET servicegroups\nColumns: name members num_services_crit\n",
     "disks;db1.ladc1|Disk /,web2.nydc1|Disk /;1\n"),
    ("GET hosts\nColumns: name state has_been_checked num_services num_services_crit worst_service_state "
     "custom_variable_names custom_variable_values address alias\n",
     "db1.ladc1;0;1;2;1;2;rack;r12;10.0.0.1;db1.ladc1\nweb1.ladc1;1;1;1;1;2;;;10.0.0.2;Web one\n"
     "web2.nydc1;0;1;2;0;0;;;10.0.0.3;web2.nydc1\nspare.nydc1;0;1;0;0;0;;;10.0.0.4;spare.nydc1\n"),
    ("GET contacts\nColumns: name email\n", "anna;anna@example.com\nbob;bob@example.com\n"),
    ("GET contactgroups\nColumns: name alias members\n", "dba;Database people;bob\n"),
    ("GET services\nColumns: host_name description acknowledged scheduled_downtime_depth notifications_enabled "
     "state_type current_attempt\nFilter: host_name = db1.ladc1\n",
     "db1.ladc1;Disk /;0;0;1;1;1\ndb1.ladc1;Mysql;0;0;1;1;1\n"),
    # Stats: counts, aggregates, StatsAnd/Or/Negate, grouping by Columns
    ("GET services\nStats: state = 0\nStats: state = 1\nStats: state = 2\nStats: state = 3\n",
     "2;1;2;0\n"),
    ("GET services\nStats: state = 2\nStats: host_state = 1\nStatsAnd: 2\nStats: state = 0\nStatsNegate:\n"
     "Stats: sum state\nStats: max state\nStats: avg state\n", "1;3;5;2;1\n"),
    ("GET services\nColumns: host_name\nStats: state != 0\nStats: state = 1\nStats: state = 2\nStatsOr: 2\n",
     "db1.ladc1;2;2\nweb1.ladc1;1;1\nweb2.nydc1;0;0\n"),
    ("GET services\nFilter: host_name = nothing\nStats: state = 0\nStats: sum state\nColumnHeaders: on\n",
     "stats_1;stats_2\n0;0\n"),
    ("GET hosts\nColumns: state\nStats: state >= 0\nOutputFormat: json\n", '[[0,3],\n[1,1]]\n'),
    # output formats, headers, separators
    ("GET hosts\nColumns: name state contacts\nOutputFormat: json\nFilter: name ~ ^db\n",
     '[["db1.ladc1",0,["anna"]]]\n'),
    ("GET hosts\nColumns: name state contacts\nOutputFormat: python\nFilter: name ~ ^db\nColumnHeaders: on\n",
     '[["name","state","contacts"],\n["db1.ladc1",0,["anna"]]]\n'),
    ("GET hosts\nColumns: name\nOutputFormat: json\nFilter: name = nothing\n", "[]\n"),
    ("GET servicegroups\nColumns: name members\nSeparators: 10 124 59 47\n",
     "disks|db1.ladc1/Disk /;web2.nydc1/Disk /\n"),
    ("GET hosts\nColumns: name\nFilter: name = db1.ladc1\nResponseHeader: fixed16\n", "200          10\ndb1.ladc1\n"),
    # AuthUser: a contact sees its hosts and the services of its own and of its hosts
    ("GET hosts\nColumns: name\nAuthUser: anna\n", "db1.ladc1\n"),
    (SVC + "AuthUser: anna\n", "db1.ladc1;Disk /;2\ndb1.ladc1;Mysql;1\n"),
    (SVC + "AuthUser: bob\n", "web2.nydc1;Disk /;0\ndb1.ladc1;Mysql;1\nweb2.nydc1;HTTP;0\n"),
    ("GET hostgroups\nColumns: name members\nAuthUser: bob\n", "web;web2.nydc1\n"),
    (SVC + "AuthUser: nobody\n", ""),
    # errors: a line saying what is wrong (the fixed16 status code), then the server closes
    ("GET nosuch\nResponseHeader: fixed16\n", "404 no table 'nosuch'; tables: columns, comments, contactgroups, "
     "contacts, downtimes, hostgroups, hosts, log, servicegroups, services, status\n"),
    ("GET hosts\nColumns: name colour\nResponseHeader: fixed16\n",
     "404 table 'hosts' has no column 'colour' (GET columns lists them)\n"),
    ("GET hosts\nFilter: colour = red\nResponseHeader: fixed16\n",
     "404 table 'hosts' has no column 'colour' (GET columns lists them)\n"),
    ("GET hosts\nFilter: state\nResponseHeader: fixed16\n", "400 line 2: bad filter 'state': expected `column "
     "operator value`, operators = ~ =~ ~~ < > <= >= (! before one negates it)\n"),
    ("GET hosts\nFilter: state ?? 1\nResponseHeader: fixed16\n", "400 line 2: bad filter 'state ?? 1': expected "
     "`column operator value`, operators = ~ =~ ~~ < > <= >= (! before one negates it)\n"),
    ("GET hosts\nFilter: state = up\nResponseHeader: fixed16\n",
     "400 column 'state' is a number (int): cannot compare with 'up'\n"),
    ("GET hosts\nFilter: name ~ [db\nResponseHeader: fixed16\n",
     "400 invalid regular expression '[db': unterminated character set at position 0\n"),
    ("GET hosts\nFilter: name = a\nOr: 2\nResponseHeader: fixed16\n",
     "400 Or: 2 needs that many Filter lines before it, there are 1\n"),
    ("GET hosts\nStats: sum name\nResponseHeader: fixed16\n",
     "400 Stats: sum needs a number column, 'name' is a string\n"),
    ("GET hosts\nColor: red\nResponseHeader: fixed16\n",
     "400 line 2: unknown header 'Color' (docs/livestatus.md lists those supported)\n"),
    ("GET hosts\nLimit: ten\nResponseHeader: fixed16\n", "400 line 2: Limit: expected a number, got 'ten'\n"),
    ("PUT hosts\nResponseHeader: fixed16\n",
     "452 unknown request 'PUT hosts': expected `GET table` or `COMMAND [timestamp] ...`\n"),
    ("GET hosts\nColumns: name\nFilter: name = x\nResponseHeader: fixed16\n" + "Filter: name = y\n" * 1500,
     "413 request larger than 20000 bytes\n"),
]


def _fixed16_text(raw: bytes) -> str:
    """`404 message` from a fixed16 answer, checking the header's length is the body's."""
    code, length = int(raw[:3]), int(raw[4:15])
    assert len(raw) == 16 + length, raw
    return f"{code:03d} {raw[16:].decode()}"


@pytest.mark.parametrize("request_text, answer", CASES, ids=[c[0].replace("\n", " | ")[:80] for c in CASES])
def test_query_answers(site: LiveSite, request_text: str, answer: str) -> None:
    raw = site.ask(request_text + "\n")       # a request waiting for more would get 451 after 1 s
    got = _fixed16_text(raw) if "fixed16" in request_text and not answer.startswith("200 ") else raw.decode()
    assert got == answer


def test_the_same_answers_over_tcp(site: LiveSite) -> None:
    for request_text, answer in CASES[:30]:
        assert site.ask(request_text + "\n", source=TCP_ALLOWED, tcp=True).decode() == answer, request_text


def test_all_columns_with_headers_as_nagstamon_asks(site: LiveSite) -> None:
    raw = site.ask("GET services\nOutputFormat: json\nColumnHeaders: on\nFilter: state != 0\n\n")
    rows = json.loads(raw)
    head = rows[0]
    named = [dict(zip(head, r)) for r in rows[1:]]
    assert [(r["host_name"], r["display_name"], r["state"]) for r in named] == [
        ("db1.ladc1", "Disk /", 2), ("db1.ladc1", "Mysql", 1), ("web1.ladc1", "HTTP", 2)]
    disk = named[0]
    assert disk["plugin_output"] == "DISK CRITICAL - 99% on /" and disk["perf_data"] == "/=99%;80;90"
    assert abs(disk["last_check"] - time.time()) < 60 and type(disk["last_check"]) is int
    assert (disk["host_state"], disk["host_plugin_output"], disk["host_address"]) == (0, "PING OK", "10.0.0.1")
    assert disk["event_id"] > 0 and disk["host_contacts"] == ["anna"] and disk["contacts"] == []
    assert disk["host_custom_variables"] == {"rack": "r12"}
    assert type(disk["staleness"]) is float and disk["staleness"] < 1.5
    nothing = json.loads(site.ask("GET hosts\nOutputFormat: json\nColumnHeaders: on\nFilter: state = 2\n\n"))
    assert len(nothing) == 1 and nothing[0][:2] == ["state", "state_type"], "no rows: still the header row"
    columns = json.loads(site.ask("GET columns\nColumns: name type\nFilter: table = services\nOutputFormat: json\n\n"))
    assert [c[0] for c in columns] == head and ["state", "int"] in columns and ["contacts", "list"] in columns


@pytest.mark.parametrize("table", ["hosts", "services", "hostgroups", "servicegroups", "contacts", "contactgroups",
                                   "comments", "downtimes", "log", "status", "columns"])
def test_every_table_answers_all_its_columns(site: LiveSite, table: str) -> None:
    rows = json.loads(site.ask(f"GET {table}\nOutputFormat: json\n\n"))
    names = json.loads(site.ask(f"GET columns\nColumns: name\nFilter: table = {table}\nOutputFormat: json\n\n"))
    assert rows[0] == [n for n, in names] and all(len(r) == len(rows[0]) for r in rows)
    assert len(rows) > 1 or table in ("comments", "downtimes")


def test_keepalive_answers_several_queries_on_one_connection(site: LiveSite) -> None:
    with site.connect() as s:
        s.sendall(b"GET hosts\nColumns: name\nFilter: state = 1\nOutputFormat: json\nKeepAlive: on\n"
                  b"ResponseHeader: fixed16\n\n")
        assert read_fixed16(s) == (200, b'[["web1.ladc1"]]\n')
        s.sendall(b"GET hosts\nColumns: nope\nKeepAlive: on\nResponseHeader: fixed16\n\n")
        code, body = read_fixed16(s)
        assert code == 404 and b"no column 'nope'" in body, "an error keeps a keep-alive connection open"
        s.sendall(b"GET status\nColumns: num_hosts num_services\nResponseHeader: fixed16\n\n")
        assert read_fixed16(s) == (200, b"4;5\n")
        assert s.recv(10) == b"", "closed after a request without KeepAlive"


def test_a_silent_or_unfinished_client_is_told_and_dropped(site: LiveSite) -> None:
    with site.connect() as s:
        s.sendall(b"GET hosts\nColumns: name\n")         # no empty line, connection left open
        t0 = time.monotonic()
        code, body = read_fixed16(s)
        assert code == 451 and b"incomplete request" in body and 0.8 < time.monotonic() - t0 < 10
        assert s.recv(10) == b""
    with site.connect() as s:                           # connects and says nothing
        t0 = time.monotonic()
        assert s.recv(10) == b"" and 0.8 < time.monotonic() - t0 < 10


def test_tcp_serves_the_allowlist_and_refuses_others(site: LiveSite) -> None:
    assert site.ask("GET hosts\nColumns: name\nLimit: 1\n\n", source=TCP_ALLOWED, tcp=True) == b"db1.ladc1\n"
    refused = site.ask("GET hosts\n\n", source="127.0.0.1", tcp=True)
    assert refused == b"403 livestatus: 127.0.0.1 is not allowed to connect\n"
    assert "refused TCP connection from 127.0.0.1 (not in livestatus: tcp: allow)" in site.c.log.read_text()
    assert oct(site.socket.stat().st_mode & 0o777) == "0o600"


def test_a_reload_that_changes_livestatus_is_refused_and_the_socket_stays(site: LiveSite) -> None:
    node = site.c.config
    before = node.read_text()
    try:
        node.write_text(before.replace('mode: "0600"', 'mode: "0666"'))
        assert site.c.proc is not None
        os.kill(site.c.proc.pid, signal.SIGHUP)
        wait_for(lambda: "livestatus changed, which needs a restart" in site.c.log.read_text(), 10, "the refusal")
    finally:
        node.write_text(before)
    assert oct(site.socket.stat().st_mode & 0o777) == "0o600"
    assert site.ask("GET hosts\nColumns: name\nLimit: 1\n\n") == b"db1.ladc1\n"


def history(site: LiveSite, host: str, service: str) -> list[tuple[str, str, str]]:
    doc = site.c.get(f"/api/v1/history?host={host}&service={service.replace(' ', '%20')}")
    return [(r["kind"], r["author"] or "", r["output"]) for r in reversed(doc["history"]) if r["author"]]


def test_commands_act_like_the_api_and_show_in_the_history(site: LiveSite) -> None:
    now = int(time.time())

    def command(line: str, auth: str = "") -> bytes:
        return site.ask(f"COMMAND [{now}] {line}\n" + (f"AuthUser: {auth}\n" if auth else "") + "\n")

    def row(host: str, service: str, columns: str) -> str:
        return site.ask(f"GET services\nColumns: {columns}\nFilter: host_name = {host}\n"
                        f"Filter: description = {service}\n\n").decode().strip()

    assert command("ACKNOWLEDGE_SVC_PROBLEM;db1.ladc1;Disk /;2;1;1;anna;replacing the disk; today") == b""
    assert row("db1.ladc1", "Disk /", "acknowledged acknowledgement_type") == "1;2"
    assert command(f"SCHEDULE_SVC_DOWNTIME;db1.ladc1;Mysql;{now - 10};{now + 3600};1;0;0;bob;upgrade") == b""
    assert row("db1.ladc1", "Mysql", "scheduled_downtime_depth") == "1"
    downtimes = site.ask("GET downtimes\nColumns: id host_name service_description author comment fixed "
                         "service_state\nOutputFormat: json\n\n")
    (did, *rest), = json.loads(downtimes)
    assert rest == ["db1.ladc1", "Mysql", "bob", "upgrade", 1, 1]
    assert command("DISABLE_SVC_NOTIFICATIONS;web1.ladc1;HTTP", auth="anna") == b""
    assert row("web1.ladc1", "HTTP", "notifications_enabled") == "0"
    assert command(f"SCHEDULE_FORCED_SVC_CHECK;web1.ladc1;HTTP;{now}") == b""
    assert command("ENABLE_SVC_NOTIFICATIONS;web1.ladc1;HTTP", auth="anna") == b""
    assert command(f"DEL_SVC_DOWNTIME;{did}") == b""
    assert row("db1.ladc1", "Mysql", "scheduled_downtime_depth downtimes") == "0;"
    assert command("REMOVE_SVC_ACKNOWLEDGEMENT;db1.ladc1;Disk /", auth="bob") == b""
    assert row("db1.ladc1", "Disk /", "acknowledged") == "0"
    assert command("ADD_SVC_COMMENT;web1.ladc1;HTTP;1;carl;see ticket 42") == b""
    comments = site.ask("GET comments\nColumns: host_name service_description author comment\n"
                        "Filter: comment = see ticket 42\n\n")
    assert comments == b"web1.ladc1;HTTP;carl;see ticket 42\n"

    assert history(site, "db1.ladc1", "Disk /") == [
        ("ack", "anna", "replacing the disk; today"), ("unack", "bob", "")]
    assert [h[:2] for h in history(site, "db1.ladc1", "Mysql")] == [
        ("downtime", "bob"), ("downtime_deleted", "livestatus")]
    assert history(site, "web1.ladc1", "HTTP") == [
        ("notifications_disabled", "anna", "notifications disabled"),
        ("resched", "livestatus", "check requested from poller-ladc1"),
        ("notifications_enabled", "anna", "notifications enabled"),
        ("comment", "carl", "see ticket 42")]
    log = json.loads(site.ask("GET log\nColumns: type host_name service_description contact_name\n"
                              f"Filter: time >= {now - 60}\nFilter: class = 5\nLimit: 1\nOutputFormat: json\n\n"))
    assert log == [["SERVICE COMMENT", "web1.ladc1", "HTTP", "carl"]], "newest first"


@pytest.mark.parametrize("line, answer", [
    ("ACKNOWLEDGE_SVC_PROBLEM;web2.nydc1;Disk /;2;1;1;anna;ok?", "400 web2.nydc1/Disk / has no problem to acknowledge"),
    ("ACKNOWLEDGE_SVC_PROBLEM;nosuch;Disk /;2;1;1;anna;x", "404 unknown host 'nosuch'"),
    ("DISABLE_SVC_NOTIFICATIONS;db1.ladc1", "400 DISABLE_SVC_NOTIFICATIONS takes 2 arguments separated by ';', got 1"),
    ("DEL_HOST_DOWNTIME;999", "400 no host downtime 999"),
    ("SHUTDOWN_PROGRAM", "400 command SHUTDOWN_PROGRAM is not supported"),
])
def test_a_command_that_cannot_be_done_says_why(site: LiveSite, line: str, answer: str) -> None:
    raw = site.ask(f"COMMAND [{int(time.time())}] {line}\nResponseHeader: fixed16\n\n")
    assert _fixed16_text(raw).startswith(answer.replace("400 no host", "404 no host"))


@pytest.mark.parametrize("section, message", [
    ('livestatus: {socket: live, mode: "rw"}', ':10: livestatus: mode: expected octal permissions such as "0660"'),
    ('livestatus: {socket: live, group: no-such-group-here}', ":10: livestatus: group: no group"),
    ('livestatus: {tcp: {listen: "127.0.0.1:6557"}}', ":10: livestatus: tcp: allow: list the addresses"),
    ('livestatus: {tcp: {listen: "127.0.0.1:6557", allow: [10.0.0.0/33]}}',
     ":10: livestatus: tcp: allow: '10.0.0.0/33'"),
    ('livestatus: {sockett: live}', ":10: unknown key 'sockett' in livestatus"),
])
def test_config_errors_name_the_line(tmp_path: Path, section: str, message: str) -> None:
    node = write_config(tmp_path, free_port(), objects=OBJECTS, extra=f"  {section}\n")
    with pytest.raises(ConfigError) as e:
        load_node(node)
    assert f"{node}{message}" in str(e.value)


def test_the_standby_of_a_pair_names_the_active_one_then_answers_once_active(tmp_path: Path,
                                                                            postgres_dsn: str) -> None:
    extra = f'  store: postgresql\n  postgresql: {{dsn: "{postgres_dsn}"}}\n  livestatus: {{socket: live}}\n'
    a = CentralProc(tmp_path / "a", objects=OBJECTS, extra=extra)
    b = CentralProc(tmp_path / "b", objects=OBJECTS, extra=extra)
    query = "GET status\nColumns: num_hosts\nResponseHeader: fixed16\n\n"

    def ask(c: CentralProc) -> bytes:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(c.dir / "live"))
            s.sendall(query.encode())
            return read_all(s)
    try:
        a.start()
        b.start(standby=True)
        assert ask(a) == b"200           2\n4\n"
        answer = f"this central is the standby; the active central is {a.url}\n"
        assert ask(b) == f"503 {len(answer):11d}\n{answer}".encode()
        a.stop()                                        # a clean stop hands the lease over at once
        wait_for(lambda: ask(b).startswith(b"200"), 30, "the standby answering as the active")
        assert ask(b) == b"200           2\n4\n"
    finally:
        a.stop()
        b.stop()


def test_a_socket_that_cannot_be_made_stops_central_with_one_line(tmp_path: Path) -> None:
    node = write_config(tmp_path, free_port(), objects=OBJECTS, extra="  livestatus: {socket: nodir/live}\n")
    run = subprocess.run([sys.executable, "-m", "checkd", "central", "-c", str(node)], cwd=REPO, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert run.returncode == 1
    assert f"CRITICAL central.main: livestatus: cannot open the socket {tmp_path}/nodir/live: No such file or " \
           "directory" in run.stderr + run.stdout


def test_a_second_central_on_the_same_socket_stops_and_the_first_keeps_answering(site: LiveSite,
                                                                                 tmp_path: Path) -> None:
    """Two centrals on one machine given one socket path: the second must not take it over."""
    node = write_config(tmp_path, free_port(), objects=OBJECTS, extra=f"  livestatus: {{socket: {site.socket}}}\n")
    run = subprocess.run([sys.executable, "-m", "checkd", "central", "-c", str(node)], cwd=REPO, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert run.returncode == 1
    assert f"livestatus: another process answers on the socket {site.socket}" in run.stderr + run.stdout
    assert site.ask("GET hosts\nColumns: name\nFilter: name = db1.ladc1\n\n") == b"db1.ladc1\n"


def test_config_reads_an_unquoted_octal_mode(tmp_path: Path) -> None:
    node = write_config(tmp_path, free_port(), objects=OBJECTS, extra="  livestatus: {socket: live, mode: 0640}\n")
    ls = load_node(node)[0].livestatus
    assert ls is not None and ls.mode == 0o640 and ls.socket == tmp_path / "live" and ls.listen is None
