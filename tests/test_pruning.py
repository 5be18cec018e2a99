"""What central keeps of the past (`retention:`): a real central over a state directory
holding a month and a half of history. Old closed events (with their history and
notifications), comments and ended downtimes go; open events, pending notifications and
recent records stay; RRD files of checks removed from the configuration go after their
time, a configured check's never; results keep being acknowledged at once meanwhile."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from central.graphs.naming import Layout, file_name
from tests.central_proc import CentralProc, result
from tests.helpers import wait_for

DAY = 86400
OLD_EVENTS = 20_000


def fill(db_path: Path, now: float) -> dict[str, int]:
    """Six weeks of history written straight into central's SQLite file (central stopped)."""
    db = sqlite3.connect(db_path)
    old, recent = now - 45 * DAY, now - 2 * DAY
    with db:
        db.executemany("INSERT INTO events (id, host, service, opened, closed, status, flapping, acknowledged, source) "
                       "VALUES (?, 'db1.ladc1', 'Disk /', ?, ?, 2, 0, 0, 'central')",
                       [(1_000_000 + i, old, old + 60) for i in range(OLD_EVENTS)])
        db.executemany("INSERT INTO event_history VALUES (?, ?, ?, 2, 'full', NULL)",
                       [(1_000_000 + i, old, kind) for i in range(OLD_EVENTS) for kind in ("open", "recovery")])
        db.executemany("INSERT INTO notification_log (id, event_id, kind, contact, channel, number, level, created, "
                       "status, attempts, payload) VALUES (?, ?, 'PROBLEM', 'ops', 'email', 1, 1, ?, 'sent', 1, '{}')",
                       [(5_000_000 + i, 1_000_000 + i, old) for i in range(OLD_EVENTS)])
        # Kept: a recent closed event, an old problem still open, a recent comment.
        db.execute("INSERT INTO events (id, host, service, opened, closed, status, flapping, acknowledged, source) "
                   "VALUES (900001, 'web1.ladc1', 'Disk /', ?, ?, 2, 0, 0, 'central')", (recent, recent + 60))
        db.execute("INSERT INTO events (id, host, service, opened, closed, status, flapping, acknowledged, source) "
                   "VALUES (900002, 'web1.ladc1', 'Mysql Health Slave Check', ?, NULL, 2, 0, 0, 'central')", (old,))
        db.execute("INSERT INTO event_history VALUES (900002, ?, 'open', 2, 'lag', NULL)", (old,))
        db.executemany("INSERT INTO comments (host, service, ts, author, text) VALUES ('db1.ladc1', NULL, ?, 'ops', ?)",
                       [(old, "old note"), (recent, "recent note")])
        db.execute("INSERT INTO downtimes (id, host, service, start, end, author, comment, phase) "
                   "VALUES (7, 'db1.ladc1', NULL, ?, ?, 'ops', 'long ago', 'ended')", (old, old + 3600))
    db.close()
    return {"recent": 900001, "open": 900002}


def rrd_files(rrd_dir: Path, now: float) -> dict[str, Path]:
    """A removed check's file last written 45 days ago, one written yesterday, a configured check's old one."""
    layout = Layout(rrd_dir)
    out, services = {}, {}
    for name, service, age in (("gone", "Old Check", 45), ("young", "Retired Yesterday", 1), ("kept", "Disk /", 45)):
        path = layout.path("db1.ladc1", file_name(service, "x"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"rrd")
        os.utime(path, (now - age * DAY, now - age * DAY))
        services[service] = {"x": {"file": path.name, "ds": "x", "uom": "", "kind": "GAUGE", "step": 60,
                                   "created": now - 50 * DAY}}
        out[name] = path
    layout.index("db1.ladc1").write_text(json.dumps({"host": "db1.ladc1", "services": services}))
    return out


def test_old_records_and_removed_checks_files_go_in_batches_that_never_hold_up_ingest(tmp_path: Path) -> None:
    rrd = tmp_path / "rrd"
    c = CentralProc(tmp_path, extra=f"  retention: {{keep: 30d, batch: 500}}\n  rrd: {{dir: '{rrd}'}}\n")
    c.start()
    c.stop()                                # the schema, written by this checkd
    now = time.time()
    kept = fill(tmp_path / "state" / "central.sqlite", now)
    files = rrd_files(rrd, now)

    # Results posted all the while pruning runs: each acknowledged at once.
    latencies: list[float] = []
    stop = threading.Event()

    def post() -> None:
        seq = 0
        while not stop.is_set():
            batch = [result(seq + i + 1, "db1.ladc1", "Mysql Health Slave Check", 0) for i in range(200)]
            seq += 200
            t0 = time.monotonic()
            status, answer = c.post_results("poller-ladc1", batch)
            latencies.append(time.monotonic() - t0)
            assert status == 200 and answer["acked"] == seq, answer

    c.start()
    poster = threading.Thread(target=post)
    poster.start()
    try:
        wait_for(lambda: "pruned" in c.log.read_text(), 60, "a pruning round")
    finally:
        stop.set()
        poster.join(timeout=30)
    log = c.log.read_text()
    assert f"pruned {OLD_EVENTS} closed event(s), 1 comment(s), 0 downtime notice(s), 1 ended downtime(s)" in log
    batches = int(log.split("older than retention: in ")[1].split(" batch")[0])
    assert batches >= OLD_EVENTS // 500, "small batches, not one long transaction"
    assert len(latencies) >= 5 and max(latencies) < 1.0, f"ingest held up: {max(latencies):.2f}s"

    assert c.call("GET", "/api/v1/events/1000000")[0] == 404
    assert c.get(f"/api/v1/events/{kept['recent']}")["id"] == kept["recent"]
    assert [p["id"] for p in c.get("/api/v1/problems")["problems"]] == [kept["open"]], "an open problem stays"
    assert c.get("/api/v1/downtimes")["downtimes"] == []
    c.stop()
    db = sqlite3.connect(tmp_path / "state" / "central.sqlite")
    counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("event_history", "notification_log", "comments")}
    assert counts == {"event_history": 1, "notification_log": 0, "comments": 1}, counts
    db.close()
    assert not files["gone"].exists() and files["young"].exists() and files["kept"].exists()
    catalog = json.loads(Layout(rrd).index("db1.ladc1").read_text())
    assert sorted(catalog["services"]) == ["Disk /", "Retired Yesterday"]
