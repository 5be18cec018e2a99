"""Ingest against a real `checkd central` process: events, dedup, order, auth, hostile input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.central_proc import CentralProc, result

DISK = ("db1.ladc1", "Disk /")


@pytest.fixture
def central(tmp_path: Path) -> Iterator[CentralProc]:
    with CentralProc(tmp_path) as c:
        yield c


def service(c: CentralProc, host: str, svc: str | None) -> dict:
    return next(s for s in c.get(f"/api/v1/status?host={host}")["services" if svc else "hosts"]
                if s.get("service") == svc)


def test_critical_hard_opens_one_event_and_recovery_closes_it(central: CentralProc) -> None:
    status, ans = central.post_results("poller-ladc1", [result(1, *DISK, 2, "DISK CRITICAL - 1% free")])
    assert status == 200 and ans["acked"] == 1
    problems = central.get("/api/v1/problems")["problems"]
    assert len(problems) == 1
    p = problems[0]
    assert (p["host"], p["service"], p["state"]) == (*DISK, "CRITICAL") and isinstance(p["id"], int)
    assert service(central, *DISK)["event_id"] == p["id"]
    # The same state again stays in the same event.
    central.post_results("poller-ladc1", [result(2, *DISK, 2, "still critical")])
    assert [q["id"] for q in central.get("/api/v1/problems")["problems"]] == [p["id"]]
    central.post_results("poller-ladc1", [result(3, *DISK, 0, "DISK OK")])
    assert central.get("/api/v1/problems")["problems"] == []
    ev = central.get(f"/api/v1/events/{p['id']}")
    assert not ev["open"] and [h["kind"] for h in ev["history"]] == ["open", "recovery"]


def test_soft_problem_opens_no_event(central: CentralProc) -> None:
    central.post_results("poller-ladc1", [result(1, *DISK, 2, state_type="SOFT", attempt=1)])
    assert central.get("/api/v1/problems")["problems"] == []
    assert service(central, *DISK)["state_type"] == "SOFT"


def test_warning_to_critical_stays_in_the_same_event(central: CentralProc) -> None:
    central.post_results("poller-ladc1", [result(1, *DISK, 1, "warn"), result(2, *DISK, 2, "crit")])
    (p,) = central.get("/api/v1/problems")["problems"]
    assert p["state"] == "CRITICAL"
    kinds = [(h["kind"], h["state"]) for h in central.get(f"/api/v1/events/{p['id']}")["history"]]
    assert kinds == [("open", "WARNING"), ("state", "CRITICAL")]


def test_the_same_batch_twice_changes_nothing(central: CentralProc) -> None:
    batch = [result(1, *DISK, 2, "crit"), result(2, "web1.ladc1", "Disk /", 1, "warn")]
    s1, a1 = central.post_results("poller-ladc1", batch)
    before = central.get("/api/v1/problems")["problems"]
    s2, a2 = central.post_results("poller-ladc1", batch)
    assert s1 == s2 == 200 and a1["acked"] == a2["acked"] == 2
    assert a2["duplicates"] == 2 and a2["accepted"] == 0
    assert central.get("/api/v1/problems")["problems"] == before and len(before) == 2


def test_an_older_result_never_overwrites_a_newer_one(central: CentralProc) -> None:
    now = time.time()
    central.post_results("poller-ladc1", [result(1, *DISK, 0, "newer", finished=now)])
    _, ans = central.post_results("poller-ladc1", [result(2, *DISK, 2, "older", finished=now - 60)])
    assert ans["stale"] == 1 and ans["acked"] == 2
    s = service(central, *DISK)
    assert (s["output"], s["state"]) == ("newer", "OK")
    assert central.get("/api/v1/problems")["problems"] == []


def test_results_in_one_batch_apply_in_check_time_order(central: CentralProc) -> None:
    now = time.time()
    central.post_results("poller-ladc1", [result(1, *DISK, 0, "late", finished=now),
                                          result(2, *DISK, 2, "early", finished=now - 30)])
    assert service(central, *DISK)["output"] == "late"


def test_another_sites_host_is_forbidden_and_nothing_is_stored(central: CentralProc) -> None:
    status, ans = central.post_results("poller-ladc1", [result(1, *DISK, 2), result(2, "web2.nydc1", "Disk /", 2)])
    assert status == 403 and ans["items"][0]["host"] == "web2.nydc1"
    assert central.get("/api/v1/problems")["problems"] == []
    assert "reported hosts of other sites" in central.log.read_text()


def test_wrong_token_is_401(central: CentralProc) -> None:
    status, ans = central.post_results("poller-ladc1", [result(1, *DISK, 2)], token="tok-guess")
    assert status == 401 and "token" in ans["error"]
    # A valid token of another poller does not make a poller name its own.
    status, _ = central.post_results("poller-ladc1", [result(1, *DISK, 2)], token="tok-nydc1")
    assert status == 403
    assert central.get("/api/v1/problems")["problems"] == []


def test_unknown_checks_and_bad_timestamps_are_skipped_per_item(central: CentralProc) -> None:
    now = time.time()
    _, ans = central.post_results("poller-ladc1", [
        result(1, "nosuch.ladc1", None, 1), result(2, "db1.ladc1", "No such service", 2),
        result(3, *DISK, 2, "future", finished=now + 3600), result(4, *DISK, 2, "ancient", finished=now - 30 * 86400),
        result(5, "web1.ladc1", "Disk /", 2, "good")])
    assert ans["acked"] == 5 and ans["accepted"] == 1
    reasons = {r["seq"]: r["reason"] for r in ans["rejected"]}
    assert set(reasons) == {1, 2, 3, 4} and all(r["status"] == 422 for r in ans["rejected"])
    assert "unknown host" in reasons[1] and "unknown service" in reasons[2]
    assert "future" in reasons[3] and "days old" in reasons[4]
    assert [p["host"] for p in central.get("/api/v1/problems")["problems"]] == ["web1.ladc1"]


def test_oversized_body_is_413(tmp_path: Path) -> None:
    with CentralProc(tmp_path, max_body=64 * 1024) as c:
        big = [result(i + 1, *DISK, 0, "x" * 1000) for i in range(100)]
        status, _ = c.post_results("poller-ladc1", big)
        assert status == 413
        assert c.get("/api/v1/status?host=db1.ladc1")["services"][0]["last_check"] is None


@pytest.mark.parametrize("raw, expect", [
    (b'{"poller": "poller-ladc1", "batch": [', "broken JSON"),
    (b'{"poller": "\xff"}', "not UTF-8"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"poller": "poller-ladc1", "batch": {"seq": 1}}', "batch: expected a list"),
])
def test_broken_json_is_400_with_a_reason(central: CentralProc, raw: bytes, expect: str) -> None:
    status, ans = central.call("POST", "/api/v1/results", raw=raw, token="tok-ladc1")
    assert status == 400 and expect in ans["error"]


def test_one_malformed_item_rejects_the_whole_batch(central: CentralProc) -> None:
    bad = result(2, *DISK, 2)
    bad["status"] = "2"
    nan = result(3, *DISK, 2)
    nan["finished"] = float("nan")
    huge = result(4, *DISK, 2)
    huge["attempt"] = 2**64             # more than SQLite holds: it used to stop the database writer
    status, ans = central.post_results("poller-ladc1", [result(1, *DISK, 2), bad, nan, huge])
    assert status == 400
    assert [(i["index"], i["seq"]) for i in ans["items"]] == [(1, 2), (2, 3), (3, 4)]
    assert "status" in ans["items"][0]["reason"] and "finished" in ans["items"][1]["reason"]
    assert "attempt" in ans["items"][2]["reason"]
    assert central.get("/api/v1/problems")["problems"] == []
    # Nothing stored means seq did not advance: the corrected batch is taken.
    _, ok = central.post_results("poller-ladc1", [result(1, *DISK, 2)])
    assert ok["accepted"] == 1


@pytest.mark.parametrize("text", ["'); DROP TABLE services;--", "<script>alert(1)</script>",
                                  "Robert'); DELETE FROM checks; -- \u00e9\u2603\n\"quoted\"\t\\"])
def test_hostile_outputs_are_stored_and_returned_verbatim(tmp_path: Path, text: str) -> None:
    with CentralProc(tmp_path) as c:
        c.post_results("poller-ladc1", [result(1, *DISK, 2, text, perfdata=f"'{text}'=1;2;3",
                                               long_output=text)])
        c.restart(kill=True)         # verbatim from SQLite too, not only from memory
        s = service(c, *DISK)
        assert (s["output"], s["long_output"], s["perfdata"]) == (text, text, f"'{text}'=1;2;3")
        (p,) = c.get("/api/v1/problems")["problems"]
        assert p["output"] == text
        assert c.get(f"/api/v1/events/{p['id']}")["history"][0]["output"] == text


def test_heartbeat_updates_last_seen_and_carries_commands(central: CentralProc) -> None:
    status, ans = central.call("POST", "/api/v1/heartbeat", {"poller": "poller-ladc1", "site": "ladc1"},
                               token="tok-ladc1")
    assert status == 200 and ans == {"acked": 0, "commands": []}
    (p,) = [p for p in central.get("/api/v1/status")["pollers"] if p["name"] == "poller-ladc1"]
    assert p["connected"] and p["last_seen"] > time.time() - 10
    status, _ = central.call("POST", "/api/v1/heartbeat", {}, token="nope")
    assert status == 401
