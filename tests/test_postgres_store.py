"""`store: postgresql`: central keeps its whole state in PostgreSQL (a throwaway
cluster on 127.0.0.1, tests/postgres.py), so a central started on another machine
with nothing but the same configuration carries on where the first stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.central_proc import CentralProc, result
from tests.helpers import REPO, free_port

DISK = ("db1.ladc1", "Disk /")
MYSQL = ("db1.ladc1", "Mysql Health Slave Check")


def on_postgresql(dsn: str) -> str:
    return f'  store: postgresql\n  postgresql: {{dsn: "{dsn}"}}\n'


def open_problem(c: CentralProc, seq: int, host: str, svc: str | None, status: int = 2, output: str = "") -> int:
    status_code, answer = c.post_results("poller-ladc1", [result(seq, host, svc, status, output or f"{svc} broken")])
    assert status_code == 200 and answer["accepted"] == 1, answer
    return next(p["id"] for p in c.get("/api/v1/problems")["problems"] if (p["host"], p["service"]) == (host, svc))


def run_central(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checkd", "central", "-c", str(config)], capture_output=True,
                          text=True, cwd=REPO, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_central_on_another_machine_carries_on_from_the_shared_database(tmp_path: Path, postgres_dsn: str):
    first = CentralProc(tmp_path / "a", extra=on_postgresql(postgres_dsn))
    first.start()
    try:
        e1 = open_problem(first, 1, *DISK)
        e2 = open_problem(first, 2, *MYSQL)
        first.write("POST", "/api/v1/ack", {"event_id": e1, "comment": "known"})
        first.write("POST", "/api/v1/downtimes", {"host": "web1.ladc1", "duration": "1h", "comment": "rack move"})
        first.write("POST", "/api/v1/notifications", {"host": "web2.nydc1", "enabled": False})
        before = first.get("/api/v1/status")
        history = first.get(f"/api/v1/events/{e1}")
    finally:
        first.stop(kill=True)
    assert not (tmp_path / "a" / "state" / "central.sqlite").exists()      # nothing of it stayed local

    # Another directory (another machine): only the configuration is the same.
    second = CentralProc(tmp_path / "b", extra=on_postgresql(postgres_dsn))
    second.start()
    try:
        after = second.get("/api/v1/status")
        assert after["services"] == before["services"] and after["hosts"] == before["hosts"]
        problems = {p["id"]: p for p in second.get("/api/v1/problems")["problems"]}
        assert set(problems) == {e1, e2} and problems[e1]["acknowledged"] and not problems[e2]["acknowledged"]
        assert second.get(f"/api/v1/events/{e1}")["history"] == history["history"]
        assert [d["comment"] for d in second.get("/api/v1/downtimes")["downtimes"]] == ["rack move"]
        assert next(h for h in after["hosts"] if h["host"] == "web2.nydc1")["muted"]
        # The poller's acknowledged seq is shared too: its resend is a duplicate, not a second result.
        _, answer = second.post_results("poller-ladc1", [result(2, *MYSQL, 2)])
        assert answer["duplicates"] == 1 and answer["accepted"] == 0
        second.post_results("poller-ladc1", [result(3, *DISK, 0)])
        assert e1 not in {p["id"] for p in second.get("/api/v1/problems")["problems"]}
        e3 = open_problem(second, 4, *DISK)
        assert e3 > e2 > e1                      # event IDs never reused
    finally:
        second.stop()


def test_text_with_nul_is_stored_not_refused(tmp_path: Path, postgres_dsn: str):
    """PostgreSQL's text cannot hold NUL: plugin output and an operator's comment with one
    are stored all the same (U+FFFD in its place), and central keeps accepting results."""
    with CentralProc(tmp_path, extra=on_postgresql(postgres_dsn)) as c:
        eid = open_problem(c, 1, *DISK, output="disk\x00full")
        problem = next(p for p in c.get("/api/v1/problems")["problems"] if p["id"] == eid)
        assert problem["output"] == "disk\ufffdfull"
        status, _ = c.write("POST", "/api/v1/ack", {"event_id": eid, "comment": "on\x00it"})
        assert status == 200
        assert open_problem(c, 2, *MYSQL) > eid
        assert "NUL character" in c.log.read_text()
        c.restart(kill=True)
        problem = next(p for p in c.get("/api/v1/problems")["problems"] if p["id"] == eid)
        assert problem["output"] == "disk\ufffdfull" and problem["acknowledged"]


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path):
    c = CentralProc(tmp_path, extra=on_postgresql(f"host=127.0.0.1 port={free_port()} dbname=checkd user=checkd"))
    out = run_central(c.config)
    assert out.returncode == 1
    assert "postgresql://127.0.0.1:" in out.stderr and "cannot connect" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_an_acknowledged_problem_survives_the_upgrade_to_expiring_acks(tmp_path: Path, store: str,
                                                                       request: pytest.FixtureRequest):
    """A database from before sticky and expiring acks (schema 3): its columns are added, and a
    problem acknowledged then stays acknowledged, sticky, without expiry."""
    import sqlite3
    dsn = request.getfixturevalue("postgres_dsn") if store == "postgresql" else ""
    c = CentralProc(tmp_path, extra=on_postgresql(dsn) if dsn else "")
    c.start()
    eid = open_problem(c, 1, *DISK)
    assert c.write("POST", "/api/v1/ack", {"event_id": eid, "comment": "before the upgrade"})[0] == 200
    c.stop()
    drop = ["ALTER TABLE events DROP COLUMN ack_sticky", "ALTER TABLE events DROP COLUMN ack_expires"]
    if dsn:
        import psycopg
        with psycopg.connect(dsn, autocommit=True) as conn:
            for stmt in [*drop, "UPDATE meta SET value = 3 WHERE key = 'schema_version'"]:
                conn.execute(stmt)
    else:
        with sqlite3.connect(tmp_path / "state" / "central.sqlite") as db:
            for stmt in [*drop, "PRAGMA user_version = 3"]:
                db.execute(stmt)
    c.start()
    try:
        [p] = c.get("/api/v1/problems")["problems"]
        assert (p["id"], p["acknowledged"], p["ack_sticky"], p["ack_expires"]) == (eid, True, True, None)
        assert c.write("POST", "/api/v1/ack", {"event_id": eid, "expire": "1h", "sticky": False})[0] == 200
    finally:
        c.stop()


def test_a_schema_from_a_newer_checkd_is_refused(tmp_path: Path, postgres_dsn: str):
    c = CentralProc(tmp_path, extra=on_postgresql(postgres_dsn))
    c.start()
    c.stop()
    import psycopg
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    out = run_central(c.config)
    assert out.returncode == 1 and "written by a newer checkd" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("setting, expected", [
    ("  store: postgres\n", 'store: one of sqlite, postgresql (did you mean "postgresql"?)'),
    ("  store: postgresql\n", "store: postgresql needs `postgresql: {dsn:"),
    ('  postgresql: {dsn: "host=127.0.0.1"}\n', "postgresql: settings are used only with `store: postgresql`"),
])
def test_store_settings_are_checked_with_file_and_line(tmp_path: Path, setting: str, expected: str):
    c = CentralProc(tmp_path, extra=setting)
    out = subprocess.run([sys.executable, "-m", "checkd", "check-config", "-c", str(c.config)], capture_output=True,
                         text=True, cwd=REPO, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 1
    line = next(n for n, text in enumerate(c.config.read_text().splitlines(), 1) if text == setting.rstrip("\n"))
    assert f"{c.config}:{line}: {expected}" in out.stdout + out.stderr
