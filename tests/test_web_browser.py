"""The NOC pages in a real headless Chromium, against a real central with real
pollers running real check commands: the failing service and its event ID on
the overview, plugin output with <script> shown as text, an acknowledgement
made on the service page dimming the problem on an overview that does not
reload, and the page saying so when central goes away.

Screenshots (desktop and phone, overview and service page) go to
$CHECKD_SCREENSHOTS when set (docs/screenshots/ is made that way), else to a
temp dir.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Browser, Page
from tests.central_proc import API_TOKEN, POLLER_TOKENS, CentralProc, start_poller
from tests.helpers import missing, wait_for

XSS = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\"> replication broken"
CHECK = """\
read s < "{dir}/$1.state"
if [ -f "{dir}/$1.out" ]; then cat "{dir}/$1.out"; else echo "state $s"; fi
exit $s
"""
OBJECTS = """\
commands:
  from_file: "/bin/sh {dir}/check.sh $ARG1$"
sites:
  - {{name: ladc1}}
  - {{name: nydc1}}
  - {{name: ams1, stale_after: 2s}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1}}
  - {{name: web1.ladc1, address: 127.0.0.1}}
  - {{name: web2.nydc1, address: 127.0.0.1}}
  - {{name: cache1.ams1, address: 127.0.0.1}}
services:
  - {{host: db1.ladc1, description: Replication, command: "from_file!db1", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2}}
  - {{host: db1.ladc1, description: Disk /, command: "from_file!disk", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2}}
  - {{host: web1.ladc1, description: HTTP, command: "from_file!ok", interval: 0.5s}}
  - {{host: web2.nydc1, description: Queue, command: "from_file!queue", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2}}
  - {{host: web2.nydc1, description: Load, command: "from_file!ok", interval: 0.5s}}
  - {{host: cache1.ams1, description: Memcached, command: "from_file!ok", interval: 0.5s}}
