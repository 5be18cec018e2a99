"""Slack channel: an incoming webhook (one message per notification), or the bot
token's chat.postMessage, whose first message about an event becomes the thread
that the event's later notifications (acknowledgement, escalation, recovery) are
posted in (thread_ts); with `update_parent`, chat.update keeps the first
message's status line current.

Threads are kept in the state directory (slack_threads.py), so a restart still
replies in them; a poller and a standby central keep their own (docs/integrations.md).
The token and the webhook URLs are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from checkd.config.integrations import SLACK_URL
from checkd.engine.notify.apipost import ApiChannel, origin
from checkd.engine.notify.notification import DeliveryError, Kind, Notification
from checkd.engine.notify.slack_threads import ThreadBook

# Web API errors worth another try (https://api.slack.com/web: "ok": false with these).
RETRYABLE = frozenset({"ratelimited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"})
THREADS = 10_000            # events whose thread is remembered (oldest forgotten first)
log = logging.getLogger(__name__)
ACK_ACTION = "checkd_ack"   # the Acknowledge button's action_id (central/integrations.py)


def escape(text: str) -> str:
    """Slack's mrkdwn: &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text_of(n: Notification, link: str) -> str:
    lines = [f"*{escape(n.subject)}*"]
    if n.output:
        lines.append(escape(n.output))
    if n.kind is Kind.ACKNOWLEDGEMENT:
        lines.append(f"acknowledged by {escape(n.author)}" + (f": {escape(n.comment)}" if n.comment else ""))
    if link:
        lines.append(f"<{link}|event {n.event_id}>" if n.event_id else f"<{link}|checkd>")
    return "\n".join(lines)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def status_line(n: Notification) -> str:
    """The parent's first line once the event moved on (update_parent)."""
    if n.kind is Kind.ACKNOWLEDGEMENT:
        return f"ACKNOWLEDGED by {n.author}"
    if n.kind is Kind.RECOVERY:
        return f"RECOVERED ({n.state})"
    return f"{n.kind.value} {n.state}".strip()


class SlackChannel(ApiChannel):
    """`settings`: the node file's `slack:` section, token and webhook URLs filled in;
    `keys`: the incoming webhooks' URLs by name."""

    per_event = False           # chat: storm control may summarise
    default_url = SLACK_URL
    entries = "webhooks"

    def __init__(self, settings: Mapping[str, Any], links: Callable[[Notification], str] | None = None,
                 threads_file: Path | None = None):
        super().__init__(settings, links)
        self.token = str(settings.get("token") or "")
        self.update_parent = bool(settings.get("update_parent", True))
        self.buttons = bool(settings.get("signing_secret"))      # an Acknowledge button needs the way back
        # (address, event) -> (channel ID, parent ts, parent text); and a lock per pair so two
        # notifications of one event do not both start a thread.
        self.threads = ThreadBook(threads_file, THREADS)
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def send(self, n: Notification) -> None:
        link = self.link(n)
        text = text_of(n, link)
        hook = self.keys.get(n.address)
        if hook is not None:
            # The hook's path is its secret: messages name the host alone.
            await self.client.post_json(hook, {"text": text}, f"slack {n.address}", secrets=(hook,),
                                        shown=origin(hook))
            return
        if not self.token:
            raise DeliveryError(f"slack: {n.address!r} is no `slack: {{webhooks:}}` name and slack: has no token",
                                retryable=False)
        if not n.event_id or n.kind is Kind.SUMMARY:
            await self._post(n, {"channel": n.address, "text": text})
            return
        key = (n.address, n.event_id)
        if len(self._locks) > THREADS:
            self._locks = {k: lock for k, lock in self._locks.items() if lock.locked()}
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            thread = await self.threads.get(key)
            if thread is None:
                doc: dict[str, Any] = {"channel": n.address, "text": text}
                if self.buttons and n.kind in (Kind.PROBLEM, Kind.ESCALATION):
                    doc["blocks"] = self._blocks(n, text)
                answer = await self._post(n, doc)
                await self.threads.add(key, (str(answer.get("channel") or n.address), str(answer.get("ts", "")), text))
                return
            channel, ts, parent = thread
            await self._post(n, {"channel": channel, "text": text, "thread_ts": ts})
            if self.update_parent and n.kind in (Kind.ACKNOWLEDGEMENT, Kind.RECOVERY):
                try:
                    # New blocks as well: the old ones (and their Acknowledge button) would stay.
                    updated = f"{escape(status_line(n))}\n{parent}"
                    await self._call(n, "chat.update", {"channel": channel, "ts": ts, "text": updated,
                                                        "blocks": [section(updated)]})
                except DeliveryError as e:
                    # The reply went out (so it is not sent again) and carries the news.
                    log.warning("%s: the thread's first message keeps its old status: %s", n.subject, e)

    def _blocks(self, n: Notification, text: str) -> list[dict[str, Any]]:
        return [section(text),
                {"type": "actions", "elements": [{"type": "button", "action_id": ACK_ACTION, "style": "primary",
                                                  "text": {"type": "plain_text", "text": "Acknowledge"},
                                                  "value": str(n.event_id)}]}]

    async def _post(self, n: Notification, doc: dict[str, Any]) -> dict[str, Any]:
        return await self._call(n, "chat.postMessage", doc)

    async def _call(self, n: Notification, method: str, doc: dict[str, Any]) -> dict[str, Any]:
        label = f"slack {n.address} {method}"
        _, raw = await self.client.post_json(f"{self.base}/{method}", doc, label,
                                             {"Authorization": f"Bearer {self.token}"}, secrets=(self.token,))
        try:
            answer = json.loads(raw)
        except ValueError as e:
            raise DeliveryError(f"{label}: the answer is not JSON", retryable=True) from e
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = str(answer.get("error") if isinstance(answer, dict) else answer)
            raise DeliveryError(f"{label}: {error}", retryable=error in RETRYABLE)
        return answer
