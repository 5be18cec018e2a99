"""RRD updates: metric updates per second a real central sustains for 100k metrics,
through rrdcached and writing files directly, what that costs ingest, and the p50/p99
time to render a graph.

    .venv/bin/python bench/rrd_updates.py [--metrics 100000] [--rounds 10] [--renders 200]
                                          [--modes rrdcached,direct,off,writer]

The load: 10,000 hosts x 10 services, each result with one perfdata label
(`time=0.0123s;1;2;0`), interval 60 s (so step 60 s: every file holds 8 days at
full resolution, 30-min and daily archives; ~180 KB each). 4 client processes (one
per poller token) post batches of 500, each waiting for its durable ack like the
forwarder. Round 0 gives every metric its first value (creating the files on the
first mode run); then `--rounds` rounds post every metric once more, back to back.

Per mode (a fresh central each time, the same RRD directory):
- rrdcached: a throwaway rrdcached on a unix socket (-w 120 -z 60 -t 4, so it also
  writes files during the run), central's writer talking to it in BATCH mode;
- direct: the writer updating the files itself with librrd;
- off: no rrd: section, the same load: ingest without graphs, for comparison;
- writer: the writer process alone, fed frames as fast as it reads them (no central,
  no HTTP): what it can store through rrdcached and directly, i.e. its headroom.

Figures: ingest results/s (acked), updates/s (values the writer reports stored,
from the first post of round 1 until the last value is stored), queue peak and
drops, CPU seconds of central, the writer and rrdcached per 1,000 updates; and
render time, measured by a client doing one request after another (two a second
while the rounds run, their CPU included above; back to back afterwards, idle): 800x250 day graphs with the
week-over-week line and a deployment marker, over 100 metrics given 8 days of
history first.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
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
from bench.central_ingest import write_config as ingest_config  # noqa: E402
from tests.helpers import free_port  # noqa: E402
from tests.rrdcached import Rrdcached  # noqa: E402

SERVICES_PER_HOST = 10
CLIENTS = 4
BATCH = 500
STEP = 60
HISTORY_HOSTS = 10              # h0..h9: 100 metrics with 8 days of history, the graphs rendered
DEPLOY_TOKEN = "bench-deploy"
RENDER_EVERY = 0.5              # while the rounds run: someone looking at graphs, not a render storm
TARGET_UPDATES = 20_000         # per second through rrdcached
TARGET_INGEST = 50_000          # results/s, the central issue's target
TARGET_RENDER = 0.150           # p50 seconds


def write_config(d: Path, port: int, metrics: int, rrd: str) -> Path:
    """central_ingest's configuration with one metric per service every STEP s, and graphs."""
    return ingest_config(d, port, metrics, service_extra=f", interval: {STEP}s",
                         node_extra=f"  deploy_tokens: {{bench: {DEPLOY_TOKEN}}}\n"
                                    f"  freshness: {{site_stale_after: 1h}}\n{rrd}")


def history(rrd_dir: Path, now: int) -> list[tuple[str, str]]:
    """8 days of a daily curve (this week 20% above the last) for the metrics that are rendered."""
    import rrdtool

    from central.graphs.catalog import Catalog, Entry
    from central.graphs.naming import Layout, ds_name, file_name
    from central.graphs.rra import create_args
    from central.graphs.settings import RrdSettings

    layout, s = Layout(rrd_dir), RrdSettings(dir=rrd_dir)
    first = (now - 8 * 86400) // STEP * STEP
    week_ago = now - 7 * 86400
    keys = []
    for h in range(HISTORY_HOSTS):
        host = f"h{h}.bench"
        entries = []
        for j in range(SERVICES_PER_HOST):
            service = f"svc{j}"
            path = layout.path(host, file_name(service, "time"))
            path.parent.mkdir(parents=True, exist_ok=True)
            rrdtool.create(str(path), "--start", str(first - 1), *create_args(STEP, "GAUGE", "time", s))
            times = range(first, now + 1, STEP)
            values = [f"{t}:{(0.05 + 0.03 * math.sin(2 * math.pi * t / 86400)) * (1.2 if t > week_ago else 1):.5f}"
                      for t in times]
            for i in range(0, len(values), 4000):
                rrdtool.update(str(path), *values[i:i + 4000])
            entries.append(Entry(service, "time", path.name, ds_name("time"), "s", "GAUGE", STEP, time.time()))
            keys.append((host, service))
        Catalog(layout).add(host, entries)
    return keys


