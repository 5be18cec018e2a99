"""The weather map page (docs/weathermap.md) in a real headless Chromium, against a real
central with RRD graphs: results with perfdata come in through the poller API, and the
link's half turns from green to red on a page that is never reloaded; latency and the
week-over-week change (from RRD history written a week back) are shown; the link opens
its graphs; on a phone no label covers another. And `checkd check-config` names
FILE:LINE for a map's mistakes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from checkd import perfdata
from tests.browser import Browser, Page
from tests.central_proc import CentralProc, result
from tests.helpers import missing
from tests.png import decode
from tests.test_config import REPO, assert_error, check_config

WEEK = 604800
OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
hosts:
  - {name: router1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: router2.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: router3.ladc1, address: 127.0.0.1, site: ladc1}
services:
  - {host: router1.ladc1, description: Uplink, command: "check_dummy!0!ok", interval: 60s}
  - {host: router2.ladc1, description: Uplink, command: "check_dummy!0!ok", interval: 60s}
  - {host: router3.ladc1, description: Uplink, command: "check_dummy!0!ok", interval: 60s}
weathermaps:
  - name: wan
    title: WAN
    width: 1000
    height: 600
    sites:
      - {name: ladc1, x: 100, y: 300}
      - {name: ny, x: 900, y: 300, label: New York}
      - {name: ams, x: 500, y: 60, label: Amsterdam}
    links:
      - from: ladc1
        to: ny
        capacity: 1Gbit
        out: {host: router1.ladc1, service: Uplink, label: out}
        in: {host: router1.ladc1, service: Uplink, label: in}
        latency: {host: router1.ladc1, service: Uplink, label: rtt}
      - from: ny
        to: ams
        capacity: 100Mbit
        out: {host: router2.ladc1, service: Uplink, label: tx, unit: bytes}
        in: {host: router2.ladc1, service: Uplink, label: rx, unit: bytes}
      - from: ladc1
        to: ams
        capacity: 1G
        out: {host: router3.ladc1, service: Uplink, label: out}
      - from: ny
        to: ladc1
        name: backup
        capacity: 100Mbit
        out: {host: router3.ladc1, service: Uplink, label: back}
"""
LOW = "out=80000000 in=30000000 rtt=20.4ms"            # 8% and 3% of 1 Gbit/s
HIGH = "out=950000000 in=30000000 rtt=21ms"            # 95%: past the default red at 90%
DESKTOP, PHONE = (1600, 900, 1.0, False), (390, 844, 1.0, True)
OUT_HALF = "#link-1 .wm-half[data-dir=out]"


def backfill_week_ago(rrd_dir: Path, now: float) -> None:
    """RRD history of router1.ladc1/Uplink a week back (out at 64 Mb/s), written by the
    writer's own code before central starts, as the files a week of checks would leave."""
    try:
        from central.graphs.settings import RrdSettings
        from central.graphs.writer import Writer
    except ImportError:
        missing("the rrdtool Python binding")
    w = Writer(RrdSettings(dir=rrd_dir.resolve()))
    start = int(now - WEEK - 3600)
    w.take([("router1.ladc1", "Uplink", 60, float(t), "out=64000000 in=30000000 rtt=20ms")
            for t in range(start, start + 2 * 3600, 60)])
    w.flush()


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralProc]:
    tmp = tmp_path_factory.mktemp("weathermap")
    backfill_week_ago(tmp / "rrd", time.time())
    c = CentralProc(tmp, objects=OBJECTS, extra="  rrd: {dir: rrd}\n")
    c.start()
    try:
        yield c
    finally:
        c.stop()


def post(c: CentralProc, seq: int, host: str, perfdata: str, finished: float | None = None) -> None:
    status, body = c.post_results("poller-ladc1", [result(seq, host, "Uplink", 0, "ok", perfdata=perfdata,
                                                          finished=finished)])
    assert status == 200, body


async def pixel_at(page: Page, half: str, shot: Path) -> tuple[int, int, int]:
    """The screenshot's colour a quarter of the way from a half-link's site to its tip:
    on the arrow, clear of the labels and the site's box."""
    x, y = await page.eval(f"""(() => {{ const el = document.querySelector({half!r});
        const pts = el.getAttribute('points').split(' ').map(p => p.split(',').map(Number));
        const ax = (pts[0][0] + pts[6][0]) / 2, ay = (pts[0][1] + pts[6][1]) / 2;
        const p = el.ownerSVGElement.createSVGPoint();
        p.x = ax + (pts[3][0] - ax) / 4; p.y = ay + (pts[3][1] - ay) / 4;
        const q = p.matrixTransform(el.getScreenCTM()); return [Math.round(q.x), Math.round(q.y)]; }})()""")
    await page.screenshot(shot)
    _, _, rows = decode(shot.read_bytes())
    return rows[y][x]


