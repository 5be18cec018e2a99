"""Central start-up: from exec of `checkd central` to its first HTTP answer, with the
state of a central that has run for a long time.

    .venv/bin/python bench/central_startup.py [--services 100000] [--history 1000000] [--rounds 3]

Builds, once, a state directory as central leaves it (central's own schema, made by
checkd/engine/db.py): every service's current state (1% of them HARD CRITICAL with an open
event), a year of closed events with `--history` event_history rows (~2.5 a problem:
opened, some state changes and acks, recovered), their notification_log rows (a PROBLEM and
a RECOVERY mail each), first_results, 4 pollers. The objects are the same 100k services as
bench/central_ingest.py (10 services applied to a hostgroup), and `rrd:` is configured, so
the RRD writer starts too. Then `--rounds` times: start `python -m checkd central`, poll
GET /api/v1/problems every 10 ms until it answers, stop it (SIGTERM). Central logs its own
breakdown of the start (central/startup.py: config, database open with quick_check, loading
the state, ...); the rest of the wall time is the interpreter and the imports.
Prints the median of each figure and PASS/FAIL against the target: under 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.central_ingest import SERVICES_PER_HOST, write_config  # noqa: E402
from checkd.engine.db import SqliteDatabase  # noqa: E402
from tests.central_proc import free_port  # noqa: E402

TARGET = 5.0                     # seconds, exec -> first HTTP answer
OPEN_SHARE = 0.01                # services with an open problem
ROWS_PER_PROBLEM = 2.5
# central's own line (central/startup.py): "start-up: 3.21 s in the process: config 1.20 s, ..."
PHASES = re.compile(r"start-up: ([\d.]+) s in the process: ([^(]*)(?: \(quick_check ran ([\d.]+) s.*)?$")


def payload(eid: int, host: str, service: str, kind: str, t: float) -> str:
    """A notification_log payload as central writes it (nflog.to_payload), typical size."""
    return json.dumps({
        "event_id": eid, "kind": kind, "host": host, "service": service, "state": "CRITICAL",
        "site": "bench", "output": "DISK CRITICAL - free space: /var 812 MB (3% inode=91%)",
        "contact": "ops", "channel": "email", "address": "ops@example.com", "since": t, "created": t,
        "via": "", "summary_ids": [], "log_id": 0, "acknowledged_by": "", "comment": "", "level": 1,
        "number": 1, "until": t, "notes_url": "", "long_output": ""})


def build_state(db_path: Path, services: int, history: int) -> dict[str, int]:
    """The state directory's database; returns how many rows of each it holds."""
    SqliteDatabase(db_path).open()           # central's schema, as a first start makes it
    rnd = random.Random(1)
    hosts = services // SERVICES_PER_HOST
    now = time.time()
    year = now - 365 * 86400
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    keys = [(f"h{i}.bench", f"svc{j}") for i in range(hosts) for j in range(SERVICES_PER_HOST)]
    problems = max(1, int(history / ROWS_PER_PROBLEM))
    opened_now = rnd.sample(range(len(keys)), int(len(keys) * OPEN_SHARE))
    first_open = problems + 1
    open_of = {k: first_open + n for n, k in enumerate(opened_now)}
    checks, events, hist, nlog = [], [], [], []
    for k, (h, s) in enumerate(keys):
        eid = open_of.get(k)
        status = 2 if eid else 0
        out = "DISK CRITICAL - free space: /var 812 MB (3%)" if eid else "DISK OK - free space: /var 21 GB (71%)"
        checks.append((h, s, status, "HARD", 1, out, "", "/var=21000MB;;;0;30000", now - rnd.random() * 300,
                       now - rnd.random() * 86400 * 30, "p0", eid, 0))
        if eid:
            events.append((eid, h, s, now - 600, None, 2, None, 0, 0, None, None, "central", 2, now - 600,
                           1, 1, 1, None))
            hist.append((eid, now - 600, "open", 2, out, None))
    conn.executemany("INSERT INTO checks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", checks)
    conn.executemany("INSERT INTO first_results VALUES (?,?,?)", [(c[0], c[1], year) for c in checks])
    del checks
    log_id = 0
    rows = 0
    for eid in range(1, problems + 1):
        h, s = keys[rnd.randrange(len(keys))]
        opened = year + eid / problems * 364 * 86400
        closed = opened + rnd.expovariate(1 / 1800)
        events.append((eid, h, s, opened, closed, 2, None, 0, 0, None, None, "central", 2, opened,
                       1, 1, 1, None))
        hist.append((eid, opened, "open", 2, "DISK CRITICAL - free space: /var 812 MB (3%)", None))
        rows += 1
        if rnd.random() < 0.3:
            hist.append((eid, opened + 60, "state", 1, "DISK WARNING - free space: /var 2 GB (9%)", None))
            rows += 1
        if rnd.random() < 0.2 and rows < history - 1:
            hist.append((eid, opened + 120, "ack", 2, f"ticket {rnd.randint(1, 99999)}", "ops"))
            rows += 1
        hist.append((eid, closed, "recovery", 0, "DISK OK", None))
        rows += 1
        for kind, t in (("PROBLEM", opened), ("RECOVERY", closed)):
            log_id += 1
            nlog.append((log_id, eid, kind, "ops", "email", 1, 1, t, "sent", t + 0.05, 1, None,
                         payload(eid, h, s, kind, t)))
        if len(nlog) >= 100_000:
            conn.executemany("INSERT INTO notification_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", nlog)
            nlog.clear()
        if rows >= history:
            break
    for eid in open_of.values():
        log_id += 1
        nlog.append((log_id, eid, "PROBLEM", "ops", "email", 1, 1, now - 600, "sent", now - 599, 1, None,
                     payload(eid, "h", "s", "PROBLEM", now - 600)))
    conn.executemany("INSERT INTO notification_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", nlog)
    conn.executemany(f"INSERT INTO events VALUES ({','.join('?' * 18)})", events)
    conn.executemany("INSERT INTO event_history VALUES (?,?,?,?,?,?)", hist)
    conn.executemany("INSERT INTO pollers VALUES (?,?,?,?)", [(f"p{i}", "bench", now, 1000) for i in range(4)])
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('id_mark', ?)", (first_open + len(open_of) + 1,))
    conn.execute("COMMIT")
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("checks", "events", "event_history", "notification_log")}
    counts["open events"] = len(open_of)
    conn.close()
    return counts


