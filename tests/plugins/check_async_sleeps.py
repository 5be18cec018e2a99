"""Test plugin: an async check that awaits far past its timeout."""
import asyncio

from checkd.pluginapi import Outcome, Status


async def check(args: list[str]) -> Outcome:
    await asyncio.sleep(float(args[0]) if args else 3600)
    return Outcome(Status.OK, "woke up")
