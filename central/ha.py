"""Two centrals on one PostgreSQL database (docs/ha.md): the lease decides which is
active (checkd/engine/lease.py).

`Standby`: a central that does not hold the lease tries to take it every second and
meanwhile answers on its listen address that it is the standby and which central is
active, so that pollers move there and people are sent there. `Leadership`: the
active central renews its lease and stops the moment it can no longer be sure it
holds it (losing the database means losing leadership)."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from checkd import metrics
from checkd.engine.lease import RENEW_EVERY, TRY_EVERY, Holder, Lease

log = logging.getLogger(__name__)

HOLDER_FRESH = 1.0              # seconds a looked-up holder is answered from memory


class Standby:
    def __init__(self, lease: Lease, listen: tuple[str, int], ssl: Any = None, follower: Any = None):
        """`follower`: the graphs' shared feed follower (its progress on /metrics), or None."""
        self.lease, self.listen, self.ssl, self.follower = lease, listen, ssl, follower
        self._holder: tuple[float, Holder | None] = (0.0, None)
        self._runner: web.AppRunner | None = None

    async def wait_for_lease(self) -> None:
        """Returns once this central holds the lease; serves standby answers until then."""
        told = False
        try:
            while not await self._try_take():
                if not told:
                    holder = await self._lookup()
                    log.info("standby: central %s (%s) is active; taking over when its lease lapses",
                             holder.name if holder else "?", holder.url if holder else "?")
                    told = True
                if self._runner is None:
                    await self._serve()
                await asyncio.sleep(TRY_EVERY)
        finally:
            await self.close()      # also when stopped while a standby: the port is free again

    async def _try_take(self) -> bool:
        try:
            return await asyncio.to_thread(self.lease.try_take)
        except Exception as e:      # the database is away: stay a standby, try again
            log.warning("standby: cannot reach the database to take the lease: %s", " ".join(str(e).split()))
            return False

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, port = self.listen
        await web.TCPSite(self._runner, host, port, ssl_context=self.ssl).start()

    async def _lookup(self) -> Holder | None:
        at, holder = self._holder
        if time.monotonic() - at > HOLDER_FRESH:
            try:
                holder = await asyncio.to_thread(self.lease.holder)
            except Exception as e:      # the database is away: say so, not a 500
                log.warning("standby: cannot read who is active: %s", e)
                holder = None
            self._holder = (time.monotonic(), holder)
        return holder

    async def active_url(self) -> str:
        """The active central's URL, "" while none holds a valid lease (Livestatus says it too)."""
        holder = await self._lookup()
        return holder.url if holder is not None and holder.expires_in > 0 else ""

    async def _answer(self, request: web.Request) -> web.Response:
        if request.path == "/metrics":
            # A scraper sees which central is the standby, and that it keeps its graphs current.
            extra = [metrics.counter("checkd_graph_feed_followed", "Results followed from the active central's "
                                     "graph feed since start", self.follower.followed)] if self.follower else []
            return web.Response(body=metrics.exposition(lambda: [*ha_metrics(self.lease, active=False), *extra]),
                                headers={"Content-Type": metrics.CONTENT_TYPE})
        active = await self.active_url()
        if request.path.startswith("/api/"):
            # Pollers move to `active` (when it is one of their configured centrals).
            body = {"error": "this central is the standby", "active": active}
            return web.Response(status=503, text=json.dumps(body), content_type="application/json",
                                headers={"Retry-After": "1"})
        where = (f'<a href="{html.escape(active)}">{html.escape(active)}</a>' if active
                 else "none at the moment (a takeover is under way)")
        return web.Response(status=503, content_type="text/html", headers={"Retry-After": "5"},
                            text=f"<!doctype html><title>checkd standby</title><h1>checkd: standby central</h1>"
                                 f"<p>This central is the standby. The active central is {where}.</p>")


class Leadership:
    """The lease of the active central: renewed every RENEW_EVERY on its own connection
    (in a thread: a hung renewal is only a late one), watched every WATCH_EVERY; once it
    is past the time it was known to be valid, `fatal` stops central (systemd starts it
    again, as a standby). The store's fence and the dispatcher's `acting()` check stop
    writes and sends on their own even before that."""

    WATCH_EVERY = 0.2

    def __init__(self, lease: Lease, fatal: Callable[[str], None]):
        self.lease, self.fatal = lease, fatal
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._renew(), name="lease-renew"),
                       asyncio.create_task(self._watch(), name="lease-watch")]

    async def stop(self) -> None:
        """After the engine stopped: hand the lease over at once instead of after its TTL."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.to_thread(self.lease.release)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            await asyncio.to_thread(self.lease.renew)

    async def _watch(self) -> None:
        while self.lease.held():
            await asyncio.sleep(self.WATCH_EVERY)
        self.fatal(f"lost the central lease (epoch {self.lease.epoch}): another central may be active")


def ha_metrics(lease: Lease | None, active: bool) -> list[Any]:
    """What /metrics says about the pair: whether this central is the active one, and its epoch."""
    if lease is None:
        return []
    return [metrics.gauge("checkd_central_active", "1 on the central holding the lease (two centrals on one "
                          "database), 0 on the standby", 1.0 if active and lease.held() else 0.0),
            metrics.gauge("checkd_central_lease_epoch", "The lease's epoch this central last held (0: never)",
                          float(lease.epoch))]
