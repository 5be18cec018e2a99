"""`checkd central -c FILE`: load the config, run Central until SIGTERM/SIGINT
(or a fatal storage error), then stop within a deadline."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from central.app import Central
from checkd.config import load_node

log = logging.getLogger(__name__)
STOP_DEADLINE = 30.0


async def serve(central: Central) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await central.start()
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(central.failed.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
    finally:
        await asyncio.wait_for(central.stop(), timeout=STOP_DEADLINE)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 1 if central.failed.is_set() else 0


def main(args: argparse.Namespace) -> int:
    node, objs = load_node(args.config)
    if node.role != "central":
        raise SystemExit(f"{args.config}: `checkd central` needs a central: node file, not {node.role}:")
    logging.getLogger().setLevel(node.log_level.upper())
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(Central(node, objs)))
    # uvloop when installed (python3-uvloop in the .deb): faster HTTP parsing and I/O.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(serve(Central(node, objs)))
