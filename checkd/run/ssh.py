"""The ssh runner: a check's command line run on the monitored host (check_by_ssh).

Turns (address, SSHSettings, command line) into a RawRun over one pooled,
persistent asyncssh connection per (address, port, user), so a check costs a
channel, not a handshake; checkd.plugin_output interprets the RawRun.
Handshake and host key policy: ssh_connect; one command's channel: ssh_session.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable

import asyncssh

from checkd.config.model import SSHSettings
from checkd.durations import format_duration
from checkd.plugin_output import RawRun
from checkd.run.ssh_connect import ConnectError, open_connection
from checkd.run.ssh_session import CheckSession

log = logging.getLogger(__name__)

_Key = tuple[str, int, str]          # (address, port, user)
_STALE = object()                    # the pooled connection died before the command started


@dataclasses.dataclass(frozen=True, slots=True)
class PoolStats:
    connections: int        # connections open now
    handshakes: int         # successful handshakes since the pool was made
    connect_failures: int   # handshakes that failed (refused, timeout, host key, auth)
    channels_busy: int      # session channels in use now, all connections
    peak_channels: int      # most channels ever in use at once on one connection


class _Link:
    """One pooled connection and the cap on its concurrent channels."""

    def __init__(self, conn: asyncssh.SSHClientConnection, lost: asyncio.Event, max_channels: int) -> None:
        self.conn = conn
        self.lost = lost
        self.slots = asyncio.Semaphore(max_channels)
        self.busy = 0


@dataclasses.dataclass(slots=True)
class _Failure:
    message: str
    at: float
    retry_at: float
    count: int


def _where(address: str, port: int) -> str:
    return f"ssh to [{address}]:{port}" if ":" in address else f"ssh to {address}:{port}"


class SSHPool:
    """Persistent SSH connections shared by every ssh check, one per (address, port, user)."""

    def __init__(self, *, max_channels: int = 6, keepalive_interval: float = 30.0,
                 backoff: float = 1.0, max_backoff: float = 30.0,
                 channel_retry_delay: float = 0.1,
                 now: Callable[[], float] = time.monotonic) -> None:
        # sshd's MaxSessions is 10 and it frees slots late: stay well below it.
        self._max_channels = max_channels
        self._keepalive_interval = keepalive_interval
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._channel_retry_delay = channel_retry_delay
        self._now = now
        self._links: dict[_Key, _Link] = {}
        self._locks: dict[_Key, asyncio.Lock] = {}
        self._failures: dict[_Key, _Failure] = {}
        self._handshakes = 0
        self._connect_failures = 0
        self._peak_channels = 0
        self._closed = False

    async def run(self, address: str, settings: SSHSettings, command: str, timeout: float) -> RawRun:
        """Run `command` through the remote user's shell, as check_by_ssh does."""
        key = (address, settings.port, settings.user)
        where = _where(address, settings.port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Two rounds: a pooled connection found dead before the command started is
        # replaced once, so an idle connection the server dropped costs no false alarm.
        for _ in range(2):
            if self._closed:
                return RawRun(error=f"{where}: ssh pool is closed", timeout=timeout)
            try:
                link = await self._link(key, settings)
            except ConnectError as exc:
                return RawRun(error=f"{where}: {exc}", timeout=timeout)
            result = await self._run_on(key, link, command, timeout, deadline, where)
            if isinstance(result, RawRun):
                return result
        return RawRun(error=f"{where}: connection lost before the command could start", timeout=timeout)

    def stats(self) -> PoolStats:
        live = [link for link in self._links.values() if not link.lost.is_set()]
        return PoolStats(connections=len(live), handshakes=self._handshakes,
                         connect_failures=self._connect_failures,
                         channels_busy=sum(link.busy for link in live),
                         peak_channels=self._peak_channels)

    async def close(self) -> None:
        self._closed = True
        links = list(self._links.values())
        self._links.clear()
        for link in links:
            link.conn.close()
        for link in links:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(link.conn.wait_closed(), 5.0)

    async def _link(self, key: _Key, settings: SSHSettings) -> _Link:
        link = self._links.get(key)
        if link is not None and not link.lost.is_set():
            return link
        # One lock per host: concurrent first checks share one handshake.
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            link = self._links.get(key)
            if link is not None and not link.lost.is_set():
                return link
            if link is not None:
                self._drop(key, link)
            failure = self._failures.get(key)
            now = self._now()
            if failure is not None and now < failure.retry_at:
                # A dead host must not get a handshake per check: answer from the last failure.
                raise ConnectError(f"{failure.message} (not retrying for another "
                                   f"{format_duration(failure.retry_at - now)})")
            try:
                conn, lost = await open_connection(key[0], settings, self._keepalive_interval)
            except ConnectError as exc:
                count = failure.count + 1 if failure is not None else 1
                delay = min(self._backoff * 2 ** (count - 1), self._max_backoff)
                at = self._now()
                self._failures[key] = _Failure(str(exc), at, at + delay, count)
                self._connect_failures += 1
                raise
            self._failures.pop(key, None)
            self._handshakes += 1
            link = _Link(conn, lost, self._max_channels)
            self._links[key] = link
            return link

    def _drop(self, key: _Key, link: _Link) -> None:
        if self._links.get(key) is link:
            del self._links[key]
        link.conn.close()

    async def _run_on(self, key: _Key, link: _Link, command: str, timeout: float,
                      deadline: float, where: str) -> RawRun | object:
        try:
            async with asyncio.timeout_at(deadline):
                await link.slots.acquire()
        except TimeoutError:
            return RawRun(timed_out=True, timeout=timeout)
        link.busy += 1
        self._peak_channels = max(self._peak_channels, link.busy)
        try:
            return await self._exec(key, link, command, timeout, deadline, where)
        finally:
            link.busy -= 1
            link.slots.release()

    async def _exec(self, key: _Key, link: _Link, command: str, timeout: float,
                    deadline: float, where: str) -> RawRun | object:
        try:
            async with asyncio.timeout_at(deadline):
                chan, session = await self._open_channel(link, command)
        except TimeoutError:
            return RawRun(timed_out=True, timeout=timeout)
        except asyncssh.ChannelOpenError as exc:
            if link.lost.is_set():
                # asyncssh fails pending opens this way when the connection goes away.
                self._drop(key, link)
                return _STALE
            return RawRun(error=f"{where}: server refused a session channel: {exc.reason}", timeout=timeout)
        except (asyncssh.Error, OSError) as exc:
            log.info("%s: pooled connection is dead (%s); reconnecting", where, exc)
            self._drop(key, link)
            return _STALE
        try:
            async with asyncio.timeout_at(deadline):
                lost = await asyncio.shield(session.closed)
        except TimeoutError:
            await self._abandon(chan, session, where)
            return session.timed_out(timeout)
        if lost is not None or link.lost.is_set():
            self._drop(key, link)
        return session.raw_run(timeout, where, lost=link.lost.is_set())

    async def _open_channel(self, link: _Link, command: str) -> tuple[asyncssh.SSHClientChannel, CheckSession]:
        try:
            return await link.conn.create_session(CheckSession, command, encoding=None, request_pty=False)
        except asyncssh.ChannelOpenError:
            if link.lost.is_set():
                raise
            # sshd releases session slots some time after a channel closes: one retry covers that.
            await asyncio.sleep(self._channel_retry_delay)
            return await link.conn.create_session(CheckSession, command, encoding=None, request_pty=False)

    async def _abandon(self, chan: asyncssh.SSHClientChannel, session: CheckSession, where: str) -> None:
        # Ask sshd to kill the command (OpenSSH >= 7.9 honours it), then close the
        # channel; the connection stays in the pool for the next check.
        try:
            chan.send_signal("KILL")
        except (asyncssh.Error, OSError) as exc:
            log.debug("%s: could not signal timed-out command: %s", where, exc)
        chan.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(session.closed), 2.0)
