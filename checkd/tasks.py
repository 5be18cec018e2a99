"""A background task's end, written once: every long-running loop (pruning, reports, the
site watch, the graph feed, export) is stopped the same way at shutdown."""

from __future__ import annotations

import asyncio


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` and wait until it has ended (its exception, if any, is not raised).
    None (never started) is nothing to do."""
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