def bodies(client: int, hosts: int, rounds: int, ts0: int) -> list[list[bytes]]:
    """Per round, this client's batches: its hosts (every CLIENTS-th) x all services, once each."""
    rnd = random.Random(client)
    out, seq = [], 0
    mine = [(h, s) for h in range(client, hosts, CLIENTS) for s in range(SERVICES_PER_HOST)]
    for r in range(rounds + 1):
        t = float(ts0 + r * 10)
        batches = []
        for i in range(0, len(mine), BATCH):
            batch = []
            for h, s in mine[i:i + BATCH]:
                seq += 1
                batch.append({"seq": seq, "host": f"h{h}.bench", "service": f"svc{s}", "status": 0,
                              "state_type": "HARD", "attempt": 1, "output": "OK - bench",
                              "perfdata": f"time={rnd.random() * 0.1:.4f}s;1;2;0",
                              "scheduled": t - 1, "started": t - 0.5, "finished": t})
            batches.append(json.dumps({"poller": f"p{client}", "site": "bench", "batch": batch}).encode())
        out.append(batches)
    return out


def client(i: int, url: str, hosts: int, rounds: int, ts0: int, ready: Any, go: Any, q: Any) -> None:
    import asyncio

    import aiohttp

    per_round = bodies(i, hosts, rounds, ts0)

    async def post(s: aiohttp.ClientSession, batches: list[list[bytes]]) -> int:
        done = 0
        for round_batches in batches:
            for body in round_batches:
                async with s.post(f"{url}/api/v1/results", data=body) as r:
                    assert r.status == 200, (r.status, await r.text())
                    await r.read()
                done += body.count(b'"seq"')     # the last batch of a client may be short
        return done

    async def run() -> None:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer tok{i}",
                                                  "Content-Type": "application/json"}) as s:
            await post(s, per_round[:1])
            ready.put(i)
            while not go.is_set():
                await asyncio.sleep(0.005)
            t0 = time.perf_counter()
            n = await post(s, per_round[1:])
            q.put((n, t0, time.perf_counter()))

    asyncio.run(run())


def get(url: str, timeout: float = 60) -> Any:
    return json.loads(urllib.request.urlopen(url, timeout=timeout).read())


def cpu(pid: int | None) -> float:
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))] if v else float("nan")


class Renders(threading.Thread):
    """One graph request after another, timed, until stopped (or `count` done)."""

    def __init__(self, url: str, keys: list[tuple[str, str]], count: int | None = None, every: float = 0.0):
        super().__init__(daemon=True)
        self.url, self.keys, self.count, self.every = url, keys, count, every
        self.times: list[float] = []
        self.failed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        rnd = random.Random(7)
        while not self.stop.is_set() and (self.count is None or len(self.times) < self.count):
            host, service = rnd.choice(self.keys)
            t0 = time.perf_counter()
            try:
                body = urllib.request.urlopen(f"{self.url}/graph/{host}/{service}.png?period=day", timeout=60).read()
                assert body[:4] == b"\x89PNG"
                self.times.append(time.perf_counter() - t0)
                self.stop.wait(max(0.0, self.every - (time.perf_counter() - t0)))
            except Exception:
                self.failed += 1
                time.sleep(0.05)


