"""Real Livestatus clients against a real central (issue 24, item 2): Debian's NagVis
(PHP, its mklivestatus backend on central's unix socket) draws checkd's states on a map
in headless Chromium, with a weathermap line from a service's traffic perfdata; Debian's
nagstamon (its own Livestatus server class, over TCP) lists exactly checkd's problems.
Both are set up by the project's own scripts (contrib/nagvis-run, contrib/nagstamon-problems)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Browser
from tests.central_proc import CentralProc, result
from tests.helpers import REPO, free_port, missing, start_server, wait_for
from tests.png import decode

NAGVIS_RUN = REPO / "contrib" / "nagvis-run"
NAGSTAMON = REPO / "contrib" / "nagstamon-problems"
DEBIAN_PYTHON = "/usr/bin/python3"      # nagstamon is packaged for Debian's python3, not the venv's

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: router1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: backup1.ladc1, address: 127.0.0.1, site: ladc1}
services:
  - {host: db1.ladc1, description: Disk /, command: "check_dummy!0!ok"}
  - {host: web1.ladc1, description: HTTP, command: "check_dummy!0!ok"}
  - {host: web1.ladc1, description: Load, command: "check_dummy!0!ok"}
  - {host: router1.ladc1, description: Uplink, command: "check_dummy!0!ok"}
"""

# The demo's link (plugins/check_demo_link.py): bits/s without a unit, the link's capacity as
# the maximum, and a latency. NagVis draws each direction coloured and labelled by its share.
UPLINK_PERF = "out=6000000000;;;0;10000000000 in=2000000000;;;0;10000000000 rtt=62.3ms;;;0"
UPLINK_OUTPUT = "LINK OK - out 6000 Mb/s, in 2000 Mb/s (60% of 10G), rtt 62.3 ms"

RESULTS = [  # (host, service, status, output, perfdata)
    ("db1.ladc1", None, 0, "PING OK", ""),
    ("web1.ladc1", None, 0, "PING OK", ""),
    ("router1.ladc1", None, 0, "PING OK", ""),
    ("backup1.ladc1", None, 1, "PING CRITICAL - Packet loss = 100%", ""),
    ("db1.ladc1", "Disk /", 2, "DISK CRITICAL - / 97% used", "/=97%;80;90"),
    ("web1.ladc1", "HTTP", 0, "HTTP OK: 200", ""),
    ("web1.ladc1", "Load", 1, "LOAD WARNING - 7.1", "load1=7.1;5;10"),
    ("router1.ladc1", "Uplink", 0, UPLINK_OUTPUT, UPLINK_PERF),
]
EXPECTED_PROBLEMS = {  # what nagstamon must list, as (state, host, service)
    ("DOWN", "backup1.ladc1", ""),
    ("CRITICAL", "db1.ladc1", "Disk /"),
    ("WARNING", "web1.ladc1", "Load"),
}


def require_clients() -> None:
    if not Path("/usr/share/nagvis/share").is_dir():
        missing("nagvis (Debian package nagvis)")
    if shutil.which("php") is None:
        missing("php (Debian package php8.2-cli)")
    if subprocess.run([DEBIAN_PYTHON, "-c", "import Nagstamon.Servers.Livestatus"],
                      capture_output=True).returncode != 0:
        missing("nagstamon (Debian package nagstamon)")


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralProc]:
    """One central with Livestatus on a unix socket (NagVis) and on TCP (nagstamon), and
    the known states above posted as a poller would."""
    require_clients()
    d = tmp_path_factory.mktemp("livestatus_clients")
    c = CentralProc(d, objects=OBJECTS, extra=(
        f"  livestatus: {{socket: {d}/live, tcp: {{listen: \"127.0.0.1:{free_port()}\", allow: [127.0.0.1]}}}}\n"))
    with c:
        status, doc = c.post_results("poller-ladc1", [
            result(i, host, service, rc, output, perfdata=perf)
            for i, (host, service, rc, output, perf) in enumerate(RESULTS, 1)])
        assert status == 200, doc
        wait_for(lambda: len(c.get("/api/v1/problems")["problems"]) >= 3, 10, "the posted problems")
        yield c


def livestatus_tcp(c: CentralProc) -> str:
    text = c.config.read_text()
    return text.split('listen: "', 1)[1].split('"', 1)[0]


