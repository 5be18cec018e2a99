"""The history search over a year of history at 10,000 services (docs/history.md).

    .venv/bin/python bench/history_search.py [--events 500000] [--postgres]

Writes 500 hosts x 20 services' problems over the last 365 days (each opened,
some changing state, acknowledged or commented, all recovered: ~2.5 history rows a
problem) into a SQLite file with central's schema, then times checkd/engine/history.py
`search` for the usual filters, each run twice (the second is shown: a warm cache, as
on a central that serves the pages). With --postgres, the same rows in a throwaway
PostgreSQL 15 (tests/postgres.py) after ANALYZE, and the same searches.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from checkd.engine import history  # noqa: E402
from checkd.engine.db import SCHEMA, Database, SqliteDatabase  # noqa: E402

SITES = ("ladc1", "nydc1", "ams1", "sfo2")
HOSTS = [f"h{i:04d}.{SITES[i % 4]}" for i in range(500)]


def fill(path: Path, events: int) -> None:
    rnd = random.Random(1)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SCHEMA)
    start = time.time() - 365 * 86400
    conn.execute("BEGIN")
    evs, rows = [], []
    for eid in range(1, events + 1):
        service = f"Service {rnd.randrange(20)}" if rnd.random() > 0.05 else ""
        opened = start + eid / events * 365 * 86400
        closed = opened + rnd.expovariate(1 / 1800)
        status = rnd.choice((1, 2, 2, 3)) if service else 1
        evs.append((eid, rnd.choice(HOSTS), service, opened, closed, 0, None, 0, 0, None, None, "central",
                    status, opened, 1, 1, 1, None))
        rows.append((eid, opened, "open", status, f"DISK CRITICAL - {rnd.randint(80, 99)}% on /var", None))
        if rnd.random() < 0.3:
            rows.append((eid, opened + 60, "state", 2, "DISK CRITICAL - worse", None))
        if rnd.random() < 0.2:
            rows.append((eid, opened + 120, "ack", status, f"ticket {rnd.randint(1, 99999)}",
                         rnd.choice(("ops", "anna", "bob", "deploy"))))
        rows.append((eid, closed, "recovery", 0, "DISK OK", None))
    conn.executemany(f"INSERT INTO events VALUES ({','.join('?' * 18)})", evs)
    conn.executemany("INSERT INTO event_history VALUES (?,?,?,?,?,?)", rows)
    conn.execute("COMMIT")
    conn.close()


def searches(now: float) -> dict[str, history.Search]:
    ladc1 = tuple(h for h in HOSTS if h.endswith(".ladc1"))
    return {
        "no filter": history.Search(),
        "since=24h": history.Search(since=now - 86400),
        "an old month": history.Search(since=now - 300 * 86400, until=now - 270 * 86400),
        "one host": history.Search(hosts=(HOSTS[42],)),
        "one host's service": history.Search(hosts=(HOSTS[42],), services=("Service 3",)),
        "3 hosts": history.Search(hosts=ladc1[:3]),
        "10 hosts": history.Search(hosts=ladc1[:10]),
        "a site (125 hosts)": history.Search(hosts=ladc1),
        "a service": history.Search(services=("Service 3",)),
        "state=CRITICAL": history.Search(service_states=(2,)),
        "kind=ack": history.Search(kinds=("ack",)),
        "a kind never written": history.Search(kinds=("adopted",)),
        "author=anna": history.Search(author="anna"),
        "an author never seen": history.Search(author="nobody"),
        "text alone": history.Search(text="ticket 4242"),
        "a site and text": history.Search(hosts=ladc1, text="ticket"),
        "offset=10000": history.Search(offset=10_000),
    }


def run(db: Database, label: str) -> None:
    print(f"\n{label}")
    for name, s in searches(time.time()).items():
        for _ in range(2):
            t = time.perf_counter()
            rows, _more = history.search(db, s)
            took = time.perf_counter() - t
        print(f"  {name:24s} {took * 1000:8.1f} ms  {len(rows):4d} rows")
    t = time.perf_counter()
    hosts, services = history.names(db)
    print(f"  {'names (for patterns)':24s} {(time.perf_counter() - t) * 1000:8.1f} ms  "
          f"{len(hosts)} hosts, {len(services)} services")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "central.sqlite"
        fill(path, args.events)
        db = SqliteDatabase(path)
        db.open()
        count = sqlite3.connect(path).execute("SELECT count(*) FROM event_history").fetchone()[0]
        run(db, f"SQLite: {args.events:,} problems, {count:,} history rows")
        if args.postgres:
            postgres(path)


def postgres(path: Path) -> None:
    import psycopg
    from checkd.engine.pgdb import PostgresDatabase
    from tests.postgres import Postgres
    with Postgres() as pg:
        dsn = pg.new_database()
        db = PostgresDatabase(dsn)
        db.open()
        src = sqlite3.connect(path)
        with psycopg.connect(dsn, autocommit=True) as conn:
            with conn.cursor().copy("COPY events FROM STDIN") as copy:
                for row in src.execute("SELECT * FROM events"):
                    copy.write_row(row)
            with conn.cursor().copy("COPY event_history (event_id, ts, kind, status, output, author) "
                                    "FROM STDIN") as copy:
                for row in src.execute("SELECT * FROM event_history ORDER BY rowid"):
                    copy.write_row(row)
            conn.execute("ANALYZE")
        try:
            run(db, "PostgreSQL 15, the same rows")
        finally:
            db.stop()


if __name__ == "__main__":
    main()
