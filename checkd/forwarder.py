"""Transport: sends spooled results to central in batches over HTTP(S).

Reads unacknowledged results from the spool in seq order, POSTs them to
central's /api/v1/results, trims what central acknowledged and hands the
commands in central's answer on. Empty batches double as heartbeats, and go
on while deliveries back off, so central hears a live poller at once when it
comes back (docs/failover.md, "Timing").
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from checkd import json_codec
from checkd.failover_timing import connect_timeout
from checkd.spool import Spool

log = logging.getLogger("checkd.forwarder")

# 408 and 429 say "try again later", like a 5xx; other 4xx mean central
# refuses this poller (bad token, unknown poller) until an operator acts.
_TRANSIENT_4XX = {408, 429}


class PostError(Exception):
    """One failed delivery. kind names the state for logging; rejected means
    central refused us (4xx), which retrying fast will not fix."""

    def __init__(self, kind: str, detail: str, rejected: bool = False):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.rejected = rejected

    @property
    def answered(self) -> bool:
        """Whether central answered at all (an error answer) rather than not being there."""
        return self.kind not in ("timeout", "unreachable")


class Forwarder:
    def __init__(self, spool: Spool, url: str | Sequence[str], token: str, poller: str, site: str,
                 batch_size: int = 500, heartbeat_interval: float = 5.0,
                 on_commands: Callable[[list[Any]], Any] | None = None,
                 ssl: ssl_module.SSLContext | bool | None = None, *,
                 timeout: float = 30.0, backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 linger: float = 0.05,
                 clock: Callable[[], float] = time.monotonic,
                 jitter: Callable[[], float] = random.random):
        self.spool = spool
        # Two centrals on one database (docs/ha.md): the one that answers as active gets
        # the results; a connection error or a standby's 503 moves on to the next.
        self.urls = [u.rstrip("/") for u in ([url] if isinstance(url, str) else url)]
        self.base = self.urls[0]
        # Awaited before each delivery (a poller that alerted on its own hands over first);
        # raising PostError counts as a failed delivery.
        self.before_post: Callable[[Forwarder], Awaitable[None]] | None = None
        self.poller = poller
        self.site = site
        self.batch_size = batch_size
        self.heartbeat_interval = heartbeat_interval
        self.on_commands = on_commands
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.linger = linger
        self._headers = {"Authorization": f"Bearer {token}"}
        self._ssl = ssl
        self._timeout = timeout
        self._clock = clock
        self._jitter = jitter
        self.last_success: float | None = None  # monotonic time of the last delivery
        self.connected = False
        self._state = "starting"  # for one log line per change, not per retry
        self._down_since: float | None = None
        self._failures = 0
        self._last_sent = float("-inf")
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def endpoint(self) -> str:
        return self.base + "/api/v1/results"

    @property
    def down_for(self) -> float:
        """Seconds since deliveries started failing (0 while they succeed)."""
        return 0.0 if self._down_since is None else self._clock() - self._down_since

    @property
    def backlog(self) -> int:
        """Results in the spool that central has not acknowledged yet."""
        return self.spool.backlog

    async def start(self) -> None:
        # A bounded connect: a request stuck on a central that is not there must not keep
        # the poller from noticing the moment it is back (checkd.failover_timing).
        timeout = aiohttp.ClientTimeout(total=self._timeout,
                                        sock_connect=min(self._timeout, connect_timeout(self.heartbeat_interval)))
        self._session = aiohttp.ClientSession(timeout=timeout, json_serialize=_json_text)
        self._task = asyncio.create_task(self.run(), name="forwarder")

    async def drain(self, timeout: float) -> None:
        """Give the delivery loop up to `timeout` to send what is spooled (at shutdown);
        whatever is left stays in the spool for the next start."""
        deadline = self._clock() + timeout
        while self.backlog and self.connected and self._clock() < deadline:
            self.spool.new_data.set()
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        # Cancelling mid-request is safe: an unacknowledged batch is simply
        # sent again later, and central drops seqs it already has.
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass  # the cancellation we asked for
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self) -> None:
        while True:
            self.spool.new_data.clear()  # before reading, so no append is missed
            batch = await asyncio.to_thread(self.spool.read, self.spool.acked_seq, self.batch_size)
            if not batch:
                idle = self.heartbeat_interval - (self._clock() - self._last_sent)
                if idle > 0:
                    await self._wait_for_results(idle)
                    continue
            try:
                acked, commands = await self._post(batch)
            except PostError as exc:
                self._failed(exc)
                await self._back_off(exc)
                continue
            if not await self._delivered(batch, acked, commands):
                # Central answered but stored nothing of the batch: re-sending
                # at once would spin, so treat it like a failure.
                exc = PostError("not storing", f"acked {acked} after a batch from seq {batch[0]['seq']}")
                self._failed(exc)
                await self._back_off(exc)

    async def _back_off(self, exc: PostError) -> None:
        """Wait before sending results again, but send a heartbeat every heartbeat interval
        meanwhile: central hears that this poller lives (it must not take the site over),
        and the first heartbeat it answers ends the wait (the backoff starts again from
        its base). A poller that alerted on its own hands over in that heartbeat."""
        delay = self._backoff(exc)
        if exc.rejected:
            await asyncio.sleep(delay)          # only an operator can fix it: no probing
            return
        deadline = self._clock() + delay
        while (left := deadline - self._clock()) > 0:
            # Spread over half to one interval, so pollers do not probe in step.
            await asyncio.sleep(min(left, self.heartbeat_interval * (0.5 + 0.5 * self._jitter())))
            if self._clock() >= deadline:
                return                          # the backoff is over: the real delivery goes next
            try:
                acked, commands = await self._post([])
            except PostError as probe:
                log.debug("heartbeat during backoff failed: %s", probe)
                continue
            await self._delivered([], acked, commands)
            return

    async def _wait_for_results(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.spool.new_data.wait(), timeout)
        except asyncio.TimeoutError:
            return  # time for a heartbeat
        # Let a few more results join the batch: one POST per spool commit would cost
        # more CPU than the checks themselves at low rates (50 ms is nothing to an alert).
        await asyncio.sleep(self.linger)

    async def call(self, path: str, body: Any) -> Any:
        """POST JSON to central (`/api/v1/...`) as this poller; the answer, or PostError."""
        assert self._session is not None, "start() first"
        extra: dict[str, Any] = {} if self._ssl is None else {"ssl": self._ssl}
        try:
            async with self._session.post(self.base + path, json=body, headers=self._headers, **extra) as resp:
                text = await resp.text()
                status, reason = resp.status, resp.reason
        except asyncio.TimeoutError:
            self._next_central()
            raise PostError("timeout", f"no answer within {self._timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            self._next_central()
            raise PostError("unreachable", str(exc) or type(exc).__name__) from None
        if status == 503 and len(self.urls) > 1:
            self._next_central(_active_of(text))
        if status not in (200, 201):
            detail = f"HTTP {status} {reason}: {_short(text)}"
            if 400 <= status < 500 and status not in _TRANSIENT_4XX:
                raise PostError(f"rejected (HTTP {status})", detail, rejected=True)
            raise PostError(f"HTTP {status}", detail)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise PostError("malformed answer", f"{exc!r} in {_short(text)}") from None

    async def _post(self, batch: list[dict[str, Any]]) -> tuple[int, list[Any]]:
        if self.before_post is not None:
            await self.before_post(self)
        answer = await self.call("/api/v1/results", {"poller": self.poller, "site": self.site, "batch": batch})
        try:
            acked = answer["acked"]
            commands = answer.get("commands") or []
            if not isinstance(acked, int) or isinstance(acked, bool) or not isinstance(commands, list):
                raise TypeError("acked must be an integer and commands a list")
        except (KeyError, TypeError, AttributeError) as exc:
            raise PostError("malformed answer", f"{exc!r} in {_short(json.dumps(answer))}") from None
        return acked, commands

    async def _delivered(self, batch: list[dict[str, Any]], acked: int, commands: list[Any]) -> bool:
        """Take in central's answer; False when it acknowledged none of the batch."""
        now = self._clock()
        self.last_success = self._last_sent = now
        self.connected = True
        self._failures = 0
        if self._state != "ok":
            if self._down_since is not None:
                log.info("central %s reachable again after %.1fs; replaying %d spooled results",
                         self.endpoint, now - self._down_since, self.backlog)
            else:
                log.info("delivering results to central %s", self.endpoint)
            self._state, self._down_since = "ok", None
        # Trust acked only up to what we sent: a higher one (a central that
        # knew an older incarnation of this poller) must not swallow results
        # we have not sent yet.
        if batch:
            acked = min(acked, batch[-1]["seq"])
            if acked > self.spool.acked_seq:
                await asyncio.to_thread(self.spool.trim, acked)
        if commands and self.on_commands is not None:
            try:
                outcome = self.on_commands(commands)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:  # a bad command must not stop delivery
                log.exception("handling commands from central failed: %r", commands)
        return not batch or acked >= batch[0]["seq"]

    def _failed(self, exc: PostError) -> None:
        self.connected = False
        self._failures += 1
        if self._down_since is None:
            self._down_since = self._clock()
        if exc.kind == self._state:
            return
        self._state = exc.kind
        if exc.rejected:
            log.error("central %s refuses results from poller %s: %s; results are kept in the spool, "
                      "retrying every %.0fs (check the poller's name and token)",
                      self.endpoint, self.poller, exc.detail, self.backoff_cap)
        else:
            log.warning("central %s not delivering (%s: %s); results keep spooling (%d waiting), "
                        "retrying with backoff up to %.0fs",
                        self.endpoint, exc.kind, exc.detail, self.backlog, self.backoff_cap)

    def _backoff(self, exc: PostError) -> float:
        if exc.rejected:
            return self.backoff_cap  # slowly: only an operator can fix it
        # Exponential backoff with full jitter, so pollers spread out when
        # central comes back.
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(self._failures - 1, 30))
        return self._jitter() * ceiling


    def _next_central(self, active: str = "") -> None:
        """Send to `active` when a standby named it and it is one of ours (never to a URL
        only the answer gave), else to the next configured central."""
        if len(self.urls) < 2:
            return
        was = self.base
        self.base = active if active in self.urls else self.urls[(self.urls.index(self.base) + 1) % len(self.urls)]
        if self.base != was:
            log.info("poller %s: results go to central %s now (%s did not take them)", self.poller, self.base, was)


def _active_of(text: str) -> str:
    try:
        doc = json.loads(text)
        return str(doc.get("active") or "").rstrip("/") if isinstance(doc, dict) else ""
    except ValueError:
        return ""


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _json_text(obj: Any) -> str:
    """aiohttp's JSON encoder for our requests: a batch of 500 results is the poller's
    biggest encoding (checkd.json_codec)."""
    return json_codec.dumps(obj).decode()
