"""A throwaway prosody on 127.0.0.1 for tests of the Jabber channel.

Temp config and data dir, accounts registered with prosodyctl, a MUC
component `conference.localhost`, and with upload=True an XEP-0363 file share
`upload.localhost` on a loopback http port; stopped by PID, restartable on the
same ports and data. `Recorder` is a second XMPP client that keeps what it receives.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

import pytest

from checkd.engine.notify import jabber
from tests.helpers import free_port, start_server

PROSODY = "/usr/bin/prosody"
PROSODYCTL = "/usr/bin/prosodyctl"
DOMAIN = "localhost"
MUC = "conference.localhost"
UPLOAD = "upload.localhost"
MAX_LIFETIME = 600.0          # a watchdog kills a forgotten prosody after this long


def require_prosody() -> None:
    """Skip when prosody is missing; in CI (CI=true) fail instead, never skip."""
    if os.access(PROSODY, os.X_OK) and os.access(PROSODYCTL, os.X_OK):
        return
    problem = f"{PROSODY} not installed (apt-get install prosody)"
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


class Prosody:
    """prosody -F on 127.0.0.1:port; start()/stop()/restart() or `with Prosody() as p:`.

    tls=True: STARTTLS required, with a self-signed cert for `localhost` in
    `self.cert` (give it to clients as their CA); otherwise plaintext only.
    """

    def __init__(self, port: int | None = None, tls: bool = False, upload: bool = False,
                 upload_base_url: str = "") -> None:
        self.dir = tempfile.mkdtemp(prefix="checkd-prosody-")
        self.port = port or free_port()
        self.tls = tls
        # mod_http_file_share on plain http: no certificate for 127.0.0.1 in tests.
        # With upload_base_url it serves nothing itself (prosody opens no http port).
        self.http_port = free_port() if upload and not upload_base_url else None
        self.cert = os.path.join(self.dir, "localhost.crt")
        tls_config = 'c2s_require_encryption = false\n'
        modules = '"roster"; "saslauth"; "disco"; "ping"; "posix"'
        if tls:
            key = os.path.join(self.dir, "localhost.key")
            # Python's hostname check needs the subjectAltName, not just the CN.
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                            "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN}",
                            "-keyout", key, "-out", self.cert],
                           check=True, capture_output=True, timeout=20)
            tls_config = (f'c2s_require_encryption = true\n'
                          f'ssl = {{ certificate = "{self.cert}"; key = "{key}" }}\n')
            modules += '; "tls"'          # offers STARTTLS; without it prosody offers nothing
        http_ports, upload_component = "", ""
        if upload:
            http_ports = f"{self.http_port or ''}"
            # http_host: URLs name 127.0.0.1 (upload.localhost does not resolve) and
            # requests for that Host reach the component.
            upload_component = (f'Component "{UPLOAD}" "http_file_share"\n'
                                f'    http_host = "127.0.0.1"\n'
                                f'    http_file_share_size_limit = 1048576\n')
            if upload_base_url:       # slots name another server (one that never answers, say)
                upload_component += f'    http_file_share_base_url = "{upload_base_url}"\n'
        self.config = os.path.join(self.dir, "prosody.cfg.lua")
        self.log_path = os.path.join(self.dir, "prosody.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        os.makedirs(os.path.join(self.dir, "data"))
        with open(self.config, "w", encoding="ascii") as f:
            f.write(f"""\
