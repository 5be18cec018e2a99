"""One HTTP POST of a JSON body to a receiver (a webhook, PagerDuty, Opsgenie, Slack), its
answer sorted into delivered / retryable / refused for good.

Retryable: timeouts, connection errors, 408, 429 and 5xx (the receiver may accept
later). Refused: any other status, with an excerpt of what the receiver said. Redirects
are never followed: a 3xx could take the body and its credentials to another host.
Messages name `shown` (the URL without credentials or query), never a key.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from checkd import __version__
from checkd.engine.notify.notification import DeliveryError, Notification

RETRYABLE_STATUS = frozenset({408, 429})
EXCERPT = 200
CONTROL = re.compile(r"[\r\n\x00-\x1f\x7f]+")


def redact(url: str) -> str:
    """`scheme://host[:port]/path`: no user/password, query or fragment (tokens live there)."""
    try:
        p = urllib.parse.urlsplit(url)
        host = p.hostname or ""
        if ":" in host:
            host = f"[{host}]"   # IPv6 literal
        port = f":{p.port}" if p.port is not None else ""
    except ValueError:
        return "<unparsable URL>"
    return f"{p.scheme}://{host}{port}{p.path}"


def origin(url: str) -> str:
    """`scheme://host[:port]` alone: for URLs whose path is the secret (Slack's incoming webhooks)."""
    p = urllib.parse.urlsplit(redact(url))
    return f"{p.scheme}://{p.netloc}"


async def post(session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str],
               label: str, timeout: float, shown: str | None = None,
               secrets: tuple[str, ...] = ()) -> tuple[int, bytes]:
    """POST `body`; (status, answer body) of a 2xx, else DeliveryError naming `label` and `shown`.
    `secrets` (keys, tokens) are cut from any message a failure makes."""
    shown = shown or redact(url)
    try:
        async with session.post(url, data=body, headers=dict(headers), allow_redirects=False) as resp:
            status = resp.status
            if 200 <= status < 300:
                return status, await resp.read()
            if 300 <= status < 400:
                location = resp.headers.get("Location", "")
                where = redact(urllib.parse.urljoin(url, location)) if location else "none"
                raise DeliveryError(f"{label} {shown}: HTTP {status} redirect to {where} "
                                    f"(redirects are not followed; fix the URL)", retryable=False)
            message = f"{label} {shown}: HTTP {status} {one_line(resp.reason or '')}".rstrip()
            excerpt = scrub(await _excerpt(resp), url, shown, secrets)
            if excerpt:
                message = f"{message}: {excerpt}"
            raise DeliveryError(message, retryable=status in RETRYABLE_STATUS or status >= 500)
    except DeliveryError:
        raise
    except aiohttp.InvalidURL as e:
        raise DeliveryError(f"{label} {shown}: invalid URL", retryable=False) from e
    except asyncio.TimeoutError as e:   # includes aiohttp's ServerTimeoutError
        raise DeliveryError(f"{label} {shown}: timed out after {timeout:g}s", retryable=True) from e
    except (aiohttp.ClientError, OSError) as e:
        # Refused, reset, DNS, TLS, server disconnected: the receiver may be back soon.
        raise DeliveryError(f"{label} {shown}: {type(e).__name__}: {scrub(str(e), url, shown, secrets)}",
                            retryable=True) from e


def one_line(text: str) -> str:
    return CONTROL.sub(" ", text).strip()


def scrub(message: str, address: str, shown: str, secrets: tuple[str, ...] = ()) -> str:
    """aiohttp puts the full URL in some messages; show the redacted one, and no secret."""
    message = message.replace(address, shown)
    for s in secrets:
        if s:
            message = message.replace(s, "<secret>")
    return one_line(message)


async def _excerpt(resp: aiohttp.ClientResponse) -> str:
    try:
        raw = await resp.content.read(4 * EXCERPT)   # enough for 200 characters of most text
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return ""
    try:
        text = raw.decode(resp.charset or "utf-8", errors="replace")
    except LookupError:   # a charset Python does not know
        text = raw.decode("utf-8", errors="replace")
    return one_line(text)[:EXCERPT]


class ApiChannel:
    """What the PagerDuty, Opsgenie and Slack channels share: the API's base URL (`url:`, else
    `default_url`), the section's named secrets (`entries`: name -> key or URL), the event
    page's link, and one JsonClient."""

    carries_graphs = False              # JSON only: no image
    per_event = True                    # one incident per event: storm control leaves these alone
    default_url = ""
    entries = ""

    def __init__(self, settings: Mapping[str, Any], links: Callable[[Notification], str] | None = None):
        self.base = str(settings.get("url") or self.default_url).rstrip("/")
        self.keys: dict[str, str] = dict(settings.get(self.entries) or {})
        self.links = links
        self.client = JsonClient(float(settings.get("timeout", 10.0)), f"checkd/{__version__}")

    async def close(self) -> None:
        await self.client.close()

    def link(self, n: Notification) -> str:
        return self.links(n) if self.links else ""


class JsonClient:
    """One aiohttp session per channel, made on first use (inside the running loop), for the
    JSON APIs (PagerDuty, Opsgenie, Slack); `await close()` when done."""

    def __init__(self, timeout: float, user_agent: str):
        self.timeout = timeout
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                                  headers={"User-Agent": self.user_agent})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post_json(self, url: str, doc: Any, label: str, headers: Mapping[str, str] | None = None,
                        secrets: tuple[str, ...] = (), shown: str | None = None) -> tuple[int, bytes]:
        """`shown`: the URL as messages name it (default: without credentials and query)."""
        body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        return await post(self.session(), url, body, {"Content-Type": "application/json; charset=utf-8",
                                                      **(headers or {})},
                          label, self.timeout, shown=shown, secrets=secrets)
