"""A small real central for transport tests: aiohttp on 127.0.0.1.

Implements POST /api/v1/results as DESIGN.md describes (bearer token per
poller, dedup by seq per poller, acked = highest stored seq, pending commands
in the answer), records every batch it received, and can be told to fail.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tests.helpers import free_port


class FakeCentral:
    def __init__(self, tokens: dict[str, str] | None = None):
        self.tokens = tokens if tokens is not None else {"poller-test": "secret"}
        self.port = free_port()
        self.received: list[dict[str, Any]] = []  # every accepted request body, heartbeats included
        self.stored: dict[str, dict[int, dict[str, Any]]] = {}  # poller -> seq -> result
        self.order: dict[str, list[int]] = {}  # poller -> seqs in the order they were stored
        self.commands: list[Any] = []  # handed out with the next answer
        self.mode = "ok"  # ok | down | error | slow
        self.slow_delay = 0.0
        self._runner: web.AppRunner | None = None
        self._restore: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def results(self, poller: str = "poller-test") -> list[int]:
        return self.order.get(poller, [])

    async def __aenter__(self) -> FakeCentral:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/results", self._results)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._restore is not None:
            self._restore.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def fail(self, mode: str, seconds: float | None = None, delay: float = 0.0) -> None:
        """down: nothing listens (connection refused); error: HTTP 500;
        slow: store, then answer after delay. Back to ok after seconds."""
        self.slow_delay = delay
        if mode == "down":
            await self.stop()
        self.mode = mode
        if seconds is not None:
            self._restore = asyncio.create_task(self._back_after(seconds))

    async def recover(self) -> None:
        if self._runner is None:
            await self.start()
        self.mode = "ok"

    async def _back_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._restore = None
        await self.recover()

    async def _results(self, request: web.Request) -> web.Response:
        body = await request.json()
        poller = body.get("poller")
        expected = self.tokens.get(poller)
        if expected is None or request.headers.get("Authorization") != f"Bearer {expected}":
            return web.json_response({"error": "bad token"}, status=401)
        if self.mode == "error":
            return web.json_response({"error": "database is locked"}, status=500)
        self.received.append(body)
        stored = self.stored.setdefault(poller, {})
        order = self.order.setdefault(poller, [])
        for result in body["batch"]:
            if result["seq"] not in stored:  # already stored: acknowledged, otherwise ignored
                stored[result["seq"]] = result
                order.append(result["seq"])
        if self.mode == "slow":
            await asyncio.sleep(self.slow_delay)
        commands, self.commands = self.commands, []
        return web.json_response({"acked": max(stored, default=0), "commands": commands})
