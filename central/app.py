"""The central node as one object: config, the alerting engine (checkd/engine/), and
the aiohttp application that routes ingest and API calls to them.

`Central.start()/stop()` let a test run the whole node in-process;
central.main is the daemon entry point around it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from central.availability_api import AvailabilityApi
from central.bot import Bot
from central.commands import CommandQueue
from central.decisions_api import DecisionsApi
from central.downtimes_api import DowntimesApi
from central.export.exporter import Exporter
from central.graphs.alerts import AlertGraphs
from central.graphs.api import GraphsApi
from central.graphs import shared
from central.graphs.graphs import Graphs
from central.ingest import Ingest
from central.integrations import Integrations
from central.live import Live
from central.livestatus.server import Livestatus
from central.nrdp import Nrdp
from central.operations import Operations
from central.prune import Keep, Pruner
from central.passive import Passive
from central.ha import Leadership, Standby, ha_metrics
from central.read_api import ReadApi
from central.startup import StartupClock
from central.store_choice import database
from central.takeover import Takeover
from central.web.forms import Forms
from central.web.pages import Pages
from central.web.read_access import ReadAccess
from central.weathermap.pages import WeathermapPages
from central.weekly_report import WeeklyReports
from central.write_api import WriteApi
from checkd import exposure, metrics
from checkd.auth_limit import AuthLimit
from checkd.config import load_node
from checkd.config.errors import ConfigError
from checkd.config.model import Notify, Objects
from checkd.config.node import NodeConfig
from checkd.engine.db import EarlyCheck, SqliteDatabase
from checkd.engine.engine import Engine
from checkd.engine.ids import IdAllocator
from checkd.engine.recurring import Recurring
from checkd.engine.notify import channels
from checkd.engine.notify.links import Links, base_url

log = logging.getLogger(__name__)
BOT_KEYS = ("admins", "readonly", "admin_groups", "commands_burst", "commands_every")   # reloadable


class Central:
    def __init__(self, node: NodeConfig, objs: Objects, clock: StartupClock | None = None,
                 early: EarlyCheck | None = None):
        self.clock = clock or StartupClock()     # from the process start when main passes it
        self.live = Live.of(node, objs)
        self.ids = IdAllocator()
        self.links = Links(lambda: self.public_url)
        self.channels = channels.build(node, objs, self.links)
        db, self.lease = database(node)
        if isinstance(db, SqliteDatabase):
            db.early = early                # its quick_check, started while the config loaded
        self.early = early
        self.engine = Engine(db, objs, self.channels, self.ids,
                             system=system_contacts(node), fatal=self.fatal)
        e = self.engine
        self.commands = CommandQueue()
        self.graphs = Graphs.from_node(self.live, e.store)     # None without an rrd: section
        self.operations = Operations(self.live, e, self.commands)
        self.ingest = Ingest(self.live, e, self.operations, self.commands, self.graphs)
        # `export:`: a copy of the graphed values to time-series databases (docs/metrics-export.md),
        # fed by ingest, so only by the active central.
        self.export = Exporter.from_node(self.live)
        if self.export is not None:
            self.ingest.export = self.export
            self.operations.on_deploy = self.export.deployment
        self.passive = Passive(self.live, e.store, self.ingest.store_local)
        self.takeover = Takeover(self.live, e.store, self.ingest.store_local, self.passive.stale)
        self.read = ReadApi(self.live, e, self.takeover)
        self.auth_limit = AuthLimit(lambda: self.live.node.section("auth_limit"))    # docs/security.md
        e.graphs = AlertGraphs(self.graphs) if self.graphs is not None else None
        e.recurring = Recurring(e.store, e.downtimes, lambda: self.live.objs)     # central makes the windows
        # Two centrals on one database: the active writes its graph items to the shared feed,
        # the standby follows it, so both keep their RRD files current (docs/ha.md, "Graphs").
        self.follower: shared.Follower | None = None
        self.tidy: shared.Tidy | None = None
        self.pruner: Pruner | None = None
        self.graph_position = shared.Position(self.node.state_dir / "graph_feed.position")
        if self.lease is not None and self.graphs is not None:
            self.graphs.shared = []
        self._rate_mark = (time.monotonic(), 0)
        self.bot: Bot | None = None
        self.failed = asyncio.Event()       # set on a fatal error: main stops the process
        self.leadership: Leadership | None = None
        self.reports = WeeklyReports(self.live, e, lambda: self.public_url)   # started once serving
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        conf = self.node.livestatus      # docs/livestatus.md; started by the active central only
        self.livestatus = Livestatus(conf, self.live, e, self.operations) if conf is not None else None

    @property
    def node(self) -> NodeConfig:
        return self.live.node

    @property
    def objs(self) -> Objects:
        return self.live.objs

    @property
    def public_url(self) -> str:
        """How people reach this central (links in alerts and chat replies): `public_url:`,
        else the listen address (checkd/engine/notify/links.py)."""
        return base_url(self.node, self.port)

    def fatal(self, reason: str) -> None:
        if self.failed.is_set():
            return                          # said once: the writes queued behind it fail alike
        log.critical("%s; stopping so a restart reloads the stored state", reason)
        self.failed.set()

    def build_app(self) -> web.Application:
        read, write = self.read, WriteApi(self.live, self.operations)
        pages = Pages(self.live, read, graphing=self.graphs is not None)    # the NOC page (docs/web.md)
        # Failed authentication is counted first; then, with `web: {read: login}`, reads need
        # a login or a token (docs/security.md).
        app = web.Application(client_max_size=self.node.max_body,
                              middlewares=[self.auth_limit.middleware, ReadAccess(self.live, pages.sessions).middleware])
        app.router.add_post("/api/v1/results", self.ingest.results)
        app.router.add_post("/api/v1/heartbeat", self.ingest.heartbeat)
        app.router.add_post("/api/v1/ids/reserve", self.ingest.reserve_ids)
        app.router.add_post("/api/v1/notifications/adopt", self.ingest.adopt_notifications)
        nrdp = Nrdp(self.live, self.passive).handle
        for method in ("GET", "POST"):      # /nrdp, /nrdp/ and the /nrdp// of a send_nrdp -u URL/ (docs/passive.md)
            app.router.add_route(method, r"/nrdp{slashes:/*}", nrdp)
        app.router.add_post("/api/v1/decisions", DecisionsApi(self.live, self.engine.store, self.engine.notifier.told).decisions)
        app.router.add_get("/api/v1/status", read.status)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_get("/api/v1/problems", read.problems)
        app.router.add_get("/api/v1/events/{id}", read.event)
        app.router.add_get("/api/v1/history", read.history)
        app.router.add_post("/api/v1/ack", write.ack)
        app.router.add_post("/api/v1/unack", write.unack)
        app.router.add_post("/api/v1/reschedule", write.reschedule)
        app.router.add_post("/api/v1/notifications", write.notifications)
        app.router.add_post("/api/v1/comments", write.add_comment)
        DowntimesApi(self.live, self.operations, self.engine.store).add_routes(app)
        Integrations(self.live, self.operations).add_routes(app)     # acks from PagerDuty, Opsgenie, Slack
        app.router.add_post("/api/v1/deployments", write.deployment)
        app.router.add_get("/api/v1/deployments", read.deployments)
        app.router.add_get("/api/v1/availability", AvailabilityApi(self.live, self.engine.db).get)
        pages.add_routes(app)
        Forms(self.live, self.operations, pages).add_routes(app)
        WeathermapPages(self.live, pages, self.graphs).add_routes(app)     # docs/weathermap.md
        GraphsApi(self.graphs).add_routes(app)
        return app

    def _ssl(self) -> ssl.SSLContext | None:
        tls = self.node.section("tls")
        if not tls.get("cert"):
            return None
        base = Path(self.node.file).resolve().parent      # relative paths: from the node file, like state_dir
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(base / tls["cert"], base / tls["key"] if tls.get("key") else None)
        return ctx

    async def start(self) -> None:
        sharing = self.graphs is not None and self.graphs.shared is not None
        if sharing:
            assert self.graphs is not None
            await asyncio.to_thread(self.engine.db.open, shared.SCHEMA)
            await self.graphs.start()       # the RRD writer, fed from the shared feed while a standby
            self.follower = shared.Follower(self.engine.db, self.graphs.feed, self.graph_position)
            await self.follower.start()
        if self.lease is not None:
            # Two centrals on one database: win the lease first (a standby meanwhile), then
            # catch up with the graphs and load the state the other one left, send what it
            # decided and did not send, and start checks and takeovers with the start grace
            # (docs/ha.md, "Takeover").
            await asyncio.to_thread(self.lease.setup)
            standby = Standby(self.lease, self.node.listen, self._ssl(), self.follower)
            if self.livestatus is not None:
                # Livestatus clients hear who is active meanwhile (docs/livestatus.md, "Two centrals").
                self.livestatus.standby = standby.active_url
                await self.livestatus.start()
            await standby.wait_for_lease()
            self.leadership = Leadership(self.lease, self.fatal)
            self.leadership.start()
        if self.follower is not None:
            await self.follower.finish()    # the rows the old active committed that were not read yet
            self.follower = None
        self.clock.mark("building central")
        await asyncio.to_thread(self.engine.load, shared.SCHEMA if sharing else "")
        self.clock.add(self.engine.load_timings)
        if self.early is not None and self.early.seconds:
            self.clock.note(f"quick_check ran {self.early.seconds:.2f} s, alongside the config")
        self.engine.start_writing()
        # Reserve the first chunk of event IDs before anything can be shown.
        await self.engine.write(self.ids.refill())
        if self.graphs is not None and not sharing:
            await self.graphs.start()       # the RRD writer process, before any result can arrive
            self.clock.mark("rrd writer")
        if self.export is not None:
            self.export.start()             # once the lease is ours: a standby exports nothing
        if sharing:
            self.tidy = shared.Tidy(self.engine.db, self.graph_position)
            self.tidy.start()
        self.pruner = Pruner(self.engine, Keep.from_section(self.node.section("retention")),
                             self.graphs.prune_removed if self.graphs is not None else None)
        self.pruner.start()
        jabber = self.channels.jabber
        if jabber is not None:
            self.bot = Bot(self.live, self.read, self.operations, self.links, jabber)
            jabber.on_message = self.bot.on_message     # before the client connects
        await self.engine.run(sending=True)
        self.clock.mark("channels and sending")
        await self.takeover.start()
        if self.livestatus is not None:
            self.livestatus.standby = None          # state loaded: answer from it
            if not self.livestatus.listening:
                await self.livestatus.start()
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        host, port = self.node.listen
        site = web.TCPSite(self._runner, host, port, ssl_context=self._ssl(), backlog=1024)
        await site.start()
        addresses = self._runner.addresses      # the bound port, when the config asked for port 0
        self.port = addresses[0][1] if addresses else port
        self.reports.start()                # after the port is known: the mail links to the page
        self.clock.mark("http and takeover")
        log.info("%s", self.clock.line())
        log.info("central listening on %s:%s (%d hosts, %d services, %d open events)", host, self.port,
                 len(self.objs.hosts), len(self.objs.services), len(self.engine.store.open_events))
        # after the line above: start_grace counts from no earlier than the log says central answered
        self.takeover.answering(time.time())
        if not self.node.public_url:
            log.info("public_url: not set; links in alerts and chat point at %s", self.public_url)
        for warning in exposure.warnings(self.node):
            log.warning("%s", warning.removeprefix(f"{self.node.file}: warning: "))

    # --- reload, status, metrics ------------------------------------------------------------

    def reload(self) -> bool:
        """SIGHUP: objects, tokens, pollers, contacts again, all or nothing; the store, open
        events, notification state and the schedule of central's own checks stay."""
        try:
            node, objs = load_node(self.node.file)
        except ConfigError as e:
            log.error("reload refused, the running configuration stays:",
                      extra={"detail": "\n".join(str(p) for p in e.problems)})
            return False
        changed = [k for k in ("role", "listen", "state_dir", "max_body", "livestatus")
                   if getattr(node, k) != getattr(self.node, k)]
        changed += [f"{k}:" for k in ("email", "jabber", "webhook", "notify", "tls", "rrd", "pagerduty",
                                      "opsgenie", "slack")
                    if node.section(k) != self.node.section(k) and k != "jabber"]
        jabber_old = {k: v for k, v in self.node.section("jabber").items() if k not in BOT_KEYS}
        jabber_new = {k: v for k, v in node.section("jabber").items() if k not in BOT_KEYS}
        if node.exports != self.node.exports:
            changed.append("export:")
        if jabber_old != jabber_new:
            changed.append("jabber: connection settings")
        if changed:
            log.error("reload refused, the running configuration stays: %s changed, which needs a restart",
                      ", ".join(changed))
            return False
        self.live.replace(node, objs)
        logging.getLogger().setLevel(node.log_level.upper())
        self.engine.reconfigure(objs, system_contacts(node))
        self.takeover.reconfigure()
        if self.bot is not None:
            self.bot.reconfigure()
        log.info("configuration reloaded: %d hosts, %d services, %d contacts, %d pollers", len(objs.hosts),
                 len(objs.services), len(objs.contacts), len(node.pollers))
        return True

    def status_line(self) -> str:
        now = time.monotonic()
        prev_t, prev_n = self._rate_mark
        rate = (self.engine.results_total - prev_n) / (now - prev_t) if now > prev_t else 0.0
        self._rate_mark = (now, self.engine.results_total)
        taken = [s for s in self.takeover.sites if self.takeover.polled_by_central(s)]
        return (f"{rate:.0f} results/s, {len(self.engine.store.open_events)} open problems, "
                f"{self.engine.queued()} notifications queued"
                + (f", polling {', '.join(taken)} itself" if taken else ""))

    def collect(self) -> list[Any]:
        now = time.time()
        seen = {name: now - ps.last_seen for name, ps in self.engine.store.pollers.items()}
        return [
            metrics.counter("checkd_results", "Results stored since start", self.engine.results_total),
            metrics.gauge("checkd_open_events", "Open problems", len(self.engine.store.open_events)),
            metrics.counter("checkd_notifications_sent", "Notifications accepted by a channel since start",
                            self.engine.sent()),
            metrics.gauge("checkd_notifications_queued", "Notifications waiting (queued, held, retrying)",
                          self.engine.queued()),
            metrics.labelled("checkd_site_takeover", "1 while central polls the site itself", "site",
                             {s: float(self.takeover.polled_by_central(s)) for s in self.takeover.sites}),
            metrics.labelled("checkd_poller_silent_seconds", "Seconds since a poller was last heard", "poller",
                             seen),
            metrics.counter("checkd_db_commits", "store transactions since start (SQLite or PostgreSQL)", self.engine.db.commits),
            *ha_metrics(self.lease, active=True),
            *self.auth_limit.metrics(),
            *(self.export.metrics() if self.export is not None else ()),
        ]

    async def metrics_page(self, _request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(self.collect), headers={"Content-Type": metrics.CONTENT_TYPE})

    async def stop(self) -> None:
        if self.livestatus is not None:
            await self.livestatus.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.takeover.stop()
        if self.pruner is not None:
            await self.pruner.stop()
        await self.reports.stop()
        if self.follower is not None:
            await self.follower.stop()      # stopped while a standby
        if self.tidy is not None:
            await self.tidy.stop()
        if self.graphs is not None:
            await self.graphs.stop()        # after the last result: the writer stores what it holds
        if self.export is not None:
            await self.export.stop()        # what is queued goes out, for a few seconds at most
        if self.bot is not None:
            await self.bot.stop()           # chat commands under way, while the engine still writes
        await self.engine.stop()
        if self.leadership is not None:
            await self.leadership.stop()
        log.info("central stopped")


def system_contacts(node: NodeConfig) -> Notify:
    """Who hears about central's own events (a site taken over): the `freshness:` contacts."""
    fresh = node.section("freshness")
    return Notify(contacts=tuple(fresh.get("contacts", ())), contact_groups=tuple(fresh.get("contact_groups", ())))
