"""A central restart while a poller alerts on its own: the poller is heard again within its
heartbeat (not its backoff), central takes no live site over and adopts the poller's open
problems, so each problem is told once under one ID. Real central and poller processes,
real plugins (a shell check reading a state file), aiosmtpd."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkd.engine.notify.notification import Channel, Kind, Notification
from checkd.engine.nflog import to_payload
from tests.central_proc import POLLER_TOKENS, result
from tests.helpers import logged_at, wait_for
from tests.state_checks import STALE, Site, running_site

@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from running_site(tmp_path)


def test_central_restarts_twenty_times_each_problem_is_told_once_under_one_id(site: Site):
    """The reported defect: central killed while a service is (becoming) CRITICAL, the poller alerts
    on its own, central started again at a random point of the poller's reconnect backoff. Without
    the start grace (0 s here) a poller still backing off was taken over and told twice."""
    rng = random.Random()
    seed = rng.randrange(1 << 32)
    rng.seed(seed)
    site.central.start()
    site.start_poller()
    wait_for(lambda: "event IDs" in site.poller_log(), 20, "the poller's event ID block")
    told: list[int] = []
    for n in range(20):
        where = f"round {n} (seed {seed})"
        mail0 = len(site.sink.messages)
        offset = rng.uniform(-0.15, 0.5)    # CRITICAL set just before or after the kill
        if offset < 0:
            site.set("repl", 2)
            time.sleep(-offset)
        site.central.stop(kill=True)
        if offset >= 0:
            time.sleep(offset)
            site.set("repl", 2)
        [alert] = wait_for(lambda: site.mails("PROBLEM", start=mail0), 20, f"{where}: the alert")
        eid = int(alert["X-Checkd-Event-ID"])
        # Down for a random further while: the poller's backoff grows, by its own jitter.
        time.sleep(rng.uniform(0.0, 2.5))
        site.central.start()
        answering = time.time()
        # (45 s: long enough for a poller that only retries at its 30 s backoff cap to come back.)
        wait_for(lambda: eid in site.problems("Replication"), 45, f"{where}: the event under [ID#:{eid}]")
        # Central would have taken the site over STALE s after it answered, and told it again.
        time.sleep(max(0.0, answering + STALE + 1.5 - time.time()))
        assert site.problems("Replication") == [eid], f"{where}: a second event for the problem"
        site.set("repl", 0)
        wait_for(lambda: site.mails("RECOVERY", start=mail0), 20, f"{where}: the recovery")
        time.sleep(0.3)
        problems = site.mails("PROBLEM", start=mail0)
        recoveries = site.mails("RECOVERY", start=mail0)
        assert [m["Subject"] for m in problems] == [f"db1.ladc1/Replication CRITICAL [ID#:{eid}]"], where
        assert [m["Subject"] for m in recoveries] == [f"RECOVERY db1.ladc1/Replication OK [ID#:{eid}]"], where
        assert site.takeovers() == 0, f"{where}: central took a live site over"
        assert eid not in told, where
        told.append(eid)


def test_a_poller_that_started_while_central_was_down_reserves_ids_when_central_answers(site: Site):
    """Defect 2: the first reservation failed (central down), and the poller waited 30 s to try
    again even though central answered; with central down from then on it never alerted."""
    site.start_poller()
    wait_for(lambda: "not delivering" in site.poller_log(), 20, "the poller's failed delivery")
    time.sleep(1.0)
    site.central.start()
    answering = time.time()
    block = wait_for(lambda: re.search(r"event IDs (\d+)-(\d+) reserved", site.poller_log()), 10,
                     "the ID reservation after central answered")
    print(f"\nevent IDs reserved {time.time() - answering:.1f}s after central answered")
    first, last = int(block[1]), int(block[2])
    site.central.stop(kill=True)
    site.set("repl", 2)
    [alert] = site.sink.wait(lambda m: "Replication" in m["Subject"], 1, 20)
    assert first <= int(alert["X-Checkd-Event-ID"]) <= last
    assert "Sent via: ladc1 poller, central unreachable" in alert.get_content()


def test_central_judges_no_site_stale_within_its_start_grace(site: Site):
    """No poller at all: the site is taken over start_grace after central answers, not stale_after."""
    site.configure("site_stale_after: 1s, start_grace: 4s")
    site.central.start()
    wait_for(site.takeovers, 15, "the takeover")
    log = site.central.log.read_text()
    took = logged_at(log, "takeover: no word from") - logged_at(log, "central listening on")
    assert 4.0 <= took < 6.0, f"taken over {took:.1f}s after central answered (start grace 4 s)"


def test_after_a_takeover_the_handed_over_problem_is_adopted_not_opened_again(site: Site):
    """Central took the site over (the poller came back late); the poller hands over a problem it
    told while alone, and its replayed result is older than central's own results (dropped as
    stale). Central's own check reaching HARD joins the poller's event: no second ID, no second
    mail. Here the poller's side is played by hand, over the same API."""
    site.set("backup", 2)
    site.configure("site_stale_after: 1s, hold_down: 1h, start_grace: 0s")
    site.central.start()

    def check() -> dict[str, Any]:
        return next(s for s in site.central.get("/api/v1/status?host=db1.ladc1")["services"]
                    if s["service"] == "Backup")

    wait_for(lambda: check()["polled_by"] == "central", 15, "the takeover's first result")
    token = POLLER_TOKENS["poller-ladc1"][0]
    status, block = site.central.call("POST", "/api/v1/ids/reserve", {"count": 10}, token=token)
    assert status == 200, block
    eid, opened = block["first"], time.time() - 60
    told = Notification(event_id=eid, kind=Kind.PROBLEM, host="db1.ladc1", service="Backup", state="CRITICAL",
                        site="ladc1", output="state 2", contact="ops", channel=Channel.EMAIL,
                        address="ops@example.com", since=opened, created=opened + 1,
                        via="ladc1 poller, central unreachable")
    row = {"id": 1, "event_id": eid, "kind": "PROBLEM", "contact": "ops", "channel": "email", "number": 1,
           "level": 1, "created": opened + 1, "status": "sent", "done": opened + 2, "attempts": 1, "error": None,
           "payload": to_payload(told)}
    problem = {"id": eid, "host": "db1.ladc1", "service": "Backup", "status": 2, "opened": opened,
               "flapping": False}
    status, answer = site.central.call("POST", "/api/v1/notifications/adopt", {"rows": [row], "events": [problem]},
                                       token=token)
    assert status == 200 and answer == {"adopted": 1, "events": 1, "actions": 0, "skipped": 0}, answer
    # The replay: the poller's HARD result, older than what central's own checks hold by now.
    status, answer = site.central.post_results("poller-ladc1", [result(1, "db1.ladc1", "Backup", 2, "state 2",
                                                                       finished=opened + 0.5, event_id=eid)])
    assert status == 200 and answer["stale"] == 1, answer
    wait_for(lambda: check()["state_type"] == "HARD" and check()["polled_by"] == "central", 20,
             "central's own check reaching HARD")
    time.sleep(1.0)
    assert site.problems("Backup") == [eid]
    assert site.mails("PROBLEM", "Backup") == [], [m["Subject"] for m in site.sink.messages]
    history = site.central.get(f"/api/v1/events/{eid}")["history"]
    assert [h["kind"] for h in history][:2] == ["open", "adopted"], history
    site.set("backup", 0)
    [recovery] = site.sink.wait(lambda m: m["X-Checkd-Type"] == "RECOVERY" and "Backup" in m["Subject"], 1, 20)
    assert recovery["Subject"] == f"RECOVERY db1.ladc1/Backup OK [ID#:{eid}]"


def test_a_restarted_central_says_where_its_start_went(tmp_path: Path) -> None:
    """The start-up line (docs/operations.md, "Logs"): each phase, and the database check
    that ran beside the config load once there is a database to check."""
    from tests.central_proc import CentralProc
    c = CentralProc(tmp_path)
    with c:
        c.post_results("poller-ladc1", [result(1, "db1.ladc1", "Disk /", 2, "DISK CRITICAL")])
    c.log.write_text("")
    with c:
        pass
    lines = [ln for ln in c.log.read_text().splitlines() if "start-up:" in ln]
    assert len(lines) == 1, c.log.read_text()
    m = re.search(r"start-up: ([\d.]+) s in the process: config ([\d.]+) s, .*quick_check ([\d.]+) s, "
                  r".*reading rows ([\d.]+) s, .*\(quick_check ran ([\d.]+) s, alongside the config\)", lines[0])
    assert m is not None, lines[0]
    total, *parts = (float(x) for x in m.groups())
    assert 0 < total < 20 and all(0 <= p <= total for p in parts[:3])
