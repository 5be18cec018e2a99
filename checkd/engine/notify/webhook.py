"""Webhook channel: POSTs a Notification as JSON to an http(s) URL.

The JSON field names and the X-Checkd-Event-ID header are a contract with
whatever receives them (chat tools, ticket systems, scripts). Failures become
DeliveryError, retryable when the receiver may accept later (timeouts,
connection errors, 408, 429, 5xx); error messages name the URL without
credentials or query string, since webhook tokens often live there. A contact's
`webhook_template:` replaces the fixed JSON with a Jinja2 template's (docs/integrations.md).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import jinja2

from checkd import __version__
from checkd.config.integrations import template_environment
from checkd.engine.notify.apipost import CONTROL, JsonClient, post, redact
from checkd.engine.notify.notification import DeliveryError, Notification
from checkd.durations import parse_duration

SETTINGS = frozenset({"timeout", "headers", "user_agent", "templates"})
# Headers the channel owns: a settings header cannot change the contract.
_RESERVED = frozenset({"content-type", "content-length", "host", "x-checkd-event-id",
                       "transfer-encoding"})
_CONTROL = CONTROL


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


def template_fields(n: Notification, url: str) -> dict[str, Any]:
    """What a `webhook: {templates:}` template sees: the fixed JSON's fields, and `label`,
    `contact`, `url` (the event's page), `dedup_key`."""
    return {**payload(n), "label": n.label, "contact": n.contact, "url": url, "dedup_key": n.dedup_key}


class WebhookChannel:
    """Sends one Notification as one HTTP POST; `settings` is the node file's `webhook:` section.

    One aiohttp session per channel, made on first use (inside the running
    loop); `await close()` when done.
    """

    carries_graphs = False              # JSON only: no image

    def __init__(self, settings: Mapping[str, Any] | None = None, links: Any = None):
        """`links(n)`: the event page's URL, for templates (checkd/engine/notify/links.py)."""
        settings = dict(settings or {})
        self.links = links
        env = template_environment()
        try:
            self.templates = {name: env.from_string(text) for name, text in (settings.get("templates") or {}).items()}
        except jinja2.TemplateSyntaxError as e:
            raise ValueError(f"webhook: templates: line {e.lineno}: {e.message}") from e
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
        self.client = JsonClient(self.timeout, self.user_agent)

    async def close(self) -> None:
        await self.client.close()

    def body(self, n: Notification, url: str) -> bytes:
        """The JSON body: the contact's template rendered, else the fixed document (payload)."""
        if not n.template:
            try:
                return json.dumps(payload(n), ensure_ascii=False).encode("utf-8")
            except (TypeError, ValueError) as e:
                raise DeliveryError(f"webhook {url}: cannot build JSON: {e}", retryable=False) from e
        template = self.templates.get(n.template)
        if template is None:
            raise DeliveryError(f"webhook {url}: no template {n.template!r} under `webhook: {{templates:}}` "
                                "(removed since the notification was decided?)", retryable=False)
        try:
            text = template.render(template_fields(n, self.links(n) if self.links else ""))
            json.loads(text)
        except (jinja2.TemplateError, TypeError, ArithmeticError) as e:
            raise DeliveryError(f"webhook {url}: template {n.template}: {type(e).__name__}: {e}",
                                retryable=False) from e
        except ValueError as e:
            raise DeliveryError(f"webhook {url}: template {n.template} did not render valid JSON for "
                                f"{n.subject}: {e}", retryable=False) from e
        return text.encode("utf-8")

    async def send(self, n: Notification) -> None:
        url = redact(n.address)
        parts = urllib.parse.urlsplit(n.address) if url != "<unparsable URL>" else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            # A bad address will be just as bad next time.
            raise DeliveryError(f"webhook {url}: not an http(s) URL", retryable=False)
        headers = {**self.headers, "Content-Type": "application/json",
                   "X-Checkd-Event-ID": str(n.event_id)}
        await post(self.client.session(), n.address, self.body(n, url), headers, "webhook", self.timeout, url)
