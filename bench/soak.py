"""Soak: 30 days of a 10k-service site, compressed. Central's engine (the same Engine,
SQLite store and pruner a central runs) on a simulated clock: 1% of the services
flap (CRITICAL and OK in turn, every 5 minutes: an event opened or closed, its
history and notifications, each time), the others report OK; retention keeps
`--keep` days. After each simulated day: the database's size on disk. On the days
given by --measure, a real `checkd central` is started on that state directory and
the NOC page, the problems API, a history search and an availability report are
timed (medians). Growth must stop once the retention age is reached; the times must
stay flat.

    .venv/bin/python bench/soak.py [--services 10000] [--days 30] [--keep 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from central.prune import Keep, Pruner                      # noqa: E402
from checkd.config import load_objects                      # noqa: E402
from checkd.engine.db import SqliteDatabase                 # noqa: E402
from checkd.engine.engine import Engine                     # noqa: E402
from checkd.engine.ids import IdAllocator                   # noqa: E402
from checkd.engine.notify.channels import Channels          # noqa: E402
from checkd.engine.notify.dispatch import Settings          # noqa: E402
from checkd.engine.notify.notification import Channel, Notification  # noqa: E402
from checkd.result import CheckResult                       # noqa: E402
from checkd.states import StateType                         # noqa: E402

PER_HOST = 10
STEP = 300.0                    # simulated seconds between flaps (a 5-minute check interval)
OK_EVERY = 6 * 3600.0           # the steady services report this often (only the latest is kept)
DAY = 86400.0


class Sink:
    """A channel that takes everything (the mail server of the simulation)."""

    carries_graphs = False

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, n: Notification) -> None:
        self.sent += 1


def write_objects(d: Path, services: int) -> None:
    hosts = services // PER_HOST
    lines = ["commands:\n  check_dummy: \"/usr/lib/nagios/plugins/check_dummy $ARG1$\"\n",
             "contacts:\n  - {name: ops, email: ops@example.com}\n",
             "hostgroups:\n  - {name: all}\n", "hosts:\n"]
    lines += [f"  - {{name: h{i}.soak, address: 127.0.0.1, site: soak, hostgroups: [all], contacts: [ops]}}\n"
              for i in range(hosts)]
    lines.append("services:\n")
    lines += [f"  - {{hostgroups: [all], description: svc{j}, command: check_dummy!0, contacts: [ops], "
              f"max_attempts: 1}}\n" for j in range(PER_HOST)]
    (d / "objects").mkdir(parents=True, exist_ok=True)
    (d / "objects" / "soak.yaml").write_text("".join(lines))


def db_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in state.glob("central.sqlite*"))


async def simulate(d: Path, services: int, days: int, keep_days: float, measure: set[int],
                   out: dict[str, Any]) -> None:
    objs = load_objects(d / "objects")
    sink = Sink()
    db = SqliteDatabase(d / "state" / "central.sqlite")
    clock = {"now": time.time() - days * DAY}
    engine = Engine(db, objs, Channels({Channel.EMAIL: sink}, None, Settings()), IdAllocator(),
                    clock=lambda: clock["now"])
    await asyncio.to_thread(engine.load)
    engine.start_writing()
    await engine.write(engine.ids.refill())
    await engine.run(sending=True)
    pruner = Pruner(engine, Keep.from_section({"keep": keep_days * DAY, "batch": 500}), clock=lambda: clock["now"],
                    pause=0.0)
    keys = [(f"h{i}.soak", f"svc{j}") for i in range(services // PER_HOST) for j in range(PER_HOST)]
    flappers = keys[:: 100]                 # 1%
    steady = [k for k in keys if k not in set(flappers)]
    state = {k: 0 for k in flappers}
    last_ok = -OK_EVERY
    last_prune = -1.0
    start = clock["now"]
    out["days"] = []
    for day in range(1, days + 1):
        t_day = time.monotonic()
        end_of_day = start + day * DAY
        while clock["now"] < end_of_day:
            clock["now"] += STEP
            now = clock["now"]
            results = []
            for k in flappers:
                state[k] = 0 if state[k] else 2
                results.append(CheckResult(k[0], k[1], state[k], StateType.HARD, 1, f"flap {state[k]}", "", "",
                                           now, now, now))
            if now - last_ok >= OK_EVERY:
                last_ok = now
                results += [CheckResult(h, s, 0, StateType.HARD, 1, "ok", "", "", now, now, now) for h, s in steady]
            ops, _ = engine.apply("soak", results)
            await engine.commit(ops, engine.decide(now))
            ops, plan = engine.tick(now)            # five minutes of the ticker, in one step
            if ops or plan.ops:
                await engine.commit(ops, plan)
            if now - last_prune >= 600:
                last_prune = now
                await pruner.round()
        await engine.write([])
        with __import__("sqlite3").connect(db.path) as conn:     # the size a checkpointed file has
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        row = {"day": day, "db_mb": db_bytes(d / "state") / 1e6, "sim_s": time.monotonic() - t_day,
               "pruned_events": pruner.total.events}
        out["days"].append(row)
        print(f"day {day:2d}: database {row['db_mb']:7.1f} MB, {pruner.total.events} events pruned so far, "
              f"{sink.sent} notifications sent, simulated in {row['sim_s']:.1f} s", flush=True)
        if day in measure:
            await engine.stop()
            out.setdefault("measured", {})[str(day)] = measure_central(d, start + (day - 1) * DAY, end_of_day)
            engine = Engine(db := SqliteDatabase(d / "state" / "central.sqlite"), objs,
                            Channels({Channel.EMAIL: sink}, None, Settings()), IdAllocator(),
                            clock=lambda: clock["now"])
            await asyncio.to_thread(engine.load)
            engine.start_writing()
            await engine.write(engine.ids.refill())
            await engine.run(sending=True)
            pruner.engine = engine
    await engine.stop()


def measure_central(d: Path, since: float, until: float, rounds: int = 15) -> dict[str, float]:
    """A real central on the day's state directory (retention long, so it prunes nothing):
    median milliseconds of the pages and calls an operator uses."""
    from tests.helpers import free_port
    port = free_port()
    node = d / "central.yaml"
    node.write_text(f"central:\n  listen: 127.0.0.1:{port}\n  state_dir: state\n  objects: objects\n"
                    f"  log_level: warning\n  retention: {{keep: 3650d}}\n  api_tokens: {{ops: soak}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "checkd", "central", "-c", str(node)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v1/problems", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > 120:
                    raise SystemExit("central did not start on the soak's state directory")
                time.sleep(0.1)
        startup = time.monotonic() - t0
        calls = {"noc_page": "/", "problems_api": "/api/v1/problems",
                 "history_search": f"/api/v1/history?since={since:.0f}&until={until:.0f}&limit=100",
                 "availability_day": f"/api/v1/availability?hostgroup=all&since={since:.0f}&until={until:.0f}"}
        out: dict[str, float] = {"startup_s": startup}
        for name, path in calls.items():
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                try:
                    urllib.request.urlopen(url + path, timeout=60).read()
                except urllib.error.HTTPError as e:       # a call this checkd does not have (yet)
                    if e.code == 404:
                        break
                    raise
                times.append((time.perf_counter() - t) * 1000)
            if times:
                out[f"{name}_ms"] = statistics.median(times)
        return out
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--keep", type=float, default=7.0, help="retention in days (docs/retention.md)")
    ap.add_argument("--measure", default="1,30", help="days on which a real central is timed")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    measure = {int(x) for x in args.measure.split(",") if x}
    out: dict[str, Any] = {"bench": "soak", "services": args.services, "simulated_days": args.days,
                           "keep_days": args.keep, "flapping": args.services // 100}
    d = Path(tempfile.mkdtemp(prefix="checkd-soak-"))
    try:
        write_objects(d, args.services)
        t0 = time.monotonic()
        asyncio.run(simulate(d, args.services, args.days, args.keep, measure, out))
        out["wall_s"] = time.monotonic() - t0
    finally:
        shutil.rmtree(d, ignore_errors=True)
    sizes = [r["db_mb"] for r in out["days"]]
    keep = int(args.keep)
    if len(sizes) > keep + 1:
        out["growth_after_keep_mb"] = max(sizes[keep:]) - sizes[keep]
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(json.dumps({k: v for k, v in out.items() if k != "days"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
