"""Jabber channel: delivers notifications as XMPP chat messages.

One long-lived slixmpp connection per central, kept up by a supervisor task
that reconnects with capped exponential backoff and rejoins the group chat.
An alert's trend graph follows its text as an out-of-band image (upload.py).
The chat-command bot reads incoming messages through `on_message`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import slixmpp
import slixmpp.exceptions

from checkd.engine.notify.notification import DOWNTIME_KINDS, DeliveryError, Kind, Notification
from checkd.engine.notify.upload import GraphUpload
from checkd.durations import format_duration, parse_duration

log = logging.getLogger(__name__)

# (sender, body, is_room): sender is a bare JID for chats, room@service/nick in the room.
MessageHook = Callable[[str, str, bool], None]
Link = Callable[[Notification], str]     # the page an alert points at (checkd/engine/notify/links.py)
UPLOAD_TIMEOUT = 10.0

# slixmpp changed its connect API between Debian 12's 1.8.3 and PyPI's 1.17:
# 1.8.3 takes connect(address, use_ssl, force_starttls, disable_starttls);
# >= 1.9 takes connect(host, port) and reads enable_* attributes instead.
_OLD_CONNECT_API = "use_ssl" in inspect.signature(slixmpp.ClientXMPP.connect).parameters


def format_message(n: Notification, link: str = "") -> str:
    """The chat body: the first line is exactly the subject, so phone filters match it."""
    lines = [n.subject, n.output]
    if n.long_output:
        lines.append(n.long_output)
    lines.append(f"Site: {n.site}")
    if n.kind is not Kind.SUMMARY:
        lines.append(f"Duration: {format_duration(n.created - n.since)}")
    if n.runbook:
        lines.append(f"Runbook: {n.runbook}")
    if n.notes:
        lines.append(f"Notes: {n.notes}")
    if n.kind in DOWNTIME_KINDS:
        until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(n.until))
        lines.append(f"Downtime #{n.downtime_id} by {n.author or '?'} until {until}: {n.comment}")
    elif n.author or n.comment:
        lines.append(f"Acknowledged by {n.author or '?'}: {n.comment}")
    if link:
        lines.append(f"Details: {link}")
    lines.append(f"Via: {n.via}")
    return "\n".join(lines)


class JabberClient:
    """The `jabber:` settings made into one supervised XMPP connection."""

    def __init__(self, settings: Mapping[str, Any], *, send_timeout: float = 5.0,
                 connect_timeout: float = 10.0, backoff: tuple[float, float] = (1.0, 30.0),
                 on_message: MessageHook | None = None, links: Link | None = None) -> None:
        for key in ("jid", "password"):
            if not settings.get(key):
                raise ValueError(f"jabber: {key} is required")
        self.jid = slixmpp.JID(str(settings["jid"]))
        if not self.jid.user or not self.jid.domain:
            raise ValueError(f"jabber: jid {settings['jid']!r} is not user@domain")
        self.password = str(settings["password"])
        server = str(settings.get("server") or f"{self.jid.domain}:5222")
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"jabber: server {server!r} is not host:port")
        self.host, self.port = host, int(port)
        self.room: str | None = settings.get("room") or None
        self.nick = str(settings.get("nick") or self.jid.user)
        self.tls = bool(settings.get("tls", True))
        # A private CA (PEM file) trusted in addition to the system's.
        self.ca_file: str | None = settings.get("ca_file") or None
        # Trend graphs: XEP-0363 upload to the server's file share, bounded per alert.
        self.carries_graphs = bool(settings.get("graphs", True))
        self.upload_service: str | None = settings.get("upload_service") or None
        self.upload_timeout = parse_duration(settings.get("upload_timeout", UPLOAD_TIMEOUT))
        self.links = links
        self._upload: GraphUpload | None = None
        self.send_timeout = send_timeout
        self.connect_timeout = connect_timeout
        self.backoff = backoff
        self.on_message = on_message
        self.last_error = "not started"
        self._xmpp: slixmpp.ClientXMPP | None = None
        self._online = asyncio.Event()
        self._lost = asyncio.Event()
        self._attempt: asyncio.Future[str | None] | None = None   # None: session up, str: why not
        self._task: asyncio.Task[None] | None = None

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._online.is_set()

    async def start(self) -> None:
        """Start the supervisor; returns at once, the first connection comes in the background."""
        if self._task is None:
            self._xmpp = self._make_xmpp()
            if self.carries_graphs:
                self._upload = GraphUpload(self._xmpp, service=self.upload_service, timeout=self.upload_timeout,
                                           require_https=self.tls, ca_file=self.ca_file)
            # Keep a hard reference so the supervisor is not garbage-collected.
            self._task = asyncio.create_task(self._supervise(), name="jabber-supervisor")

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._online.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        xmpp = self._xmpp
        self._online.clear()
        if self._upload is not None:
            self._upload.cancel()
        if xmpp is not None:
            xmpp.cancel_connection_attempt()
            if xmpp.transport is not None:
                try:
                    await asyncio.wait_for(xmpp.disconnect(wait=1.0), 2.0)
                except asyncio.TimeoutError:
                    xmpp.abort()
        self.last_error = "stopped"

    async def send(self, n: Notification) -> None:
        """To the contact's JID, or to the group chat when addressed to the room; the
        text first, so a slow or failing upload never delays or loses the alert."""
        mtype = "groupchat" if self.room and n.address == self.room else "chat"
        await self._send(n.address, format_message(n, self.links(n) if self.links else ""), mtype)
        if n.graph_png and self._upload is not None:
            await self._send_graph(n, n.graph_png, mtype)

    async def _send_graph(self, n: Notification, png: bytes, mtype: str) -> None:
        """The graph as its own message whose body is the URL and which carries it as
        jabber:x:oob: the form Conversations and the clients that follow it show inline."""
        assert self._upload is not None and self._xmpp is not None
        try:
            url = await self._upload.url_for(png, f"checkd-{n.event_id}.png")
            if url is None or not self.connected:
                return
            msg = self._xmpp.make_message(mto=slixmpp.JID(n.address), mbody=url, mtype=mtype)
            msg["oob"]["url"] = url
            msg.send()
        except Exception as e:      # the alert went out; its graph must never make it count as failed
            log.warning("jabber: graph for %s not sent: %s: %s", n.subject, type(e).__name__, e)

    async def send_text(self, to: str, text: str) -> None:
        """A plain message (a notice about a failed delivery, a bot reply)."""
        await self._send(to, text, "groupchat" if self.room and to == self.room else "chat")

    async def send_room(self, text: str) -> None:
        if not self.room:
            raise DeliveryError("jabber: no room configured", retryable=False)
        await self._send(self.room, text, "groupchat")

    async def _send(self, to: str, body: str, mtype: str) -> None:
        if not await self.wait_connected(self.send_timeout):
            raise DeliveryError(
                f"jabber: not connected to {self.server} as {self.jid.bare} "
                f"after waiting {self.send_timeout:g}s: {self.last_error}", retryable=True)
        assert self._xmpp is not None
        # Queued on the live stream; without XEP-0198 acks a drop in the next
        # instant can still lose it, which the caller cannot see.
        self._xmpp.send_message(mto=slixmpp.JID(to), mbody=body, mtype=mtype)

    def real_jid(self, occupant: str) -> str | None:
        """The bare JID behind `room@service/nick`, when the room lets us see it
        (a non-anonymous room, or we are a moderator); None otherwise."""
        if self._xmpp is None:
            return None
        who = slixmpp.JID(occupant)
        try:
            jid = self._xmpp.plugin["xep_0045"].get_jid_property(slixmpp.JID(who.bare), who.resource, "jid")
        except (KeyError, AttributeError):
            return None
        return slixmpp.JID(str(jid)).bare if jid else None

    # --- connection supervision -------------------------------------------

    def _make_xmpp(self) -> slixmpp.ClientXMPP:
        # Without TLS, 1.17 refuses SCRAM ("No appropriate login method")
        # unless unencrypted_scram is set; 1.8.3 already defaults it to True.
        config = {} if self.tls else {"feature_mechanisms": {"unencrypted_scram": True}}
        xmpp = slixmpp.ClientXMPP(self.jid.bare, self.password, plugin_config=config)
        xmpp.register_plugin("xep_0030")
        xmpp.register_plugin("xep_0045")
        xmpp.register_plugin("xep_0203")      # delayed delivery: tells room history apart
        # Keepalive pings notice a dead TCP connection that never closes.
        xmpp.register_plugin("xep_0199", {"keepalive": True, "interval": 60, "timeout": 20})
        xmpp.register_plugin("xep_0066")      # out-of-band URLs: the graph shown inline
        xmpp.register_plugin("xep_0363")      # HTTP file upload slots
        if self.ca_file:
            xmpp.ca_certs = self.ca_file
        if not _OLD_CONNECT_API:
            xmpp.enable_direct_tls = False
            xmpp.enable_starttls = self.tls
            xmpp.enable_plaintext = not self.tls
        xmpp.add_event_handler("session_start", self._on_session_start)
        xmpp.add_event_handler("failed_all_auth", self._on_failed_auth)
        xmpp.add_event_handler("connection_failed", self._on_connection_failed)
        xmpp.add_event_handler("disconnected", self._on_disconnected)
        xmpp.add_event_handler("message", self._on_stanza)
        return xmpp

    async def _supervise(self) -> None:
        low, high = self.backoff
        delay = low
        while True:
            problem = await self._connect_once()
            if problem is None:
                delay = low
                await self._lost.wait()
                log.warning("jabber: lost connection to %s: %s", self.server, self.last_error)
            else:
                self.last_error = problem
                log.warning("jabber: cannot connect to %s: %s; retry in %.1fs", self.server, problem, delay)
            # Also wait after a drop: a restarting server refuses for a moment.
            await asyncio.sleep(delay)
            delay = min(high, delay * 2)

    async def _connect_once(self) -> str | None:
        """One connection attempt; None once the session is up, else the reason it failed."""
        xmpp = self._xmpp
        assert xmpp is not None
        self._lost.clear()
        self._attempt = asyncio.get_running_loop().create_future()
        if _OLD_CONNECT_API:
            # force_starttls is not enforced by 1.8.3 itself; _on_session_start checks.
            xmpp.connect((self.host, self.port), use_ssl=False,
                         force_starttls=self.tls, disable_starttls=not self.tls)
        else:
            xmpp.connect(self.host, self.port)
        try:
            problem = await asyncio.wait_for(asyncio.shield(self._attempt), self.connect_timeout)
        except asyncio.TimeoutError:
            problem = f"no session after {self.connect_timeout:g}s"
        if problem is not None:
            # Stop slixmpp's own retry loop (up to 300 s apart): we own the backoff.
            xmpp.cancel_connection_attempt()
            if xmpp.transport is not None:
                xmpp.abort()
        return problem

    def _fail(self, reason: str) -> None:
        if self._attempt is not None and not self._attempt.done():
            self._attempt.set_result(reason)

    def _on_failed_auth(self, _event: Any) -> None:
        # Without TLS, slixmpp finds "no appropriate login method" before our
        # session_start check could run; name the real cause.
        xmpp = self._xmpp
        assert xmpp is not None
        if self.tls and "starttls" not in xmpp.features:
            self._fail("server offered no STARTTLS (tls: false is for test servers only)")
        else:
            self._fail(f"authentication failed for {self.jid.bare}")

    def _on_connection_failed(self, error: Any) -> None:
        self._fail(f"connection failed: {error}")

    async def _on_session_start(self, _event: Any) -> None:
        xmpp = self._xmpp
        assert xmpp is not None
        # Neither slixmpp version refuses a server that offers no STARTTLS.
        if self.tls and "starttls" not in xmpp.features:
            self._fail("server offered no STARTTLS (tls: false is for test servers only)")
            xmpp.abort()
            return
        xmpp.send_presence()
        if self._upload is not None:
            self._upload.reset()          # the server may have gained or lost its file share
        if self.room:
            await self._join_room(xmpp)
        if self._attempt is None or self._attempt.done():
            return          # dropped or timed out while joining: the supervisor retries
        self.last_error = ""
        self._online.set()
        log.info("jabber: connected to %s as %s", self.server, xmpp.boundjid)
        self._attempt.set_result(None)

    async def _join_room(self, xmpp: slixmpp.ClientXMPP) -> None:
        """Join before reporting `connected`, so send_room works at once; a refused
        join is logged and leaves the chat channel up (room errors surface on send)."""
        assert self.room is not None
        try:
            # No history: old messages would reach the bot as if new.
            await xmpp.plugin["xep_0045"].join_muc_wait(
                slixmpp.JID(self.room), self.nick, maxstanzas=0, timeout=5)
        except (asyncio.TimeoutError, slixmpp.exceptions.PresenceError) as e:
            log.warning("jabber: cannot join room %s as %s: %s", self.room, self.nick, e)

    def _on_disconnected(self, reason: Any) -> None:
        was_online = self._online.is_set()
        self._online.clear()
        why = f"disconnected: {reason}" if reason else "disconnected by the server"
        if was_online:
            self.last_error = why
        # During an attempt this is a no-op when a clearer reason came first.
        self._fail(why)
        self._lost.set()

    def _on_stanza(self, msg: Any) -> None:
        if self.on_message is None or not msg["body"]:
            return
        if msg["type"] == "groupchat":
            # Skip our own echo and the history replayed on join.
            if msg["mucnick"] == self.nick or msg["delay"]["stamp"] is not None:
                return
            self.on_message(str(msg["from"]), msg["body"], True)
        elif msg["type"] in ("chat", "normal"):
            self.on_message(msg["from"].bare, msg["body"], False)

