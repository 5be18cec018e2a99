"""`checkd central -c FILE`: load the config, run Central until SIGTERM/SIGINT
(or a fatal storage error), then stop within a deadline."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time

from central.app import Central
from checkd.engine.db import SchemaError
from checkd import daemon
from checkd.config import load_node

log = logging.getLogger(__name__)
STOP_DEADLINE = 30.0


async def serve(central: Central) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, central)
    watch = daemon.LoopWatch(status=central.status_line)
    try:
        await central.start()
        watch.start()
        daemon.notify("READY=1")
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(central.failed.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
    finally:
        daemon.notify("STOPPING=1")
        await watch.stop()
        await asyncio.wait_for(central.stop(), timeout=STOP_DEADLINE)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return 1 if central.failed.is_set() else 0


def _reload(central: Central) -> None:
    daemon.notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
    central.reload()
    daemon.notify("READY=1")


def main(args: argparse.Namespace) -> int:
    node, objs = load_node(args.config)
    if node.role != "central":
        raise SystemExit(f"{args.config}: `checkd central` needs a central: node file, not {node.role}:")
    logging.getLogger().setLevel(node.log_level.upper())
    try:
        import uvloop
        # uvloop when installed (python3-uvloop in the .deb): faster HTTP parsing and I/O.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    try:
        return asyncio.run(serve(Central(node, objs)))
    except SchemaError as e:
        log.critical("%s: %s", node.state_dir / "central.sqlite", e)
        return 1