def answered(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        return True
    except urllib.error.HTTPError as e:
        return e.code == 401
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start_once(node: Path, port: int, log: Path, timeout: float) -> dict[str, Any]:
    """One start: exec -> first answer; central's own breakdown from its log."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    mark = log.stat().st_size if log.exists() else 0
    url = f"http://127.0.0.1:{port}/api/v1/problems"
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "checkd", "central", "-c", str(node)], cwd=node.parent,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while not answered(url):
            if proc.poll() is not None:
                raise RuntimeError(f"central exited with {proc.returncode}; see {log}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"central did not answer within {timeout:g} s; see {log}")
            time.sleep(0.01)
        wall = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with open(log, "rb") as f:
        f.seek(mark)
        text = f.read().decode(errors="replace")
    phases: dict[str, float] = {}
    inside = None
    for ln in text.splitlines():
        m = PHASES.search(ln)
        if m:
            inside = float(m[1])
            if m[3]:
                phases["quick_check alongside config"] = float(m[3])
            for part in m[2].strip().split(", "):
                name, secs, _unit = part.rsplit(" ", 2)
                phases[name] = float(secs)
    return {"wall": wall, "in_process": inside, "phases": phases}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=100_000)
    ap.add_argument("--history", type=int, default=1_000_000, help="event_history rows")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="checkd-startup-bench-"))
    port = free_port()
    node = write_config(tmp, port, args.services, node_extra="  rrd: {dir: rrd}\n")
    node.write_text(node.read_text().replace("log_level: warning", "log_level: info"))
    (tmp / "state").mkdir()
    db_path = tmp / "state" / "central.sqlite"
    t = time.perf_counter()
    counts = build_state(db_path, args.services, args.history)
    size_mb = db_path.stat().st_size / 1e6
    print(f"state built in {time.perf_counter() - t:.1f} s: {size_mb:.0f} MB, "
          + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    log = tmp / "central.log"
    runs = []
    try:
        for r in range(1, args.rounds + 1):
            run = start_once(node, port, log, args.timeout)
            runs.append(run)
            print(f"start {r}: {run['wall']:.2f} s to the first answer; in the process {run['in_process'] or 0:.2f} s: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in run["phases"].items()))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    wall = statistics.median(r["wall"] for r in runs)
    names = list(dict.fromkeys(k for r in runs for k in r["phases"]))
    phases = {k: statistics.median(r["phases"].get(k, 0.0) for r in runs) for k in names}
    inside = statistics.median((r["in_process"] or 0.0) for r in runs)
    ok = wall < TARGET
    print(f"median of {len(runs)}: {wall:.2f} s exec -> first answer (interpreter and imports "
          f"{max(0.0, wall - inside):.2f} s, then " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()) + ")")
    print(f"target < {TARGET:g} s at {args.services:,} services and {counts['event_history']:,} history rows "
          f"({size_mb:.0f} MB): {'PASS' if ok else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "bench": "central_startup", "services": args.services, "history_rows": counts["event_history"],
            "rows": counts, "db_mb": size_mb, "rounds": len(runs), "wall": wall, "in_process": inside,
            "imports": max(0.0, wall - inside), "phases": phases, "walls": [r["wall"] for r in runs],
            "target_s": TARGET, "pass": ok}) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
