"""Poller throughput: a real `checkd poller` process at N services, exec and embedded,
side by side with Debian's nagios4 on the same load, in the same run.

    .venv/bin/python bench/poller_throughput.py [--sizes 1000,10000,50000] [--interval 10] [--duration 20]

Prints checks/s achieved vs scheduled, check latency median/p99/max, CPU seconds
per 1,000 checks (poller, exec workers and every plugin), RSS (poller + workers);
then nagios4 on the same load and the raw spawn limit of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.peers.proctree import descendants, read_stat, sample_tree  # noqa: E402
from bench.peers.proctree import rss_mb as tree_rss  # noqa: E402
COMMANDS = {
    "exec": "$PLUGINDIR$/check_dummy 0 ok",
    "embedded": {"embedded": "check_dummy", "args": ["0", "ok"]},
    "script": f"{sys.executable} $CHECKD_PLUGINDIR$/check_dummy.py 0 ok",
}


PLUGIN = ["/usr/lib/nagios/plugins/check_dummy", "0", "ok"]


def spawn_limit(raw: dict[str, Any]) -> float:
    """The machine's spawn limit from one raw_spawn_rate result: its fastest method (the C
    loop on a quiet machine; on a busy one whichever ran quietest)."""
    return max(x for x in (raw.get("per_s"), raw.get("posix_spawn", {}).get("per_s"),
                           raw.get("popen", {}).get("per_s")) if x)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(d: Path, services: int, interval: float, mode: str, port: int, concurrency: int) -> Path:
    (d / "objects").mkdir(parents=True)
    per_host = 10
    cmd = json.dumps(COMMANDS[mode])
    lines = [f"commands:\n  bench: {cmd}\nhosts:\n"]
    lines += [f"  - {{name: h{h}.bench, address: 127.0.0.1}}\n" for h in range((services + per_host - 1) // per_host)]
    lines.append("services:\n")
    lines += [f"  - {{host: h{i // per_host}.bench, description: s{i}, command: bench, interval: {interval}s,"
              f" max_attempts: 1}}\n" for i in range(services)]
    (d / "objects" / "bench.yaml").write_text("".join(lines))
    node = d / "poller.yaml"
    node.write_text(f"poller:\n  name: poller-bench\n  site: bench\n  central: http://127.0.0.1:{port}\n"
                    f"  token: t\n  state_dir: state\n  objects: objects\n  max_concurrent_checks: {concurrency}\n"
                    f"  log_level: warning\n")
    return node


def cpu_seconds(pid: int) -> float:
    """CPU of the poller, its exec workers and every plugin they ran (reaped ones
    are in their parents' cutime/cstime, running ones are counted themselves)."""
    return sum(st.own + st.children for st in sample_tree(pid).stats.values())


def rss_mb(pid: int) -> float:
    """The poller plus its long-lived exec workers."""
    # One read of each process's stat: a plugin that exits between two reads is None the second time.
    return sum(tree_rss(p) for p in [pid, *descendants(pid)] if (st := read_stat(p)) and "python" in st.comm)


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_checkd(services: int, interval: float, duration: float, mode: str, concurrency: int = 256) -> dict[str, Any]:
    """One poller run; the measurement window starts after one full interval of warm-up."""
    tmp = Path(tempfile.mkdtemp(prefix="checkd-bench-"))
    port = free_port()
    node = write_config(tmp, services, interval, mode, port, concurrency)
    sink = subprocess.Popen([sys.executable, str(REPO / "bench" / "sink_central.py"), str(port)])
    poller = None
    try:
        wait_port(port)
        started = time.time()           # before the fork and exec: they are start-up too
        poller = subprocess.Popen([sys.executable, "-m", "checkd", "poller", "-c", str(node)], cwd=REPO)
        # Warm-up: one interval after the first result arrives. At 100k services loading the
        # objects alone takes longer than an interval, and that is start-up, not throughput.
        while not (first := get_json(f"http://127.0.0.1:{port}/stats?since=0&until=0")["first_arrival"]):
            if poller.poll() is not None or time.time() - started > 600:
                raise RuntimeError(f"the poller delivered no result ({time.time() - started:.0f} s)")
            time.sleep(0.2)
        first_result_s = first - started      # when the sink had it, not when this loop looked
        time.sleep(interval + 3)
        t0, c0 = time.time(), cpu_seconds(poller.pid)
        time.sleep(duration)
        t1, c1 = time.time(), cpu_seconds(poller.pid)
        rss = rss_mb(poller.pid)
        time.sleep(1.5)   # let the window's results arrive
        s = get_json(f"http://127.0.0.1:{port}/stats?since={t0}&until={t1}")
        n = s["count"]
        return {"impl": f"checkd {mode}", "services": services, "scheduled_per_s": services / interval,
                "checks_per_s": n / (t1 - t0), "latency_median": s["latency_median"],
                "latency_p99": s["latency_p99"], "latency_max": s["latency_max"],
                "cpu_s_per_1000": (c1 - c0) / n * 1000 if n else float("nan"), "rss_mb": rss,
                "first_result_s": first_result_s}
    finally:
        if poller is not None:
            stop(poller)
        stop(sink)
        shutil.rmtree(tmp, ignore_errors=True)


def fmt(r: dict[str, Any]) -> str:
    def f(key: str, spec: str) -> str:
        v = r.get(key)
        return format(v, spec) if isinstance(v, (int, float)) else "-"
    return (f"{r['impl']:<22} {r['services']:>7} {f('scheduled_per_s', '8.0f')} {f('checks_per_s', '9.0f')} "
            f"{f('latency_median', '9.3f')} {f('latency_p99', '9.3f')} {f('latency_max', '8.3f')} "
            f"{f('cpu_s_per_1000', '8.2f')} {f('rss_mb', '7.0f')}")


HEADER = (f"{'implementation':<22} {'services':>7} {'sched/s':>8} {'checks/s':>9} {'lat med':>9} "
          f"{'lat p99':>9} {'lat max':>8} {'cpu/1k':>8} {'RSS MB':>7}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,50000")
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--modes", default="exec,embedded")
    p.add_argument("--no-nagios", action="store_true")
    p.add_argument("--script-services", type=int, default=2000,
                   help="load for the forked Python script run (0: skip)")
    p.add_argument("--script-concurrency", type=int, default=256,
                   help="max_concurrent_checks of the forked Python script run (256 thrashes a busy 2-core machine)")
    p.add_argument("--icinga-sizes", default="", help="sizes at which icinga2 runs too (e.g. 10000)")
    p.add_argument("--raw-n", type=int, default=10000, help="spawns per raw spawn limit run")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = p.parse_args()
    rows = []
    from bench.raw_spawn import raw_spawn_rate
    raw = raw_spawn_rate(PLUGIN, n=args.raw_n, runs=3)
    print(f"raw spawn limit (C posix_spawn loop, 32 in flight, median of 3): {raw['per_s']:.0f}/s, "
          f"{raw['cpu_s_per_1000']:.2f} CPU s per 1,000", flush=True)
    print(HEADER, flush=True)
    if args.script_services:
        rows.append(run_checkd(args.script_services, args.interval, args.duration, "script",
                               args.script_concurrency))
        print(fmt(rows[-1]), flush=True)
    for n in (int(x) for x in args.sizes.split(",")):
        for mode in args.modes.split(","):
            rows.append(run_checkd(n, args.interval, args.duration, mode))
            print(fmt(rows[-1]), flush=True)
            if mode == "exec" and n / args.interval > spawn_limit(raw):
                # The spawn limit again, right after this run: the VM's load moves within a run
                # (900-2,300/s), and exec at saturation is compared with the limit of the same
                # minutes (bench/run.py).
                after = spawn_limit(raw_spawn_rate(PLUGIN, n=max(1000, args.raw_n // 2), runs=1))
                rows[-1]["raw_after_per_s"] = after
                print(f"  raw spawn limit right after: {after:.0f}/s", flush=True)
        if not args.no_nagios:
            from bench.peers.nagios4 import run_nagios4
            for workers in (None, 8):
                r = run_nagios4(n, args.interval, args.duration, workers=workers)
                r = {**r, "impl": f"nagios4 workers={workers or 'default'}", "services": n}
                rows.append(r)
                print(fmt(r), flush=True)
        if str(n) in args.icinga_sizes.split(","):
            from bench.peers.icinga2 import run_icinga2
            r = run_icinga2(n, args.interval, args.duration)
            r = {**r, "impl": "icinga2", "services": n}
            rows.append(r)
            print(fmt(r), flush=True)
    out = {"bench": "poller_throughput", "interval": args.interval, "duration": args.duration,
           "raw": raw, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str) + "\n")
    summarize(rows, raw)
    print(json.dumps(out, indent=1, default=str))


def summarize(rows: list[dict[str, Any]], raw: dict[str, Any]) -> None:
    """The ratios the targets are stated in, all from this one run."""
    def best(prefix: str) -> dict[str, Any] | None:
        cands = [r for r in rows if r["impl"].startswith(prefix) and r["checks_per_s"]]
        return max(cands, key=lambda r: r["checks_per_s"], default=None)
    exec_, emb, script, nag = best("checkd exec"), best("checkd embedded"), best("checkd script"), best("nagios4")
    print("\nsummary (same run):")
    if exec_:
        print(f"  exec peak {exec_['checks_per_s']:.0f}/s = {exec_['checks_per_s'] / raw['per_s']:.0%} of the raw spawn limit")
    if exec_ and nag:
        print(f"  exec peak / nagios4 peak ({nag['impl']}): {exec_['checks_per_s'] / nag['checks_per_s']:.2f}x")
    if emb and script:
        print(f"  embedded peak / forked Python script peak: {emb['checks_per_s'] / script['checks_per_s']:.0f}x")


if __name__ == "__main__":
    main()
