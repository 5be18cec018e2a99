"""`checkd demo` (`make demo`): the example conf.d/ on loopback.

First every example check runs once and its parsed result is printed; then
central and one poller per example site run as real processes until Ctrl-C,
with a short status summary every few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from checkd.config import load_node
from checkd.runonce import print_results, run_all, select

REPO = Path(__file__).resolve().parents[1]


def start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "checkd", *args], cwd=REPO)


def summary(url: str) -> str:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/problems", timeout=2) as r:
            problems = json.load(r)
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"central not answering yet ({e})"
    items = problems.get("problems", problems) if isinstance(problems, dict) else problems
    lines = [f"{len(items)} open problem(s):"]
    for p in items[:10]:
        target = f"{p.get('host')}/{p.get('service') or '(host)'}"
        lines.append(f"  {p.get('state', '?'):<9} {target:<40} [ID#:{p.get('id', p.get('event_id'))}]")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    conf = (args.conf or REPO / "conf.d").resolve()
    central_file = conf / "central.yaml"
    pollers = sorted(conf.glob("poller-*.yaml"))
    print(f"== every example check, run once ({conf})", flush=True)
    for node_file in pollers:
        node, objs = load_node(node_file)
        print_results(asyncio.run(run_all(objs, node, select(objs, node, [], False))))
    if args.once:
        return 0
    central_node, central_objs = load_node(central_file)
    url = f"http://{central_node.listen[0]}:{central_node.listen[1]}"
    procs = [start(["central", "-c", str(central_file)])]
    time.sleep(1.0)
    procs += [start(["poller", "-c", str(p)]) for p in pollers]
    maps = f", weather map: {url}/weathermap" if central_objs.weathermaps else ""
    print(f"\n== central on {url} (NOC page: {url}/{maps}), {len(pollers)} pollers; Ctrl-C stops them", flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for _ in range(100):
                if stopping or any(p.poll() is not None for p in procs):
                    break
                time.sleep(0.1)
            dead = [p for p in procs if p.poll() is not None]
            if dead and not stopping:
                print(f"a demo process exited (code {dead[0].returncode}); stopping the demo", file=sys.stderr)
                return 1
            if not stopping:
                print(summary(url), flush=True)
    finally:
        stop_all(procs)
    return 0


def stop_all(procs: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    """SIGTERM to each demo process at once, then wait for each (SIGKILL after `timeout`)."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
