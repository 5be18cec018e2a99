"""The poller daemon: its site's checks -> scheduler -> spool -> forwarder -> central.

`Poller` has start/stop so tests can run it in-process; `main` is the
`checkd poller -c FILE` entry point and the only place that handles signals.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkd import retention
from checkd.config import load_node
from checkd.config.model import Objects
from checkd.config.node import NodeConfig
from checkd.forwarder import Forwarder

if TYPE_CHECKING:
    from checkd.autonomy import LocalAlerting
from checkd.result import CheckResult
from checkd.run.runner import Runner
from checkd.scheduler import Scheduler, site_checks
from checkd.spool import Spool

log = logging.getLogger(__name__)
RETENTION_EVERY = 5.0


class Poller:
    def __init__(self, node: NodeConfig, objs: Objects):
        self.node, self.objs = node, objs
        self.state_dir = node.state_dir
        self.spool = Spool(self.state_dir / "spool", max_bytes=node.spool_max_bytes)
        self.runner = Runner([*node.plugin_dirs, *_shipped()], exec_workers=node.exec_workers)
        self.scheduler: Scheduler | None = None
        self.forwarder: Forwarder | None = None
        # Alerting on its own when central is unreachable needs somewhere to send to.
        self.alerting: LocalAlerting | None = None
        if node.section("email") or node.section("jabber"):
            from checkd.autonomy import LocalAlerting
            self.alerting = LocalAlerting(node, objs)
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        await self.spool.open()
        states = retention.load(self.state_dir / "retention.json")
        pending = await asyncio.to_thread(self.spool.read, self.spool.acked_seq, 1 << 62)
        retention.overlay(states, pending)
        keys = site_checks(self.objs, self.node.site)
        self.scheduler = Scheduler(self.objs, keys, self.runner, self._spool_result,
                                   max_concurrent=self.node.max_concurrent_checks, node=self.node.name,
                                   default_ssh=self.node.ssh, states=states)
        self.forwarder = Forwarder(self.spool, self.node.central, self.node.token, self.node.name, self.node.site,
                                   batch_size=self.node.batch_size,
                                   heartbeat_interval=self.node.heartbeat_interval,
                                   on_commands=self.on_commands, ssl=client_tls(self.node))
        if self.alerting is not None:
            self.alerting.last_seq = lambda: self.spool.last_seq
            await self.alerting.start()
            self.forwarder.before_post = self.alerting.before_post
        self.scheduler.start()
        await self.forwarder.start()
        self._tasks = [asyncio.create_task(self._save_retention_periodically(), name="retention")]
        if self.alerting is not None:
            self._tasks.append(asyncio.create_task(self._watch_central(), name="autonomy"))
        log.info("poller %s (site %s) started: %d checks, central %s", self.node.name, self.node.site,
                 len(keys), self.node.central)

    async def _spool_result(self, result: CheckResult) -> None:
        # Returns once the result is durable: only then is it "done" for the scheduler.
        record = result.to_record()
        if self.alerting is None:
            await self.spool.append(record)
            return
        ops, notes = self.alerting.process(record)      # sets the event ID the record carries
        await self.alerting.record(ops, notes, lambda: self.spool.append(record))

    async def _watch_central(self) -> None:
        """After `autonomy_after` without a delivery, alert on our own."""
        assert self.alerting is not None and self.forwarder is not None
        while True:
            await asyncio.sleep(1.0)
            if not self.alerting.autonomous and self.forwarder.down_for >= self.node.autonomy_after:
                log.warning("central %s unreachable for %.0fs", self.node.central, self.forwarder.down_for)
                await self.alerting.go_autonomous(self.spool.acked_seq)

    def on_commands(self, commands: list[dict[str, Any]]) -> None:
        """Commands from central's answers: run a check now, ..."""
        for cmd in commands:
            if cmd.get("type") == "reschedule" and self.scheduler is not None:
                key = (str(cmd.get("host")), cmd.get("service"))
                if not self.scheduler.reschedule_now(key):
                    log.warning("central asked to reschedule %s/%s, which this poller does not run", *key)
            else:
                log.warning("ignoring unknown command from central: %r", cmd)

    async def _save_retention_periodically(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_EVERY)
            await self._save_retention()

    async def _save_retention(self) -> None:
        if self.scheduler is not None:
            await asyncio.to_thread(retention.save, self.state_dir / "retention.json", dict(self.scheduler.states))

    async def stop(self) -> None:
        """Finish running checks, save state, deliver what we can, close."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.scheduler is not None:
            await self.scheduler.stop()
            await self._save_retention()
        if self.forwarder is not None:
            await self.forwarder.close()
        if self.alerting is not None:
            await self.alerting.stop()
        await self.runner.close()
        await self.spool.close()
        log.info("poller %s stopped", self.node.name)


def client_tls(node: NodeConfig) -> ssl.SSLContext | None:
    """TLS towards central: the system's CAs, or `tls: {ca: FILE}` for a private CA.
    `verify: false` is refused by design: a poller must know it talks to its central."""
    ca = node.section("tls").get("ca")
    if not node.central.startswith("https://") or not ca:
        return None
    return ssl.create_default_context(cafile=str(Path(node.file).resolve().parent / ca))


def _shipped() -> list[Any]:
    from checkd.config.load import SHIPPED_PLUGINS
    return SHIPPED_PLUGINS


async def serve(poller: Poller) -> None:
    """Run until SIGTERM or SIGINT, then stop within a deadline."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await poller.start()
    try:
        await stop.wait()
    finally:
        await asyncio.wait_for(poller.stop(), timeout=30)


def main(args: argparse.Namespace) -> int:
    node, objs = load_node(args.config)
    if node.role != "poller":
        raise SystemExit(f"{args.config}: `checkd poller` needs a poller: node file, not {node.role}:")
    logging.getLogger().setLevel(node.log_level.upper())
    asyncio.run(serve(Poller(node, objs)))
    return 0
