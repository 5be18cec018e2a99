"""Graph upload for Jabber alerts: the trend PNG goes to the XMPP server's file share
(XEP-0363: a slot asked over XMPP, then an HTTP PUT) and the alert's image message
carries the GET URL. Best effort and bounded: an alert never waits on it for long,
and after a failure uploads pause instead of each alert failing the same way.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import hashlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import slixmpp
import slixmpp.exceptions

log = logging.getLogger(__name__)

UPLOAD_NS = "urn:xmpp:http:upload:0"
PAUSE = 300.0               # after a failed upload, alerts go without graphs this long
KEEP_URL = 3600.0           # one PNG mailed and chatted to many contacts is uploaded once
KEEP_MAX = 256
# XEP-0363 §5: the only slot headers a client may pass on to the PUT.
PUT_HEADERS = frozenset({"authorization", "cookie", "expires"})


class UploadError(Exception):
    """The upload did not work; the message says why, for one log line."""


class UploadService(enum.Enum):
    UNKNOWN = "not asked yet this session"
    NONE = "the server has no upload service"


class GraphUpload:
    """One per JabberClient; `reset()` at each new session (the server may have changed)."""

    def __init__(self, xmpp: slixmpp.ClientXMPP, *, service: str | None, timeout: float,
                 require_https: bool, ca_file: str | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.xmpp = xmpp
        self.configured = slixmpp.JID(service) if service else None
        self.timeout = timeout
        self.require_https = require_https
        self.ca_file = ca_file
        self._ssl_context: ssl.SSLContext | None = None
        self.clock = clock
        self.service: slixmpp.JID | UploadService = self.configured or UploadService.UNKNOWN
        self.max_size: int | None = None
        self.paused_until = 0.0
        self._urls: collections.OrderedDict[str, tuple[float, str]] = collections.OrderedDict()
        # Uploads under way, by PNG: two workers alerting two contacts of one problem share one.
        self._pending: dict[str, asyncio.Future[str | None]] = {}

    def reset(self) -> None:
        self.service = self.configured or UploadService.UNKNOWN
        self.max_size = None
        self.paused_until = 0.0

    def cancel(self) -> None:
        """At stop: nobody waits for uploads under way any more."""
        for pending in list(self._pending.values()):
            pending.cancel()

    async def url_for(self, png: bytes, name: str) -> str | None:
        """The GET URL of `png` on the file share, or None (logged once) when there is none."""
        key = hashlib.sha256(png).hexdigest()
        now = self.clock()
        hit = self._urls.get(key)
        if hit is not None and now - hit[0] < KEEP_URL:
            return hit[1]
        if self.service is UploadService.NONE or now < self.paused_until:
            return None
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._attempt(key, png, name))
            pending.add_done_callback(lambda _done: self._pending.pop(key, None))
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            if pending.cancelled():     # cancel() at stop, not this caller: no graph, no error
                return None
            raise

    async def _attempt(self, key: str, png: bytes, name: str) -> str | None:
        try:
            url = await asyncio.wait_for(self._upload(png, name), self.timeout)
        except asyncio.TimeoutError:
            self._pause(f"no upload within {self.timeout:g}s")
            return None
        except UploadError as e:
            self._pause(str(e))
            return None
        self._urls[key] = (self.clock(), url)
        while len(self._urls) > KEEP_MAX:
            self._urls.popitem(last=False)
        return url

    def _pause(self, why: str) -> None:
        if self.service is UploadService.NONE:
            # Until the next session: asking again for every alert would only repeat the answer.
            log.warning("jabber: %s (%s); Jabber alerts go without graphs", why, self.xmpp.boundjid.domain)
            return
        self.paused_until = self.clock() + PAUSE
        log.warning("jabber: graph upload failed: %s; Jabber alerts go without graphs for %gs", why, PAUSE)

    async def _upload(self, png: bytes, name: str) -> str:
        service = await self._find_service()
        if self.max_size is not None and len(png) > self.max_size:
            raise UploadError(f"graph of {len(png)} bytes is over {service}'s limit of {self.max_size}")
        try:
            iq = await self.xmpp.plugin["xep_0363"].request_slot(service, name, len(png), "image/png",
                                                                 timeout=self.timeout)
        except slixmpp.exceptions.IqError as e:
            raise UploadError(f"{service} refused a slot: {e.condition} {e.text}".rstrip()) from e
        except slixmpp.exceptions.IqTimeout as e:
            raise UploadError(f"{service} did not answer the slot request") from e
        slot = iq["http_upload_slot"]
        put, get = str(slot["put"]["url"]), str(slot["get"]["url"])
        for url in (put, get):
            scheme = urlsplit(url).scheme
            if scheme not in ("http", "https") or (self.require_https and scheme != "https"):
                raise UploadError(f"{service} offered {url!r}; with tls: true only https:// is used")
        headers = {"Content-Type": "image/png"}
        for h in slot["put"]["headers"]:
            name_ = str(h["name"])
            if name_.lower() in PUT_HEADERS:
                headers[name_] = str(h["value"]).replace("\r", "").replace("\n", "")
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.put(put, data=png, headers=headers, ssl=self._ssl(put),
                                       allow_redirects=False) as r:
                    if r.status >= 300:
                        raise UploadError(f"PUT {urlsplit(put).netloc}: HTTP {r.status} {r.reason}")
        except aiohttp.ClientError as e:
            raise UploadError(f"PUT {urlsplit(put).netloc}: {type(e).__name__}: {e}") from e
        return get

    def _ssl(self, url: str) -> ssl.SSLContext | None:
        """For an https PUT: the system's CAs plus ca_file, as for the XMPP stream."""
        if not url.startswith("https:"):
            return None
        if self._ssl_context is None:
            ctx = ssl.create_default_context()
            if self.ca_file:
                try:
                    ctx.load_verify_locations(self.ca_file)
                except (OSError, ssl.SSLError) as e:
                    raise UploadError(f"ca_file {self.ca_file}: {e}") from e
            self._ssl_context = ctx
        return self._ssl_context

    async def _find_service(self) -> slixmpp.JID:
        """The server's upload component (disco#items of our domain, then disco#info of each).
        Done here, not with xep_0363.find_upload_service: that one caches the domain's
        answer for the process's life, and on slixmpp 1.8.3 under Python 3.11 it raises
        (it hands coroutines to asyncio.wait)."""
        if isinstance(self.service, slixmpp.JID):
            return self.service
        disco = self.xmpp.plugin["xep_0030"]
        domain = slixmpp.JID(self.xmpp.boundjid.domain)
        try:
            items = await disco.get_items(domain, timeout=self.timeout)
        except (slixmpp.exceptions.IqError, slixmpp.exceptions.IqTimeout) as e:
            raise UploadError(f"disco#items of {domain} failed: {e}") from e
        for jid in [domain] + [slixmpp.JID(item[0]) for item in items["disco_items"]["items"]]:
            try:
                info = await disco.get_info(jid, timeout=self.timeout)
            except (slixmpp.exceptions.IqError, slixmpp.exceptions.IqTimeout):
                continue            # one broken component must not hide the upload service
            if UPLOAD_NS in info["disco_info"]["features"]:
                self.service, self.max_size = jid, _max_size(info)
                log.info("jabber: graphs in Jabber alerts are uploaded to %s", jid)
                return jid
        self.service = UploadService.NONE
        raise UploadError(UploadService.NONE.value)


def _max_size(info: Any) -> int | None:
    """The service's advertised max-file-size (XEP-0363 §4, an XEP-0128 form), if any."""
    for form in info["disco_info"].iterables:
        try:
            values = form["values"]
        except (KeyError, TypeError):
            continue
        if values.get("FORM_TYPE") in (UPLOAD_NS, [UPLOAD_NS]):
            try:
                return int(values.get("max-file-size"))
            except (TypeError, ValueError):
                return None
    return None
