"""`checkd central -c FILE`: load the config, run Central until SIGTERM/SIGINT
(or a fatal storage error), then stop within a deadline."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from central.app import Central
from central.startup import StartupClock
from central.livestatus.server import LivestatusError
from checkd.engine.db import EarlyCheck, SchemaError, StoreUnavailable
from checkd import daemon
from checkd.config import load_node
from checkd.config.node import read_node

log = logging.getLogger(__name__)


def main(args: argparse.Namespace) -> int:
    daemon.tune_gc()
    clock = StartupClock()
    with clock.phase("config"), daemon.loading_config():
        early = _early_check(args.config)      # the database's quick_check, while the objects load
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
        # Central's stop() is written to undo a half-done start (the poller's is not).
        return asyncio.run(daemon.serve(Central(node, objs, clock, early), stop_if_start_fails=True))
    except (SchemaError, StoreUnavailable, LivestatusError) as e:
        log.critical("%s", e)
        return 1


def _early_check(config: str) -> EarlyCheck | None:
    """Start the SQLite store's quick_check in a thread (checkd/engine/db.py, EarlyCheck)."""
    node = read_node(Path(config))
    path = node.state_dir / "central.sqlite"
    if node.role != "central" or node.store != "sqlite" or not path.exists():
        return None
    return EarlyCheck(path)
