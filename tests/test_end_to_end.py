"""Central plus two pollers for two sites, all real processes, real plugins:
a problem opens one event with an ID, reschedule reaches the poller, recovery closes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.central_proc import POLLER_TOKENS, CentralProc, start_poller
from tests.helpers import require_plugins, wait_for

OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/$ARG1$; echo \\"state $s at $(date +%s.%N)\\"; exit $s'"
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1}}
  - {{name: web2.nydc1, address: 127.0.0.1}}
services:
  - {{host: db1.ladc1, description: Replication, command: "from_file!db1", interval: 0.5s,
     retry_interval: 0.3s, max_attempts: 2}}
  - {{host: web2.nydc1, description: Queue, command: "from_file!web2", interval: 0.5s,
     retry_interval: 0.3s, max_attempts: 2}}
  - {{host: web2.nydc1, description: Nightly, command: "from_file!web2", interval: 1h}}
"""



@pytest.fixture
def system(tmp_path: Path) -> Iterator[tuple[CentralProc, Path]]:
    require_plugins()
    states = tmp_path / "states"
    states.mkdir()
    for name in ("db1", "web2"):
        (states / name).write_text("0\n")
    central = CentralProc(tmp_path, objects=OBJECTS.format(dir=states))
    central.start()
    pollers = []
    for name in POLLER_TOKENS:
        pollers.append(start_poller(tmp_path, central.url, name=name, stem=name))
    try:
        yield central, states
    finally:
        for p in pollers:
            p.terminate()
        for p in pollers:
            assert p.wait(timeout=30) == 0
        central.stop()


def service(central: CentralProc, host: str, name: str) -> dict[str, Any]:
    return next(s for s in central.get("/api/v1/status")["services"] if s["host"] == host and s["service"] == name)


def test_problem_event_reschedule_and_recovery_across_two_sites(system: tuple[CentralProc, Path]) -> None:
    central, states = system
    wait_for(lambda: all(s["last_check"] for s in central.get("/api/v1/status")["services"]), 20,
             "every check to report")
    status = central.get("/api/v1/status")
    assert {p["name"]: p["connected"] for p in status["pollers"]} == {"poller-ladc1": True, "poller-nydc1": True}
    assert service(central, "db1.ladc1", "Replication")["polled_by"] == "poller-ladc1"
    assert service(central, "web2.nydc1", "Queue")["polled_by"] == "poller-nydc1"
    assert central.get("/api/v1/problems")["problems"] == []

    (states / "db1").write_text("2\n")
    problems = wait_for(lambda: central.get("/api/v1/problems")["problems"], 15, "the problem to open an event")
    time.sleep(1.5)   # several more CRITICAL results: still one event
    problems = central.get("/api/v1/problems")["problems"]
    assert [(p["host"], p["service"], p["state"]) for p in problems] == [("db1.ladc1", "Replication", "CRITICAL")]
    event_id = problems[0]["id"]
    svc = service(central, "db1.ladc1", "Replication")
    assert (svc["state_type"], svc["event_id"]) == ("HARD", event_id)

    # A check with a 1h interval runs at once on its poller when rescheduled.
    before = service(central, "web2.nydc1", "Nightly")["last_check"]
    code, answer = central.write("POST", "/api/v1/reschedule", {"host": "web2.nydc1", "service": "Nightly"})
    assert code == 200 and answer["pollers"] == ["poller-nydc1"]
    wait_for(lambda: service(central, "web2.nydc1", "Nightly")["last_check"] > before, 10, "the forced check")

    (states / "db1").write_text("0\n")
    wait_for(lambda: not central.get("/api/v1/problems")["problems"], 15, "the recovery to close the event")
    event = central.get(f"/api/v1/events/{event_id}")
    assert event["open"] is False
    assert [h["kind"] for h in event["history"]][0] == "open" and event["history"][-1]["kind"] == "recovery"

    # A second problem is a new event with a higher ID.
    (states / "web2").write_text("1\n")
    problems = wait_for(lambda: central.get("/api/v1/problems")["problems"], 15, "a second event")
    assert {p["service"] for p in problems} <= {"Queue", "Nightly"}
    assert all(p["id"] > event_id for p in problems)
