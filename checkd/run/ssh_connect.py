"""One SSH handshake for the ssh runner's pool, with checkd's host key policy.

Host keys are always checked against a known_hosts file (there is no switch to
turn that off); every failure becomes a ConnectError whose text says why, which
the pool puts into the RawRun of each check that needed the connection.
"""

from __future__ import annotations

import asyncio
import os

import asyncssh

from checkd.config.model import SSHSettings


class ConnectError(Exception):
    """The connection could not be made; str() is the reason, without host:port."""


class _Client(asyncssh.SSHClient):
    """Tells the pool when a connection is gone (server restart, keepalive timeout)."""

    def __init__(self, lost: asyncio.Event) -> None:
        self._lost = lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost.set()


def known_hosts_path(settings: SSHSettings) -> str:
    return settings.known_hosts or os.path.expanduser("~/.ssh/known_hosts")


def _read_known_hosts(path: str) -> tuple[asyncssh.SSHKnownHosts, bool]:
    # Loaded here, not by asyncssh, so that a missing file means "no key is trusted"
    # (with a message saying so) the same way on every asyncssh version.
    try:
        with open(path, encoding="utf-8") as f:
            return asyncssh.import_known_hosts(f.read()), True
    except FileNotFoundError:
        return asyncssh.import_known_hosts(""), False
    except (OSError, ValueError) as exc:
        raise ConnectError(f"cannot read known_hosts file {path}: {exc}") from exc


def _read_client_key(path: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.read_private_key(path)
    except (OSError, ValueError) as exc:   # KeyImportError is a ValueError
        raise ConnectError(f"cannot read client key {path}: {exc}") from exc


def _host_key_problem(known: asyncssh.SSHKnownHosts, found: bool, path: str,
                      address: str, port: int) -> str:
    if not found:
        return f"host key verification failed ({path} does not exist)"
    # asyncssh's exception does not say whether the host was unknown or its key changed.
    trusted = asyncssh.match_known_hosts(known, address, address, port)[0]
    if trusted:
        return (f"host key verification failed (key differs from the one in {path}; "
                f"host key changed?)")
    return f"host key verification failed (not in {path})"


async def open_connection(address: str, settings: SSHSettings, keepalive_interval: float
                          ) -> tuple[asyncssh.SSHClientConnection, asyncio.Event]:
    """Handshake with address; returns the connection and an event set when it is lost."""
    path = known_hosts_path(settings)
    lost = asyncio.Event()
    try:
        # connect_timeout bounds everything, file reads included.
        async with asyncio.timeout(settings.connect_timeout):
            known, found = await asyncio.to_thread(_read_known_hosts, path)
            keys = [await asyncio.to_thread(_read_client_key, settings.key)] if settings.key else ()
            conn = await asyncssh.connect(
                address, settings.port, username=settings.user,
                known_hosts=known, client_keys=keys,
                # An explicit key is the one to use: agent keys would only add failed attempts.
                agent_path=None if settings.key else (),
                # checkd's config says where to connect, not the operator's ~/.ssh/config.
                config=None,
                keepalive_interval=keepalive_interval,
                client_factory=lambda: _Client(lost))
    except TimeoutError as exc:
        raise ConnectError(f"handshake timed out after {settings.connect_timeout:g}s") from exc
    except asyncssh.HostKeyNotVerifiable as exc:
        raise ConnectError(_host_key_problem(known, found, path, address, settings.port)) from exc
    except asyncssh.PermissionDenied as exc:
        raise ConnectError(f"authentication failed for user {settings.user} ({exc.reason})") from exc
    except asyncssh.DisconnectError as exc:
        raise ConnectError(f"server disconnected during the handshake ({exc.reason})") from exc
    except asyncssh.Error as exc:
        raise ConnectError(f"ssh error during the handshake ({exc})") from exc
    except OSError as exc:
        # asyncio's text is "Connect call failed ('10.0.0.5', 22)"; the errno says why.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConnectError(f"connection failed ({reason})") from exc
    return conn, lost
