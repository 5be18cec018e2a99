"""Every API endpoint, the CLI thin clients and kill -9 recovery, against a real central process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.central_proc import API_TOKEN, POLLER_TOKENS, CentralProc, result
from tests.helpers import REPO

DISK = ("db1.ladc1", "Disk /")
MYSQL = ("db1.ladc1", "Mysql Health Slave Check")


@pytest.fixture
def central(tmp_path: Path) -> Iterator[CentralProc]:
    with CentralProc(tmp_path) as c:
        yield c


def open_problem(c: CentralProc, seq: int, host: str, svc: str | None, status: int = 2) -> int:
    c.post_results("poller-ladc1", [result(seq, host, svc, status, f"{svc} broken")])
    return next(p["id"] for p in c.get("/api/v1/problems")["problems"] if (p["host"], p["service"]) == (host, svc))


def test_status_lists_pollers_hosts_and_services(central: CentralProc) -> None:
    central.post_results("poller-ladc1", [result(1, *DISK, 1, "warn", perfdata="used=91%;90;95")])
    doc = central.get("/api/v1/status")
    pollers = {p["name"]: p for p in doc["pollers"]}
    assert pollers["poller-ladc1"]["connected"] and pollers["poller-nydc1"]["stale"]
    assert pollers["poller-nydc1"]["site"] == "nydc1" and pollers["poller-ladc1"]["takeover"] is False
    assert {h["host"] for h in doc["hosts"]} == {"db1.ladc1", "web1.ladc1", "web2.nydc1"}
    (s,) = [s for s in doc["services"] if (s["host"], s["service"]) == DISK]
    assert (s["state"], s["status"], s["state_type"], s["attempt"], s["perfdata"], s["polled_by"]) == \
        ("WARNING", 1, "HARD", 1, "used=91%;90;95", "poller-ladc1")
    assert s["event_id"] and s["acknowledged"] is False and s["muted"] is False
    assert central.call("GET", "/api/v1/status?host=nosuch")[0] == 404


def test_problems_newest_first(central: CentralProc) -> None:
    a = open_problem(central, 1, *DISK)
    time.sleep(0.01)
    b = open_problem(central, 2, *MYSQL)
    assert [p["id"] for p in central.get("/api/v1/problems")["problems"]] == [b, a]
    assert b > a


def test_event_ids_unknown_and_malformed(central: CentralProc) -> None:
    assert central.call("GET", "/api/v1/events/999999")[0] == 404
    assert central.call("GET", "/api/v1/events/abc")[0] == 400


def test_ack_needs_a_token_and_marks_the_event(central: CentralProc) -> None:
    eid = open_problem(central, 1, *DISK)
    assert central.call("POST", "/api/v1/ack", {"event_id": eid})[0] == 401
    assert central.call("POST", "/api/v1/ack", {"event_id": eid}, token="tok-ladc1")[0] == 401
    status, ans = central.write("POST", "/api/v1/ack", {"event_id": eid, "comment": "on it", "author": "anna"})
    assert status == 200 and ans["author"] == "anna"
    (p,) = central.get("/api/v1/problems")["problems"]
    assert p["acknowledged"] and p["ack_comment"] == "on it"
    assert central.get(f"/api/v1/events/{eid}")["history"][-1]["kind"] == "ack"
    assert central.write("POST", "/api/v1/ack", {"event_id": 424242})[0] == 404
    assert central.write("POST", "/api/v1/ack", {"event_id": "x"})[0] == 400


def test_reschedule_is_delivered_in_the_next_heartbeat_answer(central: CentralProc) -> None:
    eid = open_problem(central, 1, *DISK)
    status, ans = central.write("POST", "/api/v1/reschedule", {"host": MYSQL[0], "service": MYSQL[1]})
    assert status == 200 and ans["pollers"] == ["poller-ladc1"]
    central.write("POST", "/api/v1/reschedule", {"event_id": eid})
    _, hb = central.call("POST", "/api/v1/heartbeat", {"poller": "poller-ladc1"}, token="tok-ladc1")
    assert hb["commands"] == [{"type": "reschedule", "host": MYSQL[0], "service": MYSQL[1]},
                              {"type": "reschedule", "host": DISK[0], "service": DISK[1]}]
    _, hb = central.call("POST", "/api/v1/heartbeat", {"poller": "poller-ladc1"}, token="tok-ladc1")
    assert hb["commands"] == []           # delivered once
    central.write("POST", "/api/v1/reschedule", {"host": "web2.nydc1", "service": None})
    _, ans = central.post_results("poller-nydc1", [])
    assert ans["commands"] == [{"type": "reschedule", "host": "web2.nydc1", "service": None}]
    assert central.write("POST", "/api/v1/reschedule", {"host": "nosuch"})[0] == 404


def test_notifications_disable_with_duration_and_enable(central: CentralProc) -> None:
    eid = open_problem(central, 1, *DISK)
    status, ans = central.write("POST", "/api/v1/notifications",
                                {"host": DISK[0], "service": DISK[1], "enabled": False, "duration": "1h"})
    assert status == 200 and ans["until"] > time.time() + 3500
    assert central.get("/api/v1/problems")["problems"][0]["muted"]
    central.write("POST", "/api/v1/notifications", {"host": DISK[0], "service": DISK[1], "enabled": True})
    assert not central.get("/api/v1/problems")["problems"][0]["muted"]
    central.write("POST", "/api/v1/notifications", {"host": DISK[0], "enabled": False})   # whole host
    assert central.get(f"/api/v1/events/{eid}")["muted"]
    assert central.write("POST", "/api/v1/notifications", {"host": DISK[0], "enabled": "no"})[0] == 400


def test_notifications_by_event_id_name_that_events_check_even_after_recovery(central: CentralProc) -> None:
    eid = open_problem(central, 1, *DISK)
    status, ans = central.write("POST", "/api/v1/notifications", {"event_id": eid, "enabled": False,
                                                                  "duration": "2h"})
    assert status == 200 and (ans["host"], ans["service"]) == DISK and ans["until"] > time.time() + 7100
    assert central.get("/api/v1/problems")["problems"][0]["muted"]
    central.post_results("poller-ladc1", [result(2, *DISK, 0, "ok")])        # recovered: the ID still names it
    status, ans = central.write("POST", "/api/v1/notifications", {"event_id": eid, "enabled": True})
    assert status == 200 and (ans["host"], ans["service"], ans["until"]) == (*DISK, None)
    disk = next(s for s in central.get("/api/v1/status?host=db1.ladc1")["services"] if s["service"] == DISK[1])
    assert disk["muted"] is False
    host_event = open_problem(central, 3, "web1.ladc1", None, 1)
    status, ans = central.write("POST", "/api/v1/notifications", {"event_id": host_event, "enabled": False})
    assert status == 200 and (ans["host"], ans["service"]) == ("web1.ladc1", None)   # the host and its services
    st, doc = central.write("POST", "/api/v1/notifications", {"event_id": 987654, "enabled": False})
    assert st == 404 and "no event 987654" in doc["error"]
    assert central.write("POST", "/api/v1/notifications", {"event_id": "5", "enabled": False})[0] == 400


def test_downtimes_add_list_delete(central: CentralProc) -> None:
    status, dt = central.write("POST", "/api/v1/downtimes",
                               {"host": DISK[0], "service": DISK[1], "duration": "2h", "comment": "disk swap"})
    assert status == 201 and dt["end"] - dt["start"] == pytest.approx(7200)
    open_problem(central, 1, *DISK)
    assert central.get("/api/v1/problems")["problems"][0]["muted"]
    assert [d["id"] for d in central.get("/api/v1/downtimes")["downtimes"]] == [dt["id"]]
    assert central.call("DELETE", f"/api/v1/downtimes/{dt['id']}")[0] == 401
    assert central.write("DELETE", f"/api/v1/downtimes/{dt['id']}")[0] == 200
    assert central.get("/api/v1/downtimes")["downtimes"] == []
    assert not central.get("/api/v1/problems")["problems"][0]["muted"]
    assert central.write("DELETE", f"/api/v1/downtimes/{dt['id']}")[0] == 404
    assert central.write("POST", "/api/v1/downtimes", {"host": DISK[0]})[0] == 400


def test_host_down_links_its_services_problems(central: CentralProc) -> None:
    svc = open_problem(central, 1, *DISK)
    host = open_problem(central, 2, "db1.ladc1", None, status=1)
    mysql = open_problem(central, 3, *MYSQL)
    problems = {p["id"]: p for p in central.get("/api/v1/problems")["problems"]}
    assert problems[host]["state"] == "DOWN" and not problems[host]["suppressed"]
    assert problems[svc]["parent_id"] == host and problems[svc]["suppressed"]
    assert problems[mysql]["parent_id"] == host and problems[mysql]["suppressed"]
    central.post_results("poller-ladc1", [result(4, "db1.ladc1", None, 0)])
    assert not {p["id"]: p for p in central.get("/api/v1/problems")["problems"]}[svc]["suppressed"]


def test_flapping_is_recorded_in_the_event(central: CentralProc) -> None:
    eid = open_problem(central, 1, *DISK)
    central.post_results("poller-ladc1", [result(2, *DISK, 2, flapping=True)])
    assert central.get("/api/v1/problems")["problems"][0]["flapping"]
    assert central.get(f"/api/v1/events/{eid}")["history"][-1]["kind"] == "flapping_start"


def test_poller_id_blocks_are_unique_and_adopted(central: CentralProc) -> None:
    status, block = central.call("POST", "/api/v1/ids/reserve", {"count": 10}, token="tok-ladc1")
    assert status == 200 and block["last"] - block["first"] == 9
    _, other = central.call("POST", "/api/v1/ids/reserve", {"count": 10}, token="tok-nydc1")
    assert other["first"] > block["last"]
    central.post_results("poller-ladc1", [result(1, *DISK, 2, event_id=block["first"])])
    (p,) = central.get("/api/v1/problems")["problems"]
    assert (p["id"], p["source"]) == (block["first"], "poller-ladc1")
    # An ID outside the poller's blocks is not adopted: central allocates its own, above every block.
    central.post_results("poller-ladc1", [result(2, *MYSQL, 2, event_id=other["first"])])
    mine = next(p for p in central.get("/api/v1/problems")["problems"] if p["service"] == MYSQL[1])
    assert mine["source"] == "central" and mine["id"] > other["last"]
    assert central.call("POST", "/api/v1/ids/reserve", {"count": 0}, token="tok-ladc1")[0] == 400


def test_kill_9_restart_keeps_everything_and_ids_keep_rising(central: CentralProc) -> None:
    e1 = open_problem(central, 1, *DISK)
    e2 = open_problem(central, 2, *MYSQL)
    central.write("POST", "/api/v1/ack", {"event_id": e1, "comment": "known"})
    central.write("POST", "/api/v1/downtimes", {"host": "web1.ladc1", "duration": "1h", "comment": "rack move"})
    central.write("POST", "/api/v1/notifications", {"host": "web2.nydc1", "enabled": False})
    before = central.get("/api/v1/status")
    central.restart(kill=True)
    after = central.get("/api/v1/status")
    assert after["services"] == before["services"] and after["hosts"] == before["hosts"]
    problems = {p["id"]: p for p in central.get("/api/v1/problems")["problems"]}
    assert set(problems) == {e1, e2} and problems[e1]["acknowledged"] and not problems[e2]["acknowledged"]
    assert [d["comment"] for d in central.get("/api/v1/downtimes")["downtimes"]] == ["rack move"]
    assert next(h for h in after["hosts"] if h["host"] == "web2.nydc1")["muted"]
    # seq high-water mark survived: the old batch is a duplicate
    _, ans = central.post_results("poller-ladc1", [result(2, *MYSQL, 2)])
    assert ans["duplicates"] == 1
    central.post_results("poller-ladc1", [result(3, *DISK, 0)])
    central.restart(kill=True)
    e3 = open_problem(central, 4, *DISK)
    assert e3 > e2 > e1


def run_cli(c: CentralProc, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "checkd", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)


def test_cli_wassup_ack_resched(central: CentralProc) -> None:
    assert "no open problems" in run_cli(central, "wassup", "--url", central.url).stdout
    eid = open_problem(central, 1, *DISK)
    out = run_cli(central, "wassup", "-c", str(central.config)).stdout
    assert f"CRITICAL db1.ladc1/Disk / " in out and f"[ID#:{eid}]" in out
    r = run_cli(central, "ack", str(eid), "-m", "swapping disk", "-c", str(central.config))
    assert r.returncode == 0 and f"event #{eid} acknowledged by ops" in r.stdout
    assert f"[ID#:{eid}] ACK" in run_cli(central, "wassup", "--url", central.url).stdout
    r = run_cli(central, "resched", "db1.ladc1/Mysql Health Slave Check", "--url", central.url, "--token", API_TOKEN)
    assert r.returncode == 0 and "poller-ladc1" in r.stdout
    _, hb = central.call("POST", "/api/v1/heartbeat", {}, token="tok-ladc1")
    assert hb["commands"] == [{"type": "reschedule", "host": MYSQL[0], "service": MYSQL[1]}]
    r = run_cli(central, "ack", str(eid), "--url", central.url, "--token", "wrong")
    assert r.returncode == 1 and "401" in r.stderr


def test_cli_unack_dis_ena_downtime_status(central: CentralProc) -> None:
    eid = open_problem(central, 1, *DISK)
    cfg = ("-c", str(central.config))
    run_cli(central, "ack", str(eid), *cfg)
    r = run_cli(central, "unack", str(eid), *cfg)
    assert r.returncode == 0 and f"event #{eid} no longer acknowledged" in r.stdout
    assert run_cli(central, "unack", str(eid), *cfg).stderr.strip() == \
        f"checkd unack: 409: event {eid} is not acknowledged"
    r = run_cli(central, "dis", "db1.ladc1/Disk /", "2h", *cfg)
    assert r.returncode == 0 and "notifications for db1.ladc1/Disk / disabled until" in r.stdout
    assert "muted" in run_cli(central, "wassup", *cfg).stdout
    assert run_cli(central, "ena", "db1.ladc1/Disk /", *cfg).returncode == 0
    assert "muted" not in run_cli(central, "wassup", *cfg).stdout
    r = run_cli(central, "dis", str(eid), "30m", *cfg)        # by event ID, like ack and resched
    assert r.returncode == 0 and "notifications for db1.ladc1/Disk / disabled until" in r.stdout
    assert "muted" in run_cli(central, "wassup", *cfg).stdout
    r = run_cli(central, "ena", f"#{eid}", *cfg)
    assert r.returncode == 0 and r.stdout.strip() == "notifications for db1.ladc1/Disk / enabled"
    assert "muted" not in run_cli(central, "wassup", *cfg).stdout
    r = run_cli(central, "dis", "987654", *cfg)
    assert r.returncode == 1 and "404: no event 987654" in r.stderr
    r = run_cli(central, "downtime", "db1.ladc1", "30m", "-m", "reboot", *cfg)
    assert r.returncode == 0 and r.stdout.startswith("downtime #1 for db1.ladc1 until")
    r = run_cli(central, "status", "db1.ladc1/Disk /", *cfg)
    assert r.returncode == 0 and f"  Disk /: CRITICAL (HARD, checked" in r.stdout and f"[ID#:{eid}]" in r.stdout
    r = run_cli(central, "status", "db1.ladc1/Nope", *cfg)
    assert r.returncode == 1 and "unknown service 'Nope'" in r.stderr
    kinds = [h["kind"] for h in central.get(f"/api/v1/events/{eid}")["history"]]
    assert kinds[-6:] == ["unack", "notifications_disabled", "notifications_enabled", "notifications_disabled",
                          "notifications_enabled", "downtime"]


def test_a_handed_over_log_is_checked_and_only_for_the_pollers_own_ids(central: CentralProc) -> None:
    tok_ladc1, tok_nydc1 = POLLER_TOKENS["poller-ladc1"][0], POLLER_TOKENS["poller-nydc1"][0]
    _, block = central.call("POST", "/api/v1/ids/reserve", {"count": 10}, token=tok_ladc1)
    eid = block["first"]
    payload = json.dumps({"event_id": eid, "kind": "PROBLEM", "host": DISK[0], "service": DISK[1],
                          "state": "CRITICAL", "site": "ladc1", "output": "full", "contact": "ops",
                          "channel": "email", "address": "ops@example.com", "since": 1.0, "created": 2.0,
                          "long_output": "", "escalation_level": 1, "author": "", "comment": "", "runbook": "",
                          "notes": "", "via": "ladc1 poller, central unreachable", "summary_ids": [],
                          "log_id": 7})
    row = {"id": 7, "event_id": eid, "kind": "PROBLEM", "contact": "ops", "channel": "email", "number": 1,
           "level": 1, "created": 2.0, "status": "sent", "done": 3.0, "attempts": 1, "error": None,
           "payload": payload}
    adopt = "/api/v1/notifications/adopt"
    st, doc = central.call("POST", adopt, {"rows": [row]}, token=tok_nydc1)
    assert st == 400 and "not from a block reserved for poller-nydc1" in doc["error"]
    for bad, why in (({**row, "status": "lost"}, "status: one of"), ({**row, "number": "1"}, "number: expected int"),
                     ({**row, "payload": "{}"}, "payload: not a notification"),
                     ({**row, "contact": "boss"}, "payload does not match the row")):
        st, doc = central.call("POST", adopt, {"rows": [bad]}, token=tok_ladc1)
        assert st == 400 and why in doc["error"], doc
    assert central.call("POST", adopt, {"rows": "x"}, token=tok_ladc1)[0] == 400
    # The problems it has open: checked the same way, nothing adopted when one is malformed.
    problem = {"id": eid, "host": DISK[0], "service": DISK[1], "status": 2, "opened": 1.0, "flapping": False}
    for bad, why in (({**problem, "status": 0}, "events[0]: status: expected 1-3"),
                     ({**problem, "id": eid + 10_000}, f"id {eid + 10_000} is not from a block reserved"),
                     ({**problem, "opened": "yesterday"}, "opened: expected a number"), ("x", "expected an object")):
        st, doc = central.call("POST", adopt, {"rows": [row], "events": [bad]}, token=tok_ladc1)
        assert st == 400 and why in doc["error"] and "nothing adopted" in doc["error"], doc
    st, doc = central.call("POST", adopt, {"rows": [], "events": [{**problem, "host": "gone.ladc1"}]},
                           token=tok_ladc1)
    assert (st, doc) == (200, {"adopted": 0, "events": 0, "actions": 0, "skipped": 0})        # a check no longer configured: skipped
    assert "which is not a check of site ladc1 here; skipped" in central.log.read_text()
    assert central.get("/api/v1/problems")["problems"] == []
    assert central.call("POST", adopt, {"rows": [row]}, token="wrong")[0] == 401
    assert central.call("POST", adopt, {"rows": [row]}, token=tok_ladc1) == (200, {"adopted": 1, "events": 0, "actions": 0, "skipped": 0})
    # The event arrives with the spool: it is the poller's ID, and its PROBLEM counts as sent.
    central.post_results("poller-ladc1", [result(1, *DISK, 2, "full", event_id=eid)])
    assert [p["id"] for p in central.get("/api/v1/problems")["problems"]] == [eid]
    told = central.get(f"/api/v1/events/{eid}")["notifications"]
    assert [(n["type"], n["contact"], n["status"]) for n in told] == [("PROBLEM", "ops", "sent")]


def test_operator_actions_handed_over_are_adopted_once_and_only_for_the_pollers_site(central: CentralProc) -> None:
    """What operators did at a poller while central was down: checked whole, adopted once
    however often the handover is retried, never about another site's hosts."""
    tok = POLLER_TOKENS["poller-ladc1"][0]
    _, block = central.call("POST", "/api/v1/ids/reserve", {"count": 10}, token=tok)
    eid = block["first"]
    adopt = "/api/v1/notifications/adopt"
    problem = {"id": eid, "host": DISK[0], "service": DISK[1], "status": 2, "opened": time.time() - 60,
               "flapping": False}
    ack = {"id": 1, "ts": time.time() - 30, "kind": "ack", "event_id": eid, "host": DISK[0], "service": DISK[1],
           "author": "ops@localhost", "comment": "looking", "until": None}
    other = {**ack, "id": 2, "kind": "dis", "event_id": None, "host": "web2.nydc1", "service": "", "comment": "",
             "until": time.time() + 3600}
    for bad, why in (({**ack, "kind": "rm -rf"}, "kind: one of"), ({**ack, "ts": "soon"}, "ts: expected a time"),
                     ({**ack, "author": "x" * 5000}, "author: expected a string"), ("x", "expected an object")):
        st, doc = central.call("POST", adopt, {"rows": [], "events": [problem], "actions": [bad]}, token=tok)
        assert st == 400 and why in doc["error"] and "nothing adopted" in doc["error"], doc
    assert central.get("/api/v1/problems")["problems"] == []
    for _ in range(2):          # the first answer lost: the poller hands the same over again
        st, doc = central.call("POST", adopt, {"rows": [], "events": [problem], "actions": [ack, other]}, token=tok)
        assert st == 200, doc
    event = central.get(f"/api/v1/events/{eid}")
    assert (event["acknowledged"], event["ack_author"], event["ack_comment"]) == (True, "ops@localhost", "looking")
    assert [h["author"] for h in event["history"] if h["kind"] == "ack"] == ["ops@localhost"]
    assert "not a check of site ladc1 here: skipped" in central.log.read_text()
    assert central.get("/api/v1/status?host=web2.nydc1")["hosts"][0]["muted"] is False