run_as_root = true
daemonize = false
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.port} }}
s2s_ports = {{ }}
http_ports = {{ {http_ports} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}
c2s_direct_tls_ports = {{ }}
{tls_config}allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
modules_enabled = {{ {modules} }}
modules_disabled = {{ "s2s"; "offline" }}
data_path = "{self.dir}/data"
pidfile = "{self.dir}/prosody.pid"
certificates = "{self.dir}"
log = {{ info = "{self.log_path}" }}
VirtualHost "{DOMAIN}"
Component "{MUC}" "muc"
    -- a room opens on first join instead of waiting for its owner's configuration
    muc_room_locking = false
{upload_component}""")

    def register(self, user: str, password: str) -> str:
        subprocess.run([PROSODYCTL, "--config", self.config, "register", user, DOMAIN, password],
                       check=True, capture_output=True, timeout=20)
        return f"{user}@{DOMAIN}"

    def start(self, wait: float = 10.0) -> None:
        self.proc, self._watchdog = start_server([PROSODY, "-F", "--config", self.config], "prosody", self.port,
                                                 self.log_path, MAX_LIFETIME, wait)
        if self.http_port is not None:
            self._wait_http(wait)

    def _wait_http(self, wait: float) -> None:
        """The http port opens just after c2s; a test must not race it."""
        limit = time.monotonic() + wait
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > limit:
                    self.stop()
                    raise RuntimeError(f"prosody not listening for http on 127.0.0.1:{self.http_port} "
                                       f"after {wait}s:\n{self.log()[-2000:]}")
                time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog.poll() is None:
            os.killpg(watchdog.pid, signal.SIGKILL)
            watchdog.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Prosody:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


class Recorder:
    """A second client that records (sender, body, is_room) of every message it receives,
    and (sender, url, body) of each one carrying an XEP-0066 out-of-band URL in `oob`.

    Built on JabberClient itself (tls off), so it also exercises on_message.
    """

    def __init__(self, jid: str, password: str, port: int, room: str | None = None,
                 nick: str = "recorder", ca_file: str | None = None) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.oob: list[tuple[str, str, str]] = []
        self._arrived = asyncio.Event()
        self.client = jabber.JabberClient(
            {"jid": jid, "password": password, "server": f"127.0.0.1:{port}",
             "room": room, "nick": nick, "tls": ca_file is not None, "ca_file": ca_file},
            on_message=self._record)

    def _record(self, sender: str, body: str, is_room: bool) -> None:
        self.messages.append((sender, body, is_room))
        self._arrived.set()

    def _record_oob(self, msg: Any) -> None:
        url = msg["oob"]["url"]
        if url:
            self.oob.append((msg["from"].bare, str(url), msg["body"]))
            self._arrived.set()

    async def start(self, timeout: float = 10.0) -> None:
        await self.client.start()
        # on_message sees bodies only; the x:oob element is on the stanza itself.
        assert self.client._xmpp is not None
        self.client._xmpp.add_event_handler("message", self._record_oob)
        if not await self.client.wait_connected(timeout):
            raise RuntimeError(f"recorder did not connect: {self.client.last_error}")

    async def stop(self) -> None:
        await self.client.stop()

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> tuple[str, str, bool]:
        """The first recorded message for which predicate(sender, body, is_room) holds."""
        return await self._wait(self.messages, predicate, timeout)

    async def wait_oob(self, timeout: float = 10.0, predicate: Any = lambda *_: True) -> tuple[str, str, str]:
        """The first out-of-band URL received for which predicate(sender, url, body) holds."""
        return await self._wait(self.oob, predicate, timeout)

    async def _wait(self, found: list[Any], predicate: Any, timeout: float) -> Any:
        limit = time.monotonic() + timeout
        while True:
            for m in found:
                if predicate(*m):
                    return m
            left = limit - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message in {timeout}s; got {found!r}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass


class Phone(Recorder):
    """A person's chat client: `ask` sends to the bot and returns its next reply."""

    def __init__(self, jid: str, password: str, port: int, bot: str, room: str | None = None):
        super().__init__(jid, password, port, room=room, nick=jid.partition("@")[0])
        self.bot = bot

    async def ask(self, text: str, timeout: float = 10.0, to: str | None = None) -> str:
        self.messages.clear()
        await self.client.send_text(to or self.bot, text)
        from_bot = (lambda s, b, r: s == self.bot) if to is None else (lambda s, b, r: r)
        return (await self.wait_for(from_bot, timeout))[1]

    async def next_reply(self, predicate: Any, timeout: float = 20.0) -> str:
        return (await self.wait_for(lambda s, b, r: s == self.bot and predicate(b), timeout))[1]

    async def quiet(self, seconds: float) -> list[str]:
        self.messages.clear()
        await asyncio.sleep(seconds)
        return [b for s, b, r in self.messages if s == self.bot]