@pytest.fixture(scope="module")
def nagvis(central: CentralProc) -> Iterator[str]:
    """contrib/nagvis-run serving NagVis on 127.0.0.1 with the map it generates from
    Livestatus; stopped by PID (the script stops its php -S)."""
    d = central.dir / "nagvis"
    port = free_port()
    log = central.dir / "nagvis-run.log"
    proc, watchdog = start_server([DEBIAN_PYTHON, str(NAGVIS_RUN), "--livestatus", f"unix:{central.dir}/live",
                                   "--dir", str(d), "--port", str(port)], "nagvis-run", port, log, 120)
    try:
        wait_for(lambda: "NagVis: http" in log.read_text(), 10, "nagvis-run's ready line")
        yield f"http://127.0.0.1:{port}/nagvis/frontend/nagvis-js/index.php?mod=Map&act=view&show=checkd"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        os.killpg(watchdog.pid, signal.SIGKILL)
        watchdog.wait()
        php_pid = int((d / "php.pid").read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(php_pid, 0)           # the script stopped php -S too


Pixels = list[list[tuple[int, int, int]]]
HUES = {  # the colours of NagVis's std_medium icons (gradients) and of the weathermap arrows
    "red": lambda r, g, b: r > 180 and g < 110 and b < 110,
    "green": lambda r, g, b: g > 100 and g > r + 60 and g > b + 60,
    "yellow": lambda r, g, b: r > 200 and g > 150 and b < 80,
    "blue": lambda r, g, b: b > 200 and r < 80 and g < 80,
}


def count(pixels: Pixels, box: dict[str, float], hue: str) -> int:
    """Pixels of `hue` inside `box` (CSS px at scale 1 = screenshot px)."""
    test = HUES[hue]
    return sum(1 for y in range(int(box["top"]), int(box["bottom"]))
               for x in range(int(box["left"]), int(box["right"])) if test(*pixels[y][x]))


OBJECTS_JS = """Object.values(g_view.objects).map(o => {
  const el = o.conf.view_type == 'line' ? document.getElementById(o.conf.object_id + '-line').querySelector('canvas')
                                        : document.getElementById(o.conf.object_id + '-icon');
  const r = el ? el.getBoundingClientRect() : null;
  return {type: o.conf.type, host: o.conf.name, service: o.conf.service_description || '',
          view: o.conf.view_type, state: o.conf.summary_state, output: o.conf.summary_output,
          id: o.conf.object_id, box: r && {left: r.left, top: r.top, right: r.right, bottom: r.bottom},
          labels: [0, 1].map(i => (document.getElementById(o.conf.object_id + '-link' + i) || {}).innerText || '')};
})"""


async def render(url: str, shot: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """NagVis's map in headless Chromium once its 9 objects have their states and the
    weathermap line its labels: (the objects as NagVis holds them, page errors)."""
    async with Browser() as b:
        page = await b.page(1000, 520)
        await page.goto(url)
        await page.wait_for("window.g_view && g_view.objects && Object.values(g_view.objects)"
                            ".filter(o => o.conf.summary_state).length == 9 && !!document.querySelector('[id$=-link1]')"
                            " && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)",
                            20, "NagVis's 9 objects with states, their icons and the weathermap line's labels")
        await asyncio.sleep(0.3)     # the line's canvas is painted in the same task as its labels; a margin
        await page.screenshot(shot)
        return await page.eval(OBJECTS_JS), page.errors()


def test_nagvis_map_shows_checkd_states_and_weathermap_line(central: CentralProc, nagvis: str) -> None:
    shot = central.dir / "nagvis.png"
    objects, errors = asyncio.run(render(nagvis, shot))
    assert errors == [], errors
    by = {(o["type"], o["host"], o["service"], o["view"]): o for o in objects}
    states = {k: o["state"] for k, o in by.items()}
    # What NagVis concluded from checkd's answers (a host's icon shows the worst of it and its services).
    assert states == {
        ("host", "backup1.ladc1", "", "icon"): "DOWN",
        ("host", "db1.ladc1", "", "icon"): "CRITICAL",
        ("host", "router1.ladc1", "", "icon"): "UP",
        ("host", "web1.ladc1", "", "icon"): "WARNING",
        ("service", "db1.ladc1", "Disk /", "icon"): "CRITICAL",
        ("service", "web1.ladc1", "HTTP", "icon"): "OK",
        ("service", "web1.ladc1", "Load", "icon"): "WARNING",
        ("service", "router1.ladc1", "Uplink", "icon"): "OK",
        ("service", "router1.ladc1", "Uplink", "line"): "OK",
    }, objects
    assert by[("service", "db1.ladc1", "Disk /", "icon")]["output"] == "DISK CRITICAL - / 97% used"
    # ... and what the screen shows: a CRITICAL service red, an OK one green.
    _, _, pixels = decode(shot.read_bytes())
    disk, http = by[("service", "db1.ladc1", "Disk /", "icon")]["box"], by[("service", "web1.ladc1", "HTTP", "icon")]["box"]
    assert count(pixels, disk, "red") >= 30 and count(pixels, disk, "green") == 0, shot
    assert count(pixels, http, "green") >= 30 and count(pixels, http, "red") == 0, shot
    # The weathermap line: in (left arrow) 20% of the link, blue; out (right arrow) 60%, yellow.
    line = by[("service", "router1.ladc1", "Uplink", "line")]
    assert "Weathermap Line Error" not in line["output"], line
    assert line["labels"] == ["20%", "60%"], line
    mid = (line["box"]["left"] + line["box"]["right"]) / 2
    left, right = {**line["box"], "right": mid - 40}, {**line["box"], "left": mid + 40}
    assert count(pixels, left, "blue") >= 1000 and count(pixels, left, "yellow") == 0, shot
    assert count(pixels, right, "yellow") >= 1000 and count(pixels, right, "blue") == 0, shot


def test_nagstamon_lists_exactly_checkds_problems(central: CentralProc) -> None:
    t = time.monotonic()
    run = subprocess.run([DEBIAN_PYTHON, str(NAGSTAMON), "--livestatus", livestatus_tcp(central), "--json",
                          "--config-dir", str(central.dir / "nagstamon")],
                         capture_output=True, text=True, timeout=60)
    doc = json.loads(run.stdout)
    assert doc["error"] == "", (doc, run.stderr)
    listed = {(p["state"], p["host"], p["service"]) for p in doc["problems"]}
    assert listed == EXPECTED_PROBLEMS, (doc, run.stderr)
    assert len(doc["problems"]) == len(EXPECTED_PROBLEMS)
    by_key = {(p["host"], p["service"]): p for p in doc["problems"]}
    assert by_key[("db1.ladc1", "Disk /")]["output"] == "DISK CRITICAL - / 97% used"
    assert run.returncode == 1                # problems listed
    assert time.monotonic() - t < 20
