"""Failed authentication, counted per client address, on central's HTTP listener and a
poller's `status_listen:` (docs/security.md, "Guessing tokens").

An attempt is a request that may carry a credential: an Authorization header, a `token`
in the query (NRDP), or any POST (a login form, an NRDP token, a signed webhook, an action). After `failures` of them
fail (401, or a handler marks the request with FAILED) within `window` seconds, the
client's attempts are answered 429 with Retry-After for `window` seconds, before any
token is compared, so a guesser learns nothing more. Reads without a credential, and
everything of a client that does not fail, are never held up. Two log lines at most a
client and window: its first failure, and the hold.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from checkd import metrics

log = logging.getLogger(__name__)

FAILURES = 10                   # failed attempts a client may make in a window
WINDOW = 60.0                   # seconds; also how long a client is held after that
MAX_CLIENTS = 50_000            # windows remembered at once (memory stays bounded)
FAILED = "checkd.auth_failed"   # request key a handler sets when it refused a credential with another status
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass(slots=True)
class _Window:
    started: float
    failures: int = 0
    held_until: float = 0.0


def client_of(remote: str | None) -> str:
    """The address that is counted: an IPv6 client by its /64 (one host may hold all of it)."""
    try:
        ip = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote or "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def attempts(request: web.Request) -> bool:
    """Whether the request carries a credential (what the limit counts and holds)."""
    return ("Authorization" in request.headers or request.method not in ("GET", "HEAD", "OPTIONS")
            or "token" in request.query)


class AuthLimit:
    def __init__(self, settings: Callable[[], Mapping[str, Any]] = dict, clock: Callable[[], float] = time.monotonic):
        self._settings = settings       # the node's `auth_limit:` section, read at each use (a reload may change it)
        self._clock = clock
        self._clients: dict[str, _Window] = {}
        self.failed_total = 0
        self.refused_total = 0

    @property
    def failures(self) -> int:
        return int(self._settings().get("failures", FAILURES))

    @property
    def window(self) -> float:
        return float(self._settings().get("window", WINDOW))

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again (0: it may now)."""
        w = self._clients.get(client)
        if w is None:
            return 0.0
        now = self._clock()
        if w.held_until > now:
            return w.held_until - now
        if now - w.started >= self.window and w.held_until <= now:
            del self._clients[client]
        return 0.0

    def failed(self, client: str, what: str) -> None:
        now = self._clock()
        w = self._clients.get(client)
        if w is None or (now - w.started >= self.window and w.held_until <= now):
            self._forget_old(now)
            w = self._clients[client] = _Window(now)
        w.failures += 1
        self.failed_total += 1
        if w.failures == 1:
            log.warning("failed authentication from %s: %s (more from it within %gs are counted, not logged)",
                        client, what, self.window)
        if w.failures == self.failures:
            w.held_until = now + self.window
            log.warning("%d failed authentications from %s within %.0fs, the last %s: its attempts are "
                        "answered 429 for %gs", w.failures, client, now - w.started, what, self.window)

    def _forget_old(self, now: float) -> None:
        if len(self._clients) < MAX_CLIENTS:
            return
        window = self.window
        for client, w in list(self._clients.items()):
            if now - w.started >= window and w.held_until <= now:
                del self._clients[client]
        while len(self._clients) >= MAX_CLIENTS:        # all recent: the oldest go first
            del self._clients[next(iter(self._clients))]

    def held(self, now: float | None = None) -> int:
        now = self._clock() if now is None else now
        return sum(1 for w in self._clients.values() if w.held_until > now)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not attempts(request):
            return await handler(request)
        client = client_of(request.remote)
        wait = self.retry_after(client)
        if wait > 0:
            self.refused_total += 1
            seconds = math.ceil(wait)
            raise web.HTTPTooManyRequests(
                text=json.dumps({"error": f"too many failed authentications from {client}: try again in {seconds}s"}),
                content_type="application/json", headers={"Retry-After": str(seconds)})
        try:
            resp = await handler(request)
        except web.HTTPUnauthorized:
            self.failed(client, f"{request.method} {request.path}")
            raise
        if resp.status == 401 or request.get(FAILED):
            self.failed(client, f"{request.method} {request.path}")
        return resp

    def metrics(self) -> list[Any]:
        return [
            metrics.counter("checkd_auth_failures", "Requests whose credential was refused, since start",
                            self.failed_total),
            metrics.counter("checkd_auth_refused", "Attempts answered 429 (too many failures), since start",
                            self.refused_total),
            metrics.gauge("checkd_auth_held_clients", "Client addresses whose attempts are answered 429 now",
                          self.held()),
        ]
