#!/usr/bin/env python3
"""docs/weathermap-desktop.png and docs/weathermap-phone.png, from the demo's config.

A copy of conf.d/ on a free loopback port: eight days of RRD history for the demo
links (the demo plugin's values back in time, so "vs last week" has something to
compare with), then central and both pollers as real processes, and Chromium at
1600x900 and 390x844 once a backbone direction has gone red (it does for about a
minute in every five). Run from a checkout: `python3 contrib/weathermap_screenshots.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from central.graphs.settings import RrdSettings  # noqa: E402
from central.graphs.writer import Writer  # noqa: E402
from checkd.config import load_objects  # noqa: E402
from tests.browser import Browser  # noqa: E402

HISTORY = 8 * 86400
MAP = "/weathermap/backbone"


def demo_plugin():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("check_demo_link", REPO / "plugins" / "check_demo_link.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def copy_demo(tmp: Path, port: int) -> Path:
    conf = tmp / "conf.d"
    shutil.copytree(REPO / "conf.d", conf)
    for node in conf.glob("*.yaml"):
        node.write_text(node.read_text().replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
    return conf


def backfill(conf: Path, rrd: Path, until: float) -> None:
    """Each demo link's values every interval for HISTORY seconds up to `until`."""
    plugin = demo_plugin()
    objs = load_objects(conf / "objects")
    w = Writer(RrdSettings(dir=rrd.resolve()))
    for svc in objs.services.values():
        if svc.check.command.plugin != "check_demo_link":
            continue
        cap, load, swing, phase, rtt = svc.check.args
        step = int(svc.schedule.interval)
        items = []
        for t in range(int(until - HISTORY), int(until), step):
            out, in_, ms = plugin.sample(t, plugin.capacity(cap), float(load), float(swing), 300.0, float(rtt),
                                         float(phase))
            items.append((svc.host, svc.description, step, float(t), f"out={out:.0f} in={in_:.0f} rtt={ms:.2f}ms"))
        w.take(items)
        w.flush()


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def wait(url: str, pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred(fetch(url)):
                return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


async def shoot(url: str, out: Path) -> None:
    async with Browser(max_lifetime=120) as b:
        for name, size in (("desktop", (1600, 900, 1.0, False)), ("phone", (390, 844, 2.0, True))):
            page = await b.page(*size, dark=True)
            await page.goto(url + MAP)
            await page.screenshot(out / f"weathermap-{name}.png", full_page=name == "phone")
            print(f"wrote {out / f'weathermap-{name}.png'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    ap.add_argument("--wait-red", type=float, default=330.0, help="seconds to wait for a red link")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="checkd-weathermap-"))
    conf = copy_demo(tmp, port)
    print("writing eight days of history ...", flush=True)
    backfill(conf, tmp / "demo-state" / "rrd", time.time() - 30)
    procs = []
    try:
        def start(*argv: str) -> None:
            with open(tmp / "daemons.log", "ab") as log:
                procs.append(subprocess.Popen([sys.executable, "-m", "checkd", *argv], cwd=REPO,
                                              stdout=log, stderr=subprocess.STDOUT))
        start("central", "-c", str(conf / "central.yaml"))
        time.sleep(1.5)
        for p in sorted(conf.glob("poller-*.yaml")):
            start("poller", "-c", str(p))
        url = f"http://127.0.0.1:{port}"
        wait(url + MAP, lambda page: "wm-half band-nodata" not in page, 60, "every link's data")
        wait(url + MAP, lambda page: "wm-half band-red" in page, args.wait_red, "a link to go red")
        asyncio.run(shoot(url, args.out))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
