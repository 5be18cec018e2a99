"""A real headless Chromium for tests, driven over the DevTools protocol (CDP)
with aiohttp's websocket client: no extra dependency.

Chromium listens on 127.0.0.1 only (port chosen by itself, read back from
DevToolsActivePort), uses a throwaway profile, runs in its own process group,
and a detached watchdog kills that group after `max_lifetime` seconds even if
the test process dies first.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import missing

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    missing("chromium (Debian package chromium)")
    raise AssertionError("unreachable")


class CdpError(Exception):
    pass


class Browser:
    """`async with Browser() as b: page = await b.page(1366, 768)`."""

    def __init__(self, max_lifetime: float = 120.0):
        self.max_lifetime = max_lifetime
        self.proc: subprocess.Popen[bytes] | None = None
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.profile = Path(tempfile.mkdtemp(prefix="checkd-chromium-"))
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._events: list[tuple[str | None, str, dict[str, Any]]] = []
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Browser:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, timeout: float = 20.0) -> None:
        argv = [chromium_path(), "--headless", "--disable-gpu", "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--mute-audio", "--hide-scrollbars",
                "about:blank"]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")      # Chromium refuses to run as root with its sandbox
        with open(self.profile / "chromium.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.watchdog = subprocess.Popen(
            ["sh", "-c", f"sleep {self.max_lifetime:.0f}; kill -9 -{self.proc.pid} 2>/dev/null"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log_text = (self.profile / "chromium.log").read_text(errors="replace")[-2000:]
                await self.close()
                raise RuntimeError(f"chromium did not start: {log_text}")
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            doc = json.loads(msg.data)
            if "id" in doc:
                fut = self._calls.pop(doc["id"], None)
                if fut is not None and not fut.done():
                    if "error" in doc:
                        fut.set_exception(CdpError(f"{doc['error']}"))
                    else:
                        fut.set_result(doc.get("result", {}))
            else:
                self._events.append((doc.get("sessionId"), doc["method"], doc.get("params", {})))
                self._changed.set()
        for fut in self._calls.values():
            if not fut.done():
                fut.set_exception(CdpError("chromium closed the DevTools connection"))

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
                   timeout: float = 15.0) -> Any:
        assert self._ws is not None
        cid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[cid] = fut
        msg: dict[str, Any] = {"id": cid, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        await self._ws.send_str(json.dumps(msg))
        return await asyncio.wait_for(fut, timeout)

    async def event(self, session: str | None, method: str, after: int, timeout: float = 15.0) -> dict[str, Any]:
        """The first `method` event of `session` at index >= `after` in the event list."""
        deadline = time.monotonic() + timeout
        while True:
            for s, m, params in self._events[after:]:
                if s == session and m == method:
                    return params
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} within {timeout}s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def events(self, session: str) -> list[tuple[str, dict[str, Any]]]:
        return [(m, p) for s, m, p in self._events if s == session]

    async def page(self, width: int, height: int, scale: float = 1.0, mobile: bool = False,
                   dark: bool = False) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile})
        if dark:
            await page.send("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        return page

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            try:
                await self.send("Browser.close", timeout=3.0)
            except (CdpError, asyncio.TimeoutError, ConnectionError):
                pass
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)       # the browser and its helper processes
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        if self.watchdog is not None:
            try:
                os.killpg(self.watchdog.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.watchdog.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session: str):
        self.b, self.session = browser, session

    async def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 15.0) -> Any:
        return await self.b.send(method, params, self.session, timeout)

    async def goto(self, url: str, timeout: float = 15.0) -> None:
        mark = len(self.b._events)
        await self.send("Page.navigate", {"url": url})
        await self.b.event(self.session, "Page.loadEventFired", mark, timeout)

    async def wait_load(self, mark: int, timeout: float = 15.0) -> None:
        """After something that navigates (a form submit): wait for the new page's load event."""
        await self.b.event(self.session, "Page.loadEventFired", mark, timeout)

    def mark(self) -> int:
        return len(self.b._events)

    async def eval(self, expression: str, timeout: float = 15.0) -> Any:
        r = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                 "awaitPromise": True}, timeout)
        if "exceptionDetails" in r:
            raise CdpError(f"{expression}: {r['exceptionDetails'].get('exception', r['exceptionDetails'])}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or expression}")
            await asyncio.sleep(0.1)

    async def fill(self, selector: str, text: str) -> None:
        await self.eval(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(text)}")

    async def click(self, selector: str) -> None:
        await self.eval(f"document.querySelector({json.dumps(selector)}).click()")

    async def screenshot(self, path: Path, full_page: bool = False) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        shot = await self.send("Page.captureScreenshot", params, timeout=30.0)
        path.write_bytes(base64.b64decode(shot["data"]))

    def errors(self) -> list[str]:
        """JavaScript exceptions and console/CSP errors seen on this page so far."""
        out = []
        for method, p in self.b.events(self.session):
            if method == "Runtime.exceptionThrown":
                out.append(str(p["exceptionDetails"].get("exception", {}).get("description", p)))
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(p["entry"]["text"])
        return out
