"""The poller's own HTTP listener (`status_listen:`): /metrics and /status for
monitoring the poller itself, and, for a poller that alerts on its own, what
operators need while central is down: GET /api/v1/problems as the poller sees them,
and ack, notifications and reschedule with a token from the poller's `api_tokens:`,
in central's shapes (checkd/operator_api.py), so `checkd wassup|ack|dis|ena|resched
-c poller.yaml` works against it (docs/failover.md, "Acting at a poller").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from checkd import metrics
from checkd.api_json import json_response
from checkd.auth_limit import AuthLimit
from checkd.bearer import authorised
from checkd.config.node import NodeConfig
from checkd.engine import problems
from checkd.operator_api import OperatorApi

if TYPE_CHECKING:
    from checkd.autonomy import LocalAlerting
    from checkd.poller_actions import PollerActions

log = logging.getLogger(__name__)
MAX_BODY = 64 << 10             # operator calls are small


class PollerApi:
    def __init__(self, node: NodeConfig, collect: Callable[[], list[Any]], status: Callable[[], dict[str, Any]],
                 alerting: LocalAlerting | None = None, actions: PollerActions | None = None):
        self.node, self.collect, self.status = node, collect, status
        self.alerting, self.actions = alerting, actions
        self.auth_limit = AuthLimit(lambda: self.node.section("auth_limit"))    # docs/security.md
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self.auth_limit.middleware])
        app.router.add_get("/metrics", self.get_metrics)
        app.router.add_get("/status", self.get_status)
        if self.alerting is not None and self.actions is not None:
            ops = OperatorApi(self.actions, self.writer)
            app.router.add_get("/api/v1/problems", self.get_problems)
            app.router.add_post("/api/v1/ack", ops.ack)
            app.router.add_post("/api/v1/notifications", ops.notifications)
            app.router.add_post("/api/v1/reschedule", ops.reschedule)
        return app

    def writer(self, request: web.Request) -> str:
        """An operator call's token: one of the poller's api_tokens (401 otherwise, counted and
        logged per client by checkd/auth_limit.py)."""
        return authorised(request, self.node.api_tokens, "operator calls need a token from the poller's api_tokens")

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        host, _, port = self.node.status_listen.rpartition(":")
        await web.TCPSite(self._runner, host or "127.0.0.1", int(port)).start()
        log.info("status and metrics on http://%s/metrics%s", self.node.status_listen,
                 ", operator calls on /api/v1/" if self.actions is not None else "")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def get_metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(lambda: [*self.collect(), *self.auth_limit.metrics()]),
                            headers={"Content-Type": metrics.CONTENT_TYPE})

    async def get_status(self, _: web.Request) -> web.Response:
        return json_response(self.status())

    async def get_problems(self, _: web.Request) -> web.Response:
        """The poller's own view (central's is the truth while central answers: `via` says which)."""
        assert self.alerting is not None
        now = time.time()
        engine = self.alerting.engine
        return json_response({"now": now, "via": f"poller {self.node.name}" + (
            ", central unreachable" if self.alerting.autonomous else ", central reachable: central's view is "
                                                                     "the current one"),
            "problems": problems.open_problems(engine.store, engine.events, now)})