def run_mode(mode: str, args: argparse.Namespace, tmp: Path, rrd_dir: Path, keys: list[tuple[str, str]],
             ts0: int) -> dict[str, Any]:
    daemon = None
    rrd = ""
    if mode == "rrdcached":
        daemon = Rrdcached(tmp / "rrdcached", rrd_dir, write_every=120)
        (tmp / "rrdcached").mkdir(exist_ok=True)
        daemon.start()
        rrd = f"  rrd: {{dir: '{rrd_dir}', rrdcached: '{daemon.address}', queue: 400000}}\n"
    elif mode == "direct":
        rrd = f"  rrd: {{dir: '{rrd_dir}', queue: 400000}}\n"
    port = free_port()
    d = tmp / f"central-{mode}"
    node = write_config(d, port, args.metrics, rrd)
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "checkd", "central", "-c", str(node)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    out: dict[str, Any] = {"mode": mode}
    try:
        while True:
            try:
                get(f"{url}/api/v1/problems", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit("central exited")
                time.sleep(0.1)
        graphs = mode != "off"
        if graphs:
            for action in ("start", "finish"):
                body = {"action": action, "hosts": [h for h, _ in keys[::SERVICES_PER_HOST]], "module": "shop",
                        "revision": "4711", "engineer": "alice"}
                if action == "finish":
                    body = {"action": "finish", "id": did}
                req = urllib.request.Request(f"{url}/api/v1/deployments", json.dumps(body).encode(), method="POST",
                                             headers={"Authorization": f"Bearer {DEPLOY_TOKEN}",
                                                      "Content-Type": "application/json"})
                did = json.loads(urllib.request.urlopen(req).read())["id"]
        hosts = args.metrics // SERVICES_PER_HOST
        ready: Any = mp.Queue()
        done: Any = mp.Queue()
        go = mp.Event()
        t_first = time.perf_counter()
        procs = [mp.Process(target=client, args=(i, url, hosts, args.rounds, ts0, ready, go, done))
                 for i in range(CLIENTS)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get()
        if graphs:
            # Round 0 is stored (and the files created, the first time) before the rounds begin.
            while True:
                c = get(f"{url}/api/v1/graphs")
                if c["writer"].get("received", 0) >= args.metrics and not c["queued"] and not c["writer"]["pending"]:
                    break
                time.sleep(0.2)
            out["first_values_s"] = time.perf_counter() - t_first
            # Creating 100k files leaves ~18 GB to write back: not part of the steady state.
            t_sync = time.perf_counter()
            os.sync()
            out["sync_s"] = time.perf_counter() - t_sync
            out["created"] = c["writer"].get("created", 0)
            written0 = c["writer"].get("written", 0)
            writer_pid = c["writer_pid"]
        cpu0 = {"central": cpu(proc.pid), "writer": cpu(writer_pid if graphs else None),
                "rrdcached": cpu(daemon.proc.pid if daemon and daemon.proc else None)}
        sampler = Renders(url, keys, every=RENDER_EVERY) if graphs else None
        if sampler:
            sampler.start()
        t0 = time.perf_counter()
        go.set()
        results = [done.get() for _ in procs]
        for p in procs:
            p.join()
        total = sum(n for n, _, _ in results)
        ingest_wall = max(e for _, _, e in results) - min(s for _, s, _ in results)
        out["ingest_per_s"] = total / ingest_wall
        if graphs:
            peak_queue = 0
            expected = written0 + total
            while True:
                c = get(f"{url}/api/v1/graphs")
                peak_queue = max(peak_queue, c["queued"] + c["writer"].get("pending", 0))
                stored = c["writer"].get("written", 0) + c["writer"].get("rejected", 0) + c["dropped"]
                if stored >= expected or time.perf_counter() - t0 > 600:
                    break
                time.sleep(0.05)
            wall = time.perf_counter() - t0
            written = c["writer"].get("written", 0) - written0
            out.update(updates_per_s=written / wall, written=written, dropped=c["dropped"],
                       rejected=c["writer"].get("rejected", 0), peak_queue=peak_queue, writer_wall=wall)
            assert sampler is not None
            sampler.stop.set()
            sampler.join()
            out["render_loaded"] = sampler.times
            cpu1 = {"central": cpu(proc.pid), "writer": cpu(writer_pid),
                    "rrdcached": cpu(daemon.proc.pid if daemon and daemon.proc else None)}
            out["cpu_per_1000"] = {k: 1000 * (cpu1[k] - cpu0[k]) / max(1, written) for k in cpu0}
            idle = Renders(url, keys, count=args.renders)
            idle.run()
            out["render_idle"] = idle.times
            out["render_failed"] = sampler.failed + idle.failed
            if daemon:
                from central.graphs.rrdcached import Rrdcached as Client
                cl = Client(daemon.address)
                out["rrdcached_stats"] = cl.stats()
                cl.close()
        else:
            out["cpu_per_1000"] = {"central": 1000 * (cpu(proc.pid) - cpu0["central"]) / total}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        if daemon:
            daemon.stop()
    return out


def writer_alone(through: str, args: argparse.Namespace, tmp: Path, rrd_dir: Path, ts0: int) -> dict[str, Any]:
    """The writer process without central: round 0 (first sight of every file), then the
    rounds as fast as it reads them; updates/s until the last value is stored."""
    import marshal

    from central.graphs.feed import FRAME, STOP
    from central.graphs.settings import RrdSettings

    daemon = None
    if through == "rrdcached":
        (tmp / f"rrdcached-{through}-alone").mkdir(exist_ok=True)
        daemon = Rrdcached(tmp / f"rrdcached-{through}-alone", rrd_dir, write_every=120)
        daemon.start()
    settings = RrdSettings(dir=rrd_dir, rrdcached=daemon.address if daemon else "", queue=10_000_000)
    proc = subprocess.Popen([sys.executable, "-m", "central.graphs.writer", "--settings", settings.to_json(),
                             "--log-level", "warning"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    last: dict[str, Any] = {}

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            last.update(json.loads(line))
    threading.Thread(target=read, daemon=True).start()
    rnd = random.Random(1)
    names = [(f"h{h}.bench", f"svc{s}") for h in range(args.metrics // SERVICES_PER_HOST)
             for s in range(SERVICES_PER_HOST)]
    frames = []
    for r in range(args.rounds + 1):
        items = [(h, s, STEP, float(ts0 + r * 10), f"time={rnd.random() * 0.1:.4f}s;1;2;0") for h, s in names]
        round_frames = []
        for i in range(0, len(items), BATCH):
            data = marshal.dumps(items[i:i + BATCH])
            round_frames.append(FRAME.pack(len(data)) + data)
        frames.append(b"".join(round_frames))
    assert proc.stdin is not None
    try:
        proc.stdin.write(frames[0])
        proc.stdin.flush()
        while last.get("received", 0) < len(names) or last.get("pending", 1):
            time.sleep(0.05)
        written0, cpu0 = last.get("written", 0), cpu(proc.pid)
        t0 = time.perf_counter()
        for f in frames[1:]:
            proc.stdin.write(f)
        proc.stdin.flush()
        expected = written0 + args.rounds * len(names)
        while last.get("written", 0) + last.get("rejected", 0) < expected and time.perf_counter() - t0 < 600:
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        written = last.get("written", 0) - written0
        return {"mode": f"writer-{through}", "updates_per_s": written / wall, "written": written,
                "rejected": last.get("rejected", 0), "dropped": last.get("dropped", 0), "writer_wall": wall,
                "cpu_per_1000": {"writer": 1000 * (cpu(proc.pid) - cpu0) / max(1, written)}}
    finally:
        proc.stdin.write(STOP)          # a stop, as central's: the writer exits without a word
        proc.stdin.close()
        proc.wait(timeout=120)
        if daemon:
            daemon.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--renders", type=int, default=200)
    ap.add_argument("--modes", default="rrdcached,direct,off,writer")
    ap.add_argument("--dir", help="where the RRD files go (default: a temp dir; ~180 KB per metric)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = ap.parse_args()
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="checkd-rrd-bench-"))
    tmp = Path(tempfile.mkdtemp(prefix="checkd-rrd-bench-run-"))
    rrd_dir = base / "rrd"
    now = int(time.time())
    # History ends an hour ago; the rounds of every mode come after it, all in the past, and
    # after those of an earlier run in the same --dir (RRD time only goes forward).
    marker = base / "last-timestamp"
    ts0 = max(now - 3000, int(marker.read_text()) + 10 if marker.exists() else 0)
    span = 10 * (args.rounds + 2) * (len(args.modes.split(",")) + 1)
    if ts0 + span > now + 200:
        raise SystemExit(f"--dir {base} holds values up to {ts0 - 10}: wait {ts0 + span - now - 200} s before reusing it")
    base.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(ts0 + span))
    runs = []
    try:
        keys = history(rrd_dir, now - 3600)
        for i, mode in enumerate(args.modes.split(",")):
            start = ts0 + i * 10 * (args.rounds + 2)
            if mode == "writer":
                runs.append(writer_alone("rrdcached", args, tmp, rrd_dir, start))
                runs.append(writer_alone("direct", args, tmp, rrd_dir, start + 10 * (args.rounds + 2)))
            else:
                runs.append(run_mode(mode, args, tmp, rrd_dir, keys, start))
        du = subprocess.run(["du", "-sh", str(rrd_dir)], capture_output=True, text=True).stdout.split()[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; load average before: {os.getloadavg()[0]:.1f}")
    print(f"metrics: {args.metrics} ({args.metrics // SERVICES_PER_HOST} hosts x {SERVICES_PER_HOST}), step {STEP} s, "
          f"{args.rounds} rounds after the first values; RRD directory {du}")
    for r in runs:
        if r["mode"].startswith("writer-"):
            print(f"{r['mode']:>9}: the writer alone: updates {r['updates_per_s']:,.0f}/s ({r['written']:,} stored "
                  f"in {r['writer_wall']:.1f} s, refused {r['rejected']}), writer CPU s per 1,000: "
                  f"{r['cpu_per_1000']['writer']:.3f}")
            continue
        line = f"{r['mode']:>9}: ingest {r['ingest_per_s']:,.0f} results/s"
        if "updates_per_s" in r:
            line += (f"; updates {r['updates_per_s']:,.0f}/s ({r['written']:,} stored in {r['writer_wall']:.1f} s, "
                     f"dropped {r['dropped']}, refused {r['rejected']}, queue peak {r['peak_queue']:,}); "
                     f"first values of all metrics {r['first_values_s']:.1f} s ({r['created']:,} files created), "
                     f"then sync {r['sync_s']:.1f} s")
        print(line)
        print(f"{'':>11}CPU s per 1,000: " + ", ".join(f"{k} {v:.3f}" for k, v in r["cpu_per_1000"].items()))
        for what in ("render_loaded", "render_idle"):
            if r.get(what):
                t = r[what]
                print(f"{'':>11}render ({'during the rounds' if what == 'render_loaded' else 'idle'}, "
                      f"{len(t)} graphs): p50 {pct(t, 0.5) * 1000:.0f} ms, p99 {pct(t, 0.99) * 1000:.0f} ms, "
                      f"max {max(t) * 1000:.0f} ms")
        if r.get("render_failed"):
            print(f"{'':>11}render failures: {r['render_failed']}")
        if "rrdcached_stats" in r:
            s = r["rrdcached_stats"]
            print(f"{'':>11}rrdcached: " + ", ".join(f"{k} {s[k]:,}" for k in
                                                   ("UpdatesReceived", "DataSetsWritten", "UpdatesWritten",
                                                    "QueueLength") if k in s))
    cached = next((r for r in runs if r["mode"] == "rrdcached"), None)
    if cached:
        ok_u = cached["updates_per_s"] >= TARGET_UPDATES and cached["dropped"] == 0
        ok_r = pct(cached["render_idle"], 0.5) < TARGET_RENDER
        print(f"target updates >= {TARGET_UPDATES:,}/s through rrdcached: {'PASS' if ok_u else 'FAIL'}; "
              f"ingest with graphs >= {TARGET_INGEST:,}/s: "
              f"{'PASS' if cached['ingest_per_s'] >= TARGET_INGEST else 'FAIL'}; "
              f"render p50 < {TARGET_RENDER * 1000:.0f} ms: {'PASS' if ok_r else 'FAIL'}")
    if args.json:
        out = []
        for r in runs:
            r = dict(r)
            for what in ("render_loaded", "render_idle"):
                t = r.pop(what, None)
                if t:
                    r[what] = {"n": len(t), "p50": pct(t, 0.5), "p99": pct(t, 0.99), "max": max(t)}
            out.append(r)
        Path(args.json).write_text(json.dumps({
            "bench": "rrd_updates", "metrics": args.metrics, "rounds": args.rounds, "rrd_dir_size": du,
            "targets": {"updates_per_s": TARGET_UPDATES, "ingest_per_s": TARGET_INGEST,
                        "render_p50_s": TARGET_RENDER}, "runs": out}, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