"""
STATES = {"db1": ("2", XSS + "\nSlave_IO_Running: No\nLast_Error: <b>relay log corrupted</b>"),
          "disk": ("1", "DISK WARNING - free space: / 1843 MB (9% inode=71%) | /=16587MB;16000;18000;0;20430"),
          "queue": ("3", "UNKNOWN - queue length not readable"), "ok": ("0", "OK - all fine")}
DESKTOP, PHONE = (1440, 900, 1.0, False), (390, 844, 2.0, True)



@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("web")
    states = tmp / "states"
    states.mkdir()
    (states / "check.sh").write_text(CHECK.format(dir=states))
    for name, (code, out) in STATES.items():
        (states / f"{name}.state").write_text(code + "\n")
        (states / f"{name}.out").write_text(out + "\n")
    central = CentralProc(tmp, objects=OBJECTS.format(dir=states))
    central.start()
    pollers = [start_poller(tmp, central.url, name=name, stem=name) for name in POLLER_TOKENS]
    shots = Path(os.environ.get("CHECKD_SCREENSHOTS") or tmp / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        problems = wait_for(lambda: [p for p in central.get("/api/v1/problems")["problems"]
                                     if p["service"] == "Replication"], 20, "the Replication problem")
        wait_for(lambda: len(central.get("/api/v1/problems")["problems"]) >= 4, 20, "the other problems")
        yield {"central": central, "event_id": problems[0]["id"], "shots": shots}
    finally:
        for p in pollers:
            p.terminate()
        for p in pollers:
            p.wait(timeout=30)
        central.stop()


async def overview(b: Browser, url: str, size: tuple[int, float, float, bool] = DESKTOP) -> Page:
    page = await b.page(*size, dark=True)
    await page.goto(url + "/?refresh=1")
    return page


def test_overview_lists_the_failing_service_with_its_event_id_and_shows_script_output_as_text(
        system: dict[str, Any]) -> None:
    c, eid = system["central"], system["event_id"]

    async def run() -> None:
        async with Browser() as b:
            page = await overview(b, c.url)
            row = f"document.getElementById('ev-{eid}')"
            assert await page.eval(f"{row}.querySelector('.svc').textContent") == "Replication"
            assert await page.eval(f"{row}.querySelector('.host').textContent") == "db1.ladc1"
            assert await page.eval(f"{row}.querySelector('.eid').textContent") == f"#{eid}"
            assert await page.eval(f"{row}.querySelector('.state').textContent") == "CRITICAL"
            assert await page.eval(f"{row}.classList.contains('handled')") is False
            # The plugin's markup is text on the page: nothing ran, no element was made from it.
            assert await page.eval(f"{row}.querySelector('.out').textContent") == XSS
            assert await page.eval(f"{row}.querySelector('.out').children.length") == 0
            # CRITICAL before UNKNOWN before WARNING (unhandled first, worst first).
            states = await page.eval("[...document.querySelectorAll('table.problems tbody tr')]"
                                     ".map(r => r.querySelector('.state').textContent)")
            assert states.index("CRITICAL") < states.index("UNKNOWN") < states.index("WARNING")
            await asyncio.sleep(1.5)           # a live refresh or two: still nothing executed
            assert await page.eval("typeof window.__xss") == "undefined"
            assert await page.eval("document.body.classList.contains('offline')") is False
            # The site strip: two pollers connected, ams1 (no poller) taken over by central.
            strip = await page.eval("document.querySelector('.sites').textContent")
            assert "poller-ladc1 connected" in strip and "poller-nydc1 connected" in strip
            await page.wait_for("document.querySelector('.site-takeover') !== null", 10, "ams1's takeover")
            assert page.errors() == []          # no script error, no CSP violation

            svc = await b.page(*DESKTOP, dark=True)
            await svc.goto(f"{c.url}/service/db1.ladc1/Replication?refresh=1")
            assert await svc.eval("document.querySelector('pre.out1').textContent") == XSS
            # The service page refreshes itself too: each new result (every 0.5 s) is a new ETag.
            etag = await svc.eval("window.__same_page = 1; document.querySelector('.live-root').dataset.etag")
            await svc.wait_for(f"document.querySelector('.live-root').dataset.etag !== {etag!r}", 10,
                               "the service page to redraw with a newer result")
            assert await svc.eval("window.__same_page") == 1
            assert "<b>relay log corrupted</b>" in await svc.eval("document.querySelector('pre.long').textContent")
            assert await svc.eval("typeof window.__xss") == "undefined"
            disk = await b.page(*DESKTOP)
            await disk.goto(f"{c.url}/service/db1.ladc1/Disk%20%2F")
            perf = await disk.eval("[...document.querySelectorAll('table.perf td')].map(td => td.textContent)")
            assert perf[:4] == ["/", "16587MB", "16000", "18000"]
            assert svc.errors() == [] and disk.errors() == []

    asyncio.run(run())


def test_acknowledging_on_the_service_page_dims_the_problem_on_the_overview_without_a_reload(
        system: dict[str, Any]) -> None:
    c, eid, shots = system["central"], system["event_id"], system["shots"]

    async def run() -> None:
        async with Browser() as b:
            wall = await overview(b, c.url)
            await wall.eval("window.__same_page = 42")
            assert await wall.eval(f"document.getElementById('ev-{eid}').classList.contains('handled')") is False

            phone = await b.page(*PHONE, dark=True)
            await phone.goto(f"{c.url}/service/db1.ladc1/Replication")
            assert await phone.eval("document.getElementById('do-ack')") is None     # read-only without login
            await phone.goto(f"{c.url}/login?next=/service/db1.ladc1/Replication")
            await phone.fill("#token", API_TOKEN)
            mark = phone.mark()
            await phone.click("#do-login")
            await phone.wait_load(mark)
            assert await phone.eval("location.pathname") == "/service/db1.ladc1/Replication"
            assert await phone.eval("document.cookie") == ""        # HttpOnly: scripts never see the session
            html = await phone.eval("document.documentElement.outerHTML")
            assert API_TOKEN not in html
            await phone.fill("input[name=comment]", "on it <b>now</b>")
            mark = phone.mark()
            await phone.click("#do-ack")
            await phone.wait_load(mark)
            assert await phone.eval("document.querySelector('.done').textContent.trim()") == "Acknowledged."
            assert "by ops" in await phone.eval("document.querySelector('.facts').textContent")

            # The overview, never reloaded, dims the row and says who took it.
            await wall.wait_for(f"document.getElementById('ev-{eid}').classList.contains('handled')", 10,
                                "the acknowledged row to be dimmed")
            assert await wall.eval("window.__same_page") == 42
            ack = await wall.eval(f"document.getElementById('ev-{eid}').querySelector('.ack').textContent")
            assert "ACK ops" in ack and "on it <b>now</b>" in ack
            last = await wall.eval("[...document.querySelectorAll('table.problems tbody tr')].pop().id")
            assert last == f"ev-{eid}"          # acknowledged problems come after the unhandled ones
            assert c.get(f"/api/v1/events/{eid}")["ack_author"] == "ops"
            assert wall.errors() == [] and phone.errors() == []

            await wall.screenshot(shots / "overview-desktop.png")
            await phone.eval("window.scrollTo(0, 0)")
            await phone.screenshot(shots / "service-phone.png", full_page=True)
            await phone.goto(c.url + "/?refresh=1")
            await phone.screenshot(shots / "overview-phone.png", full_page=True)
            svc = await b.page(*DESKTOP, dark=True)
            await svc.goto(f"{c.url}/service/db1.ladc1/Replication")
            await svc.screenshot(shots / "service-desktop.png", full_page=True)

    asyncio.run(run())


def test_the_page_says_plainly_when_its_connection_to_central_is_lost(system: dict[str, Any]) -> None:
    c, shots = system["central"], system["shots"]

    async def run() -> None:
        async with Browser() as b:
            page = await overview(b, c.url)
            assert await page.eval("document.getElementById('conn').hidden") is True
            c.stop()
            await page.wait_for("!document.getElementById('conn').hidden", 10, "the lost-connection banner")
            text = await page.eval("document.getElementById('conn').textContent")
            assert "CONNECTION TO CENTRAL LOST" in text
            assert await page.eval("document.body.classList.contains('offline')") is True
            assert (await page.eval("document.title")).startswith("OFFLINE")
            await page.screenshot(shots / "overview-lost-connection.png")

    asyncio.run(run())


def test_all_ok_is_unmistakable(tmp_path: Path) -> None:
    """Every check reported OK: the whole page says so (and a phone screenshot shows it)."""
    from tests.central_proc import result
    shots = Path(os.environ.get("CHECKD_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with CentralProc(tmp_path) as c:
        ladc1 = [("db1.ladc1", "Disk /"), ("db1.ladc1", "Mysql Health Slave Check"), ("web1.ladc1", "Disk /")]
        c.post_results("poller-ladc1", [result(i + 1, h, s, 0, "OK") for i, (h, s) in enumerate(ladc1)])
        c.post_results("poller-nydc1", [result(1, "web2.nydc1", "Disk /", 0, "OK")])

        async def run() -> None:
            async with Browser() as b:
                page = await overview(b, c.url, PHONE)
                assert await page.eval("document.querySelector('.allok-word').textContent") == "ALL OK"
                assert (await page.eval("document.title")).startswith("ALL OK")
                assert await page.eval("document.querySelectorAll('table.problems').length") == 0
                await page.screenshot(shots / "overview-all-ok-phone.png")
        asyncio.run(run())


def test_a_graphed_service_page_shows_its_graphs(tmp_path: Path) -> None:
    """With the graphs (rrd:) configured, a graphed service's page shows one PNG per metric."""
    try:
        import rrdtool  # noqa: F401
    except ImportError:
        missing("the rrdtool Python binding")
    from tests.central_proc import result
    objects = ("commands: {check_dummy: \"/usr/lib/nagios/plugins/check_dummy $ARG1$\"}\n"
               "hosts: [{name: db1.ladc1, address: 127.0.0.1, site: ladc1}]\n"
               "services: [{host: db1.ladc1, description: Disk /, command: \"check_dummy!0\", graph: true}]\n")
    with CentralProc(tmp_path, objects=objects, extra="  rrd: {dir: rrd}\n") as c:
        now = time.time()
        for i in range(3):
            c.post_results("poller-ladc1", [result(i + 1, "db1.ladc1", "Disk /", 0, "DISK OK",
                                                   perfdata=f"/={1000 + i}MB;1500;1800;0;2000 inodes={50 + i}%",
                                                   finished=now - 120 + 60 * i)])

        async def run() -> None:
            async with Browser() as b:
                page = await b.page(*DESKTOP)
                loaded = "[...document.querySelectorAll('.graphs img')].map(i => i.complete && i.naturalWidth)"
                deadline = time.monotonic() + 15
                while True:            # the RRD writer creates the files shortly after the first result
                    await page.goto(f"{c.url}/service/db1.ladc1/Disk%20%2F?period=week")
                    await page.wait_for(f"{loaded}.length == 2", 5, "two graph images")
                    await page.wait_for(f"{loaded}.every(w => w !== false)", 5, "the images to load or fail")
                    if all(await page.eval(loaded)) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)
                assert all(await page.eval(loaded))
                srcs = await page.eval("[...document.querySelectorAll('.graphs img')].map(i => i.src)")
                assert all("/graph/db1.ladc1/Disk%20%2F.png?metric=" in s and "period=week" in s for s in srcs)
        asyncio.run(run())
