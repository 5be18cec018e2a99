"""Central ingest benchmark: results/s accepted by one `checkd central` process
from 4 concurrent posting clients (separate processes), batches of 500, each
batch counted only once central has durably acked it; and central's RSS while
it holds the state of 100k services.

    .venv/bin/python bench/central_ingest.py [--services 100000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.peers.proctree import read_stat  # noqa: E402
SERVICES_PER_HOST = 10
CLIENTS = 4
BATCH = 500


def write_config(d: Path, port: int, services: int, service_extra: str = "", node_extra: str = "") -> Path:
    """N services as 10 services applied to a hostgroup (as real configs do), one site, 4 pollers.
    `service_extra`: more keys for each service; `node_extra`: more lines of the central section."""
    hosts = services // SERVICES_PER_HOST
    (d / "objects").mkdir(parents=True)
    lines = ['commands:\n  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$"\n',
             "hostgroups:\n  - {name: all}\n", "hosts:\n"]
    lines += [f"  - {{name: h{i}.bench, address: 127.0.0.1, site: bench, hostgroups: [all]}}\n" for i in range(hosts)]
    lines.append("services:\n")
    lines += [f"  - {{hostgroups: [all], description: svc{j}, command: check_dummy!0{service_extra}}}\n"
              for j in range(SERVICES_PER_HOST)]
    (d / "objects" / "bench.yaml").write_text("".join(lines))
    pollers = "".join(f"    p{i}: {{token: tok{i}, site: bench}}\n" for i in range(CLIENTS))
    node = d / "central.yaml"
    node.write_text(f"central:\n  listen: 127.0.0.1:{port}\n  state_dir: state\n  objects: objects\n"
                    f"  max_body: 16777216\n  log_level: warning\n  pollers:\n{pollers}{node_extra}")
    return node


def cpu_s(pid: int) -> float:
    st = read_stat(pid)
    return st.own if st else float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bodies(client: int, hosts: int, count: int) -> list[bytes]:
    """Pre-built request bodies, so the clients spend their CPU on HTTP, not on JSON."""
    rnd = random.Random(client)
    out, seq, now = [], 0, time.time()
    for b in range(count):
        batch = []
        for _ in range(BATCH):
            seq += 1
            h, s = rnd.randrange(hosts), rnd.randrange(SERVICES_PER_HOST)
            status = 2 if rnd.random() < 0.01 else 0
            t = now + seq * 1e-4
            batch.append({"seq": seq, "host": f"h{h}.bench", "service": f"svc{s}", "status": status,
                          "state_type": "HARD", "attempt": 1, "output": f"OK - bench result {seq}",
                          "long_output": "", "perfdata": f"time={rnd.random():.4f}s;1;2;0",
                          "scheduled": t - 1, "started": t - 0.5, "finished": t})
        out.append(json.dumps({"poller": f"p{client}", "site": "bench", "batch": batch}).encode())
    return out


def client(i: int, url: str, hosts: int, batches: int, start_at: float, q: mp.Queue) -> None:
    import aiohttp

    payloads = bodies(i, hosts, batches)

    async def run() -> tuple[int, float]:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer tok{i}",
                                                  "Content-Type": "application/json"}) as s:
            while time.time() < start_at:
                await asyncio.sleep(0.005)
            t0 = time.perf_counter()
            done = 0
            for body in payloads:
                # Like the forwarder: the next batch goes after the previous one is acked.
                async with s.post(f"{url}/api/v1/results", data=body) as r:
                    ans = await r.json()
                    assert r.status == 200 and ans["acked"] >= done + BATCH, (r.status, ans)
                done += BATCH
            return done, time.perf_counter() - t0

    q.put(asyncio.run(run()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=100_000)
    ap.add_argument("--batches", type=int, default=120, help="batches per client")
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                    help="postgresql: a throwaway PostgreSQL 15 cluster on 127.0.0.1 (tests/postgres.py)")
    ap.add_argument("--graphs", action="store_true",
                    help="with an rrd: section (every result's perfdata graphed; on PostgreSQL also "
                         "the shared feed a standby central follows, docs/ha.md)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = ap.parse_args()
    from tests.helpers import free_port

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        port = free_port()
        node_extra = ""
        if args.store == "postgresql":
            from tests.postgres import Postgres
            pg = stack.enter_context(Postgres())
            node_extra = f'  store: postgresql\n  postgresql: {{dsn: "{pg.new_database()}"}}\n'
        if args.graphs:
            node_extra += "  rrd: {dir: rrd}\n"
        node = write_config(Path(tmp), port, args.services, node_extra=node_extra)
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "checkd", "central", "-c", str(node)], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            while True:
                try:
                    urllib.request.urlopen(f"{url}/api/v1/problems", timeout=1).read()
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise SystemExit("central exited")
                    time.sleep(0.1)
            startup = time.perf_counter() - t0
            rss_idle = rss_mb(proc.pid)
            hosts = args.services // SERVICES_PER_HOST
            q: mp.Queue = mp.Queue()
            start_at = time.time() + 3.0 + args.batches * 0.01     # after every client built its bodies
            procs = [mp.Process(target=client, args=(i, url, hosts, args.batches, start_at, q))
                     for i in range(CLIENTS)]
            cpu0 = cpu_s(proc.pid)
            for p in procs:
                p.start()
            results = [q.get() for _ in procs]
            # Central's own CPU per result: steadier than results/s on a shared 2-core machine,
            # where the clients take their share of the same cores.
            cpu = cpu_s(proc.pid) - cpu0
            for p in procs:
                p.join()
            total = sum(n for n, _ in results)
            wall = max(t for _, t in results)
            # Fill every service once more so central holds the state of all of them.
            status = json.loads(urllib.request.urlopen(f"{url}/api/v1/status", timeout=60).read())
            known = sum(1 for s in status["services"] if s["last_check"])
            rss_full = rss_mb(proc.pid)
            problems = len(json.loads(urllib.request.urlopen(f"{url}/api/v1/problems").read())["problems"])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    print(f"services configured: {args.services} (startup {startup:.1f} s, RSS {rss_idle:.0f} MB idle)")
    print(f"ingest: {total} results in {wall:.2f} s = {total / wall:,.0f} results/s "
          f"({CLIENTS} clients, batches of {BATCH}, durable acks, store {args.store}"
          f"{', graphs' if args.graphs else ''})")
    print(f"central CPU: {cpu:.2f} s, {cpu / total * 1e6:,.0f} ms per 1,000 results")
    print(f"services with a stored state: {known}; open problems: {problems}; RSS {rss_full:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "bench": "central_ingest", "store": args.store, "graphs": args.graphs, "services": args.services, "clients": CLIENTS, "batch": BATCH,
            "startup_s": startup, "rss_idle_mb": rss_idle, "results": total, "wall_s": wall,
            "results_per_s": total / wall, "central_cpu_s": cpu,
            "cpu_ms_per_1000": cpu / total * 1e6, "known": known, "problems": problems, "rss_mb": rss_full}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
