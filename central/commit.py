"""How central commits a change: with its pending notifications, through the engine.
A refused write stops central (the engine's fatal) and answers the request 503, so
the poller keeps the results and sends them again to the restarted central."""

from __future__ import annotations

from aiohttp import web

from checkd.engine.db import Op, WriteError
from checkd.engine.engine import Engine
from checkd.engine.notify.notifier import Plan


async def commit(engine: Engine, ops: list[Op], plan: Plan | None = None) -> None:
    try:
        await engine.commit(ops, plan if plan is not None else Plan())
    except WriteError:
        raise web.HTTPServiceUnavailable(text='{"error": "central cannot store results"}',
                                         content_type="application/json") from None
