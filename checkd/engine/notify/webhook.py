"""Webhook channel: POSTs a Notification as JSON to an http(s) URL.

The JSON field names and the X-Checkd-Event-ID header are a contract with
whatever receives them (chat tools, ticket systems, scripts). Failures become
DeliveryError, retryable when the receiver may accept later (timeouts,
connection errors, 408, 429, 5xx); error messages name the URL without
credentials or query string, since webhook tokens often live there.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp

from checkd import __version__
from checkd.engine.notify.notification import DeliveryError, Notification
from checkd.durations import parse_duration

SETTINGS = frozenset({"timeout", "headers", "user_agent"})
# Headers the channel owns: a settings header cannot change the contract.
_RESERVED = frozenset({"content-type", "content-length", "host", "x-checkd-event-id",
                       "transfer-encoding"})
_RETRYABLE_STATUS = frozenset({408, 429})
_EXCERPT = 200
_CONTROL = re.compile(r"[\r\n\x00-\x1f\x7f]+")


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


def payload(n: Notification) -> dict[str, Any]:
    """The JSON document a webhook receives for `n`."""
    return {
        "event_id": n.event_id,
        "notification_id": n.log_id,
        "type": n.kind.value,
        "subject": n.subject,
        "host": n.host,
        "service": n.service,
        "state": n.state,
        "site": n.site,
        "output": n.output,
        "long_output": n.long_output,
        "since": n.since,
        "created": n.created,
        "duration_s": max(0.0, n.created - n.since),
        "escalation_level": n.escalation_level,
        "author": n.author,
        "comment": n.comment,
        "runbook": n.runbook,
        "notes": n.notes,
        "via": n.via,
        "summary_ids": list(n.summary_ids),
    }


class WebhookChannel:
    """Sends one Notification as one HTTP POST; `settings` is the node file's `webhook:` section.

    One aiohttp session per channel, made on first use (inside the running
    loop); `await close()` when done.
    """

    carries_graphs = False              # JSON only: no image

    def __init__(self, settings: Mapping[str, Any] | None = None):
        settings = dict(settings or {})
        unknown = set(settings) - SETTINGS
        if unknown:
            raise ValueError(f"webhook: unknown settings {sorted(unknown)}; known: {sorted(SETTINGS)}")
        try:
            self.timeout = parse_duration(settings.get("timeout", 10))   # "10s" or 10
        except ValueError as e:
            raise ValueError(f"webhook: timeout: {e}") from e
        if self.timeout <= 0:
            raise ValueError("webhook: timeout must be more than 0")
        headers = settings.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ValueError("webhook: headers is a mapping of header name to value")
        self.headers: dict[str, str] = {}
        for name, value in headers.items():
            if not isinstance(name, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ValueError(f"webhook: bad header name {name!r}")
            if name.lower() in _RESERVED:
                raise ValueError(f"webhook: header {name} is set by checkd itself")
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(f"webhook: header {name} needs a text value")
            if _CONTROL.search(str(value)):
                raise ValueError(f"webhook: header {name} contains a line break or control character")
            self.headers[name] = str(value)
        self.user_agent = str(settings.get("user_agent") or f"checkd/{__version__}")
        if _CONTROL.search(self.user_agent):
            raise ValueError("webhook: user_agent contains a line break or control character")
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": self.user_agent})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, n: Notification) -> None:
        url = redact(n.address)
        parts = urllib.parse.urlsplit(n.address) if url != "<unparsable URL>" else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            # A bad address will be just as bad next time.
            raise DeliveryError(f"webhook {url}: not an http(s) URL", retryable=False)
        try:
            body = json.dumps(payload(n), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise DeliveryError(f"webhook {url}: cannot build JSON: {e}", retryable=False) from e
        headers = {**self.headers, "Content-Type": "application/json",
                   "X-Checkd-Event-ID": str(n.event_id)}
        session = self._get_session()
        try:
            # Redirects are never followed: a 3xx could send the payload (and any
            # Authorization header) to another host.
            async with session.post(n.address, data=body, headers=headers,
                                    allow_redirects=False) as resp:
                status = resp.status
                if 200 <= status < 300:
                    return
                if 300 <= status < 400:
                    location = resp.headers.get("Location", "")
                    shown = redact(urllib.parse.urljoin(n.address, location)) if location else "none"
                    raise DeliveryError(f"webhook {url}: HTTP {status} redirect to {shown} "
                                        f"(redirects are not followed; fix the URL)", retryable=False)
                reason = _one_line(resp.reason or "")
                if status in _RETRYABLE_STATUS or status >= 500:
                    raise DeliveryError(f"webhook {url}: HTTP {status} {reason}".rstrip(), retryable=True)
                # The receiver refused for good (bad token, unknown channel): show what it said.
                excerpt = await _excerpt(resp)
                message = f"webhook {url}: HTTP {status} {reason}".rstrip()
                raise DeliveryError(f"{message}: {excerpt}" if excerpt else message, retryable=False)
        except DeliveryError:
            raise
        except aiohttp.InvalidURL as e:
            raise DeliveryError(f"webhook {url}: invalid URL", retryable=False) from e
        except asyncio.TimeoutError as e:   # includes aiohttp's ServerTimeoutError
            raise DeliveryError(f"webhook {url}: timed out after {self.timeout:g}s", retryable=True) from e
        except (aiohttp.ClientError, OSError) as e:
            # Refused, reset, DNS, TLS, server disconnected: the receiver may be back soon.
            raise DeliveryError(f"webhook {url}: {type(e).__name__}: {_scrub(str(e), n.address, url)}",
                                retryable=True) from e


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def _scrub(message: str, address: str, shown: str) -> str:
    """aiohttp puts the full URL in some messages; show the redacted one instead."""
    return _one_line(message.replace(address, shown))


async def _excerpt(resp: aiohttp.ClientResponse) -> str:
    try:
        raw = await resp.content.read(4 * _EXCERPT)   # enough for 200 characters of most text
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return ""
    try:
        text = raw.decode(resp.charset or "utf-8", errors="replace")
    except LookupError:   # a charset Python does not know
        text = raw.decode("utf-8", errors="replace")
    return _one_line(text)[:_EXCERPT]
