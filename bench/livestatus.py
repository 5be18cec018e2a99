"""Livestatus `GET services` against one central holding 100k services (docs/livestatus.md).

    .venv/bin/python bench/livestatus.py [--services 100000] [--rounds 5]

A real `python -m checkd central` (bench/central_ingest.py's config: 10 services per host,
one site) with `livestatus: {socket: ...}`, every service given one result (2% CRITICAL).
Then over the unix socket, each query on a new connection as most clients do, the median
of --rounds of the wall time from connect to the server's close, and the bytes answered:
all columns (csv and json), the columns NagVis asks for, `Filter: state != 0`, one host's
services, and Stats counts per state. Beside them the JSON API's GET /api/v1/status (the
same services in full) and GET /api/v1/problems (the problems) over HTTP. Last, how long
central takes to acknowledge a batch of 500 results, idle and while Livestatus answers every
column of every service again and again. The site never
goes stale (site_stale_after: 1d): central does not take over its checks meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.central_ingest import CLIENTS, SERVICES_PER_HOST, rss_mb, write_config  # noqa: E402
from tests.helpers import free_port  # noqa: E402

NAGVIS = ("description display_name state host_alias host_address plugin_output notes last_check next_check "
          "state_type current_attempt max_check_attempts last_state_change last_hard_state_change perf_data "
          "scheduled_downtime_depth acknowledged host_acknowledged host_scheduled_downtime_depth has_been_checked "
          "host_name check_command custom_variable_names custom_variable_values staleness")
QUERIES = {
    "all columns, csv": "GET services\n",
    "all columns, json": "GET services\nOutputFormat: json\n",
    "NagVis' 25 columns, json": f"GET services\nColumns: {NAGVIS}\nOutputFormat: json\n",
    "Filter: state != 0 (all columns, json)": "GET services\nFilter: state != 0\nOutputFormat: json\n",
    "Filter: host_name = one host (json)": "GET services\nFilter: host_name = h4242.bench\nOutputFormat: json\n",
    "Stats: count per state": "GET services\n" + "".join(f"Stats: state = {s}\n" for s in range(4)),
}


def ask(path: Path, request: str) -> tuple[float, int]:
    t = time.perf_counter()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(300)
        s.connect(str(path))
        s.sendall((request + "\n").encode())
        size = 0
        while chunk := s.recv(1 << 20):
            size += len(chunk)
    return time.perf_counter() - t, size


def fetch(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as r:
        size = len(r.read())
    return time.perf_counter() - t, size


def feed(url: str, services: int) -> int:
    """One result per service, 2% CRITICAL, as 4 pollers send them (batches of 2,000)."""
    hosts = services // SERVICES_PER_HOST
    now, problems = time.time(), 0
    keys = [(h, s) for h in range(hosts) for s in range(SERVICES_PER_HOST)]
    per = (len(keys) + CLIENTS - 1) // CLIENTS
    for p in range(CLIENTS):
        mine = keys[p * per:(p + 1) * per]
        for k in range(0, len(mine), 2000):
            batch = []
            for n, (h, s) in enumerate(mine[k:k + 2000], start=k + 1):
                status = 2 if (h * SERVICES_PER_HOST + s) % 50 == 7 else 0
                problems += status == 2
                batch.append({"seq": n, "host": f"h{h}.bench", "service": f"svc{s}", "status": status,
                              "state_type": "HARD", "attempt": 1, "output": f"{'CRITICAL' if status else 'OK'} - "
                              f"value {n}", "long_output": "", "perfdata": f"time={n % 97 / 100:.2f}s;1;2;0",
                              "scheduled": now - 2, "started": now - 1.5, "finished": now - 1})
            req = urllib.request.Request(f"{url}/api/v1/results", method="POST", data=json.dumps(
                {"poller": f"p{p}", "site": "bench", "batch": batch}).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer tok{p}"})
            with urllib.request.urlopen(req, timeout=300) as r:
                assert r.status == 200
    return problems


def post(url: str, poller: int, first_seq: int, n: int) -> float:
    """One batch of n OK results from poller p<poller>; seconds until central acknowledged it."""
    now = time.time()
    batch = [{"seq": first_seq + i, "host": f"h{i}.bench", "service": "svc0", "status": 0, "state_type": "HARD",
              "attempt": 1, "output": "OK - again", "long_output": "", "perfdata": "", "scheduled": now - 1,
              "started": now - 0.5, "finished": now} for i in range(n)]
    req = urllib.request.Request(f"{url}/api/v1/results", method="POST", data=json.dumps(
        {"poller": f"p{poller}", "site": "bench", "batch": batch}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer tok{poller}"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        assert r.status == 200
    return time.perf_counter() - t


def ingest_beside(url: str, live: Path, services: int, rounds: int) -> dict[str, float]:
    """Batches of 500 results acknowledged while nothing else runs, then while Livestatus
    answers every column of every service: does a big query hold up ingest?"""
    seq = (services + CLIENTS - 1) // CLIENTS + 1       # p0 goes on from its last result
    idle = []
    for _ in range(rounds):
        idle.append(post(url, 0, seq, 500))
        seq += 500
    busy: list[float] = []
    done = threading.Event()

    def query() -> None:
        while not done.is_set():
            ask(live, "GET services\nOutputFormat: json\n")
    worker = threading.Thread(target=query)
    worker.start()
    time.sleep(1.0)
    for _ in range(rounds):
        busy.append(post(url, 0, seq, 500))
        seq += 500
        time.sleep(0.2)
    done.set()
    worker.join()
    return {"idle_s": statistics.median(idle), "busy_s": statistics.median(busy), "busy_max_s": max(busy)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = ap.parse_args()
    figs: dict[str, Any] = {"bench": "livestatus", "services": args.services, "rounds": args.rounds, "queries": {}}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        port = free_port()
        node = write_config(d, port, args.services,
                            node_extra="  livestatus: {socket: live}\n  freshness: {site_stale_after: 1d}\n")
        url, live = f"http://127.0.0.1:{port}", d / "live"
        with open(d / "central.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "checkd", "central", "-c", str(node)], cwd=REPO,
                                    env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while not live.exists():
                assert proc.poll() is None and time.monotonic() < deadline, (d / "central.log").read_text()[-2000:]
                time.sleep(0.2)
            problems = feed(url, args.services)
            figs["problems"] = problems
            print(f"checkd Livestatus, {args.services:,} services ({problems:,} CRITICAL), median of "
                  f"{args.rounds} rounds; Python {platform.python_version()}, {os.cpu_count()} CPUs")

            def line(what: str, runs: list[tuple[float, int]]) -> None:
                med = statistics.median(t for t, _ in runs)
                figs["queries"][what] = {"s": med, "bytes": runs[0][1], "max_s": max(t for t, _ in runs)}
                print(f"{what:<44} {runs[0][1] / 1e6:8.2f} MB  {med:7.3f} s  (max {max(t for t, _ in runs):.3f} s)")

            for what, request in QUERIES.items():
                ask(live, request)      # warm-up
                line(f"livestatus {what}", [ask(live, request) for _ in range(args.rounds)])
            line("HTTP GET /api/v1/status (all, JSON)", [fetch(f"{url}/api/v1/status") for _ in range(args.rounds)])
            line("HTTP GET /api/v1/problems (JSON)", [fetch(f"{url}/api/v1/problems") for _ in range(args.rounds)])
            figs["ingest"] = ing = ingest_beside(url, live, args.services, args.rounds)
            print(f"a batch of 500 results acknowledged in {ing['idle_s']:.3f} s (median), "
                  f"{ing['busy_s']:.3f} s while every column of every service is being read "
                  f"(max {ing['busy_max_s']:.3f} s)")
            figs["rss_mb"] = rss_mb(proc.pid)
            print(f"central RSS {figs['rss_mb']:.0f} MB")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    if args.json:
        Path(args.json).write_text(json.dumps(figs) + "\n")


if __name__ == "__main__":
    main()