async def apart(page: Page, svg: str, width: int) -> list[list[float]]:
    """The label and site boxes of a map, on screen: every one of them, none over another."""
    boxes = await page.eval(f"[...document.querySelector({svg!r}).querySelectorAll('.wm-label rect, .wm-site rect')]"
                            ".map(r => { const b = r.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })")
    assert len(boxes) == 3 + 2 + 2 + 2 + 3      # link 1: two halves and latency; links 2-4: two halves; sites
    for i, p in enumerate(boxes):
        assert 0 <= p[0] and p[2] <= width + 0.5, f"box {i} runs off the screen: {p}"
        for q in boxes[i + 1:]:
            assert p[2] <= q[0] or q[2] <= p[0] or p[3] <= q[1] or q[3] <= p[1], f"boxes overlap: {p} {q}"
    return boxes


def get(c: CentralProc, path: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(c.url + path, timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def test_link_turns_red_past_its_threshold_on_a_live_page_and_opens_its_graphs(
        central: CentralProc, tmp_path: Path) -> None:
    c = central
    post(c, 1, "router1.ladc1", LOW)
    post(c, 2, "router3.ladc1", "out=100000000", finished=time.time() - 600)    # 10 minutes old: stale

    async def run() -> None:
        async with Browser() as b:
            page = await b.page(*DESKTOP, dark=True)
            await page.goto(c.url + "/weathermap?refresh=1")       # the only map: redirected to it
            assert await page.eval("location.pathname") == "/weathermap/wan"
            half = "document.querySelector('#link-1 .wm-half[data-dir=out]')"
            assert "band-green" in await page.eval(f"{half}.getAttribute('class')")
            r, g, bl = await pixel_at(page, OUT_HALF, tmp_path / "low.png")
            assert g > r + 40 and g > bl + 40, f"not green at low traffic: {(r, g, bl)}"
            labels = await page.eval("[...document.querySelectorAll('#link-1 .wm-label')].map(e => e.textContent)")
            assert "80.0 Mb/s 8%" in labels[0] and "+25% vs last week" in labels[0], labels
            assert labels[1].startswith("30.0 Mb/s 3%"), labels
            assert "20.4 ms" in labels[2], "latency at the link's middle"
            # The second link has no result: grey, and the card says why.
            await apart(page, "svg.wm-full", DESKTOP[0])
            assert "band-nodata" in await page.eval("document.querySelector('#link-2 .wm-half').getAttribute('class')")
            cards = await page.eval("document.querySelector('.wm-cards').textContent")
            assert "no result yet" in cards
            assert "no 'back' in its perfdata (it has 'out')" in cards
            # A value three intervals old is drawn faded and says how old; its colour is still its own.
            stale = "document.querySelector('#link-3 .wm-half[data-dir=out]').getAttribute('class')"
            assert await page.eval(stale) == "wm-half band-green stale"
            assert "100 Mb/s 10% (stale 10m)" in await page.eval(
                "document.querySelector('#link-3 .wm-label').textContent")
            assert "STALE" in cards.upper()

            await page.eval("window.__same_page = 1")
            post(c, 3, "router1.ladc1", HIGH)
            await page.wait_for(f"{half}.getAttribute('class').includes('band-red')", 10, "the half to turn red")
            assert await page.eval("window.__same_page") == 1, "updated in place, not reloaded"
            r, g, bl = await pixel_at(page, OUT_HALF, tmp_path / "high.png")
            assert r > 180 and g < 90 and bl < 90, f"not red past 90%: {(r, g, bl)}"
            assert "950 Mb/s 95%" in await page.eval("document.querySelector('#link-1 .wm-label').textContent")
            assert "band-green" in await page.eval(
                "document.querySelector('#link-1 .wm-half[data-dir=in]').getAttribute('class')"), \
                "each direction has its own colour"
            assert page.errors() == []

            # Drawn by central: the page as fetched, without any script, has the map in its colours.
            status, _, body = get(c, "/weathermap/wan")
            assert status == 200 and b'<polygon class="wm-half band-red" data-dir="out"' in body
            href = await page.eval("document.querySelector('#link-1').getAttribute('href')")
            status, _, body = get(c, href)
            assert status == 200 and b"ladc1 \xe2\x87\x84 ny" in body
            link = await b.page(*DESKTOP)
            await link.goto(c.url + href)
            srcs = await link.eval("[...document.querySelectorAll('.wm-graphs img')].map(i => i.getAttribute('src'))")
            assert len(srcs) == 3 and all("/graph/router1.ladc1/Uplink.png?metric=" in s for s in srcs), srcs
            for src in srcs:
                status, ctype, png = get(c, src)
                assert status == 200 and ctype == "image/png" and png[:4] == b"\x89PNG"
    asyncio.run(run())


def test_on_a_phone_labels_do_not_cover_each_other_and_nothing_scrolls_sideways(central: CentralProc) -> None:
    # tx: bytes/s, 20 Mb/s of 100 Mbit/s; rx: a byte counter, 75 MB a minute: 10 Mb/s from the RRD file.
    # Three results a minute apart: at least one RRD step lies wholly between two of them.
    now = time.time()
    for i in range(3):
        post(central, 4 + i, "router2.ladc1", f"tx=2500000 rx={1000000 + i * 75000000}c", finished=now - 120 + 60 * i)

    async def run() -> None:
        async with Browser() as b:
            page = await b.page(*PHONE, dark=True)
            await page.goto(central.url + "/weathermap/wan")
            assert await page.eval("document.documentElement.scrollWidth") <= PHONE[0]
            # The phone's map (shares only, larger) is the one shown; the full one is hidden.
            assert await page.eval("getComputedStyle(document.querySelector('svg.wm-full')).display") == "none"
            short = "document.querySelector('svg.wm-short')"
            boxes = await apart(page, "svg.wm-short", PHONE[0])
            assert all(b[3] - b[1] >= 14 for b in boxes), f"labels too small to read on a phone: {boxes}"
            link2 = f"{short}.querySelector('[data-link=ny-ams]')"
            assert await page.eval(f"{link2}.querySelector('.wm-label[data-dir=out]').textContent") == "20%"
            await page.wait_for(f"{link2}.querySelector('.wm-label[data-dir=in]').textContent == '10%'", 10,
                                "the counter's rate")
            cards = await page.eval("document.querySelector('.wm-cards').textContent")
            assert "20.0 Mb/s" in cards and "10.0 Mb/s" in cards
            assert page.errors() == []
    asyncio.run(run())


@pytest.mark.parametrize("text, line, words", [
    ("links: [{from: ladc1, to: paris, capacity: 1Gbit, out: {host: db1.ladc1, service: Disk, label: x}}]",
     3, ("'paris' is not a site of this map", "add it under sites:")),
    ("links: [{from: ladc1, to: ny, capacity: fast, out: {host: db1.ladc1, service: Disk, label: x}}]",
     3, ("capacity:", "10Gbit")),
    ("links: [{from: ladc1, to: ny, capacity: 1G, out: {host: db9.ladc1, service: Disk, label: x}}]",
     3, ("undefined host 'db9.ladc1'", 'did you mean "db1.ladc1"')),
    ("links: [{from: ladc1, to: ny, capacity: 1G, out: {host: db1.ladc1, service: Disc, label: x}}]",
     3, ("no service 'Disc'", 'did you mean "Disk"')),
    ("links: [{from: ladc1, to: ny, capacity: 1G, out: {host: db1.ladc1, service: Quiet, label: x}}]",
     3, ("graph: false", "remove graph: false")),
    ("links: [{from: ladc1, to: ny, capacity: 1G, out: {host: db1.ladc1, service: Disk, label: x, unit: octets}}]",
     3, ("unit: one of bits", "bytes")),
])
def test_check_config_names_the_file_and_line_of_a_map_mistake(tmp_path: Path, text: str, line: int,
                                                                 words: tuple[str, ...]) -> None:
    objects = {"a.yaml": """\
        commands: {check_dummy: "$PLUGINDIR$/check_dummy 0"}
        hosts: [{name: db1.ladc1, address: 10.0.0.1}]
        services: [{host: db1.ladc1, description: Disk, command: check_dummy},
                   {host: db1.ladc1, description: Quiet, command: check_dummy, graph: false}]
        """, "map.yaml": f"""\
        weathermaps:
          - {{name: wan, sites: [{{name: ladc1, x: 10, y: 10}}, {{name: ny, x: 90, y: 10}}],
             {text}}}
        """}
    assert_error(tmp_path, objects, "map.yaml", line, *words)


def test_check_config_accepts_the_demo_map_and_counts_it() -> None:
    done = check_config(REPO / "conf.d" / "central.yaml")
    assert done.returncode == 0 and done.stdout.rstrip().endswith("1 weather map(s)"), done.stdout + done.stderr


def test_the_demo_link_plugin_reports_traffic_and_latency_and_warns_past_its_threshold() -> None:
    run = subprocess.run([sys.executable, str(REPO / "plugins" / "check_demo_link.py"), "-C", "1G", "--load", "0.8",
                          "--swing", "0", "--rtt", "40", "-w", "50", "-c", "200"], capture_output=True, text=True, timeout=30,
                         env={"PYTHONPATH": str(REPO)})
    assert run.returncode == 1 and run.stdout.startswith("LINK WARNING - "), run.stdout + run.stderr
    metrics = {m.label: m for m in perfdata.parse(run.stdout.split("|", 1)[1])[0]}
    assert 0.6e9 <= metrics["out"].value <= 1.05e9 and metrics["out"].max == 1e9     # 80% +-15% over two weeks
    assert metrics["rtt"].uom == "ms" and 40 <= metrics["rtt"].value <= 46
