"""The poller daemon: its site's checks -> scheduler -> spool -> forwarder -> central.

`Poller` has start/stop so tests can run it in-process; `main` is the
`checkd poller -c FILE` entry point, run by daemon.serve (signals, sd_notify, stop).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkd import daemon, exposure, metrics, retention
from checkd.config import load_node
from checkd.config.errors import ConfigError
from checkd.config.model import Objects
from checkd.config.node import NodeConfig
from checkd.event_handlers import EventHandlers
from checkd.failover_timing import answer_timeout
from checkd.forwarder import Forwarder
from checkd.result import CheckResult
from checkd.run.runner import Runner
from checkd.scheduler import Scheduler, site_checks
from checkd.engine.db import StoreUnavailable
from checkd.spool import Spool, SpoolFormatError

if TYPE_CHECKING:
    from checkd.autonomy import LocalAlerting

log = logging.getLogger(__name__)
RETENTION_EVERY = 5.0
DRAIN_AT_STOP = 5.0             # at shutdown, how long to go on delivering spooled results


class Poller:
    def __init__(self, node: NodeConfig, objs: Objects):
        self.node, self.objs = node, objs
        self.state_dir = node.state_dir
        self.spool = Spool(self.state_dir / "spool", max_bytes=node.spool_max_bytes)
        self.runner = Runner([*node.plugin_dirs, *_shipped()], exec_workers=node.exec_workers)
        self.handlers = EventHandlers(self.runner, lambda: self.node)
        self.scheduler: Scheduler | None = None
        self.retained = retention.Retained({})
        self.forwarder: Forwarder | None = None
        # Alerting on its own when central is unreachable needs somewhere to send to.
        self.alerting: LocalAlerting | None = None
        if node.section("email") or node.section("jabber"):
            from checkd.autonomy import LocalAlerting
            self.alerting = LocalAlerting(node, objs)
        self._tasks: list[asyncio.Task[Any]] = []
        self._rate_mark = (time.monotonic(), 0)
        self._api: Any = None                 # PollerApi, on status_listen
        self._bot: Any = None
        self.failed = asyncio.Event()       # daemon.serve's stop signal for a fatal error; none sets it yet

    async def start(self) -> None:
        pool = self.runner.exec_pool
        if pool is not None and not pool.workers:
            pool.start()        # the exec workers boot on the other core while the checks are planned
        self.state_dir.mkdir(parents=True, exist_ok=True)
        await self.spool.open()
        states = retention.load(self.state_dir / "retention.json")
        pending = await asyncio.to_thread(self.spool.read, self.spool.acked_seq, 1 << 62)
        retention.overlay(states, pending)
        self.retained = retention.Retained(states)
        keys = site_checks(self.objs, self.node.site)
        self.scheduler = Scheduler(self.objs, keys, self.runner, self._spool_result,
                                   max_concurrent=self.node.max_concurrent_checks, node=self.node.name,
                                   default_ssh=self.node.ssh, states=states, handlers=self.handlers)
        self.forwarder = Forwarder(self.spool, self.node.centrals or self.node.central, self.node.token,
                                   self.node.name, self.node.site,
                                   batch_size=self.node.batch_size,
                                   heartbeat_interval=self.node.heartbeat_interval,
                                   on_commands=self.on_commands, ssl=client_tls(self.node),
                                   timeout=answer_timeout(len(self.node.centrals)))
        if self.alerting is not None:
            self.alerting.last_seq = lambda: self.spool.last_seq
            await self.alerting.start()
            self.forwarder.before_post = self.alerting.before_post
        self.scheduler.start()
        await self.forwarder.start()
        self._tasks = [asyncio.create_task(self._save_retention_periodically(), name="retention")]
        if self.alerting is not None:
            self._tasks.append(asyncio.create_task(self._watch_central(), name="autonomy"))
            # What central decided (acks, mutes, downtimes, rollouts), for alerting on our own.
            from checkd.decision_sync import DecisionSync
            sync = DecisionSync(self.alerting, self.node.heartbeat_interval)
            self._tasks.append(asyncio.create_task(sync.run(self.forwarder), name="decisions"))
        actions = self._operator_actions()
        if self.node.status_listen:
            from checkd.poller_api import PollerApi
            self._api = PollerApi(self.node, self.collect, self.status, self.alerting, actions)
            await self._api.start()
        log.info("poller %s (site %s) started: %d checks, central %s", self.node.name, self.node.site,
                 len(keys), self.node.central)
        for warning in exposure.warnings(self.node):
            log.warning("%s", warning.removeprefix(f"{self.node.file}: warning: "))

    def _operator_actions(self) -> Any:
        """What operators can do here while the poller alerts on its own (PollerActions), and
        its chat bot on the poller's Jabber account; None for a poller that never alerts."""
        if self.alerting is None or self.scheduler is None:
            return None
        from checkd.poller_actions import PollerActions
        actions = PollerActions(self.alerting, lambda: self.objs, self.scheduler.reschedule_now)
        self.alerting.result_seen = actions.result_seen
        jabber = self.alerting.engine.channels.jabber
        if jabber is not None:
            from checkd.poller_bot import PollerBot
            self._bot = PollerBot(lambda: self.node, lambda: self.objs, self.alerting.engine, actions, jabber)
            jabber.on_message = self._bot.on_message     # heard while it is connected: alerting on its own
        return actions

    async def _spool_result(self, result: CheckResult) -> None:
        # Returns once the result is durable: only then is it "done" for the scheduler.
        if self.scheduler is not None:
            key = (result.host, result.service)
            self.retained.update(key, self.scheduler.states[key])
        if self.alerting is None:
            await self.spool.append(result.to_record())
            return
        result, ops, notes = self.alerting.process(result)      # with its event's ID, if it has one
        record = result.to_record()
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
            await asyncio.to_thread(retention.save, self.state_dir / "retention.json", self.retained.snapshot())

    # --- reload, status, metrics ------------------------------------------------------------

    def reload(self) -> bool:
        """SIGHUP: the configuration again, all or nothing. State, spool and schedule stay;
        new checks start, removed ones stop, changed intervals apply at the next run."""
        try:
            node, objs = load_node(self.node.file)
        except ConfigError as e:
            log.error("reload refused, the running configuration stays:",
                      extra={"detail": "\n".join(str(p) for p in e.problems)})
            return False
        fixed = [k for k in ("role", "name", "site", "central", "token", "state_dir", "status_listen")
                 if getattr(node, k, None) != getattr(self.node, k, None)]
        if fixed:
            log.error("reload refused, the running configuration stays: %s changed, which needs a restart",
                      ", ".join(fixed))
            return False
        old = set(self.scheduler.keys) if self.scheduler else set()
        keys = site_checks(objs, self.node.site)
        self.node, self.objs = node, objs
        logging.getLogger().setLevel(node.log_level.upper())
        if self.scheduler is not None:
            self.scheduler.reconfigure(objs, keys)
            self.retained.keep(keys)
        if self.alerting is not None:
            self.alerting.reconfigure(objs)
        log.info("configuration reloaded: %d checks (%d new, %d removed)", len(keys), len(set(keys) - old),
                 len(old - set(keys)))
        return True

    def status_line(self) -> str:
        """systemd's STATUS=: what `systemctl status` shows."""
        now = time.monotonic()
        done = self.scheduler.checks_done if self.scheduler else 0
        prev_t, prev_done = self._rate_mark
        rate = (done - prev_done) / (now - prev_t) if now > prev_t else 0.0
        self._rate_mark = (now, done)
        fwd = self.forwarder
        link = "autonomous: central unreachable" if self.alerting and self.alerting.autonomous else \
            "central connected" if fwd and fwd.connected else "central unreachable"
        return f"{rate:.1f} checks/s, {self.spool.backlog} results waiting, {link}"

    def collect(self) -> list[Any]:
        sched, fwd = self.scheduler, self.forwarder
        labels = {"poller": self.node.name, "site": self.node.site}
        return [
            metrics.counter("checkd_checks", "Checks run since start", sched.checks_done if sched else 0),
            metrics.gauge("checkd_checks_configured", "Checks this poller schedules", len(sched.keys) if sched else 0),
            metrics.histogram("checkd_check_latency_seconds", "How late checks started (recent window)",
                              list(sched.latencies) if sched else []),
            metrics.gauge("checkd_spool_backlog", "Results not yet acknowledged by central", self.spool.backlog),
            metrics.gauge("checkd_spool_acked_seq", "Highest seq central acknowledged", self.spool.acked_seq),
            metrics.gauge("checkd_central_connected", "1 while deliveries to central succeed",
                          1.0 if fwd and fwd.connected else 0.0, labels),
            metrics.gauge("checkd_autonomous", "1 while alerting on its own (central unreachable)",
                          1.0 if self.alerting and self.alerting.autonomous else 0.0, labels),
        ]

    def status(self) -> dict[str, Any]:
        return {"poller": self.node.name, "site": self.node.site, "status": self.status_line(),
                "backlog": self.spool.backlog, "connected": bool(self.forwarder and self.forwarder.connected),
                "autonomous": bool(self.alerting and self.alerting.autonomous)}

    async def stop(self) -> None:
        """Finish running checks, save state, deliver what we can, close."""
        if self._api is not None:
            await self._api.stop()
        if self._bot is not None:
            await self._bot.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.scheduler is not None:
            await self.scheduler.stop()
            await self._save_retention()
        await self.handlers.stop()
        if self.forwarder is not None:
            await self.forwarder.drain(DRAIN_AT_STOP)
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


def main(args: argparse.Namespace) -> int:
    daemon.tune_gc()
    with daemon.loading_config():
        node, objs = load_node(args.config)
    if node.role != "poller":
        raise SystemExit(f"{args.config}: `checkd poller` needs a poller: node file, not {node.role}:")
    logging.getLogger().setLevel(node.log_level.upper())
    try:
        return asyncio.run(daemon.serve(Poller(node, objs)))
    except (SpoolFormatError, StoreUnavailable) as e:     # its alerting database damaged, or a full disk
        log.critical("%s", e)
        return 1
