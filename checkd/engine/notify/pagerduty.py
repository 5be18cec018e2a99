"""PagerDuty channel: the Events API v2 (POST /v2/enqueue), one event per notification.

A problem or escalation triggers, an acknowledgement acknowledges, a recovery
resolves, all under one dedup_key per checkd event (`checkd-367768`), so they
meet in one PagerDuty incident. The contact's `pagerduty: NAME` picks a routing
key from the node file's `pagerduty: {services:}`; the key is never logged.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from checkd.config.integrations import PAGERDUTY_URL
from checkd.engine.notify.apipost import ApiChannel
from checkd.engine.notify.notification import DeliveryError, Kind, Notification

ACTIONS = {Kind.PROBLEM: "trigger", Kind.ESCALATION: "trigger", Kind.ACKNOWLEDGEMENT: "acknowledge",
           Kind.RECOVERY: "resolve"}
SEVERITY = {"CRITICAL": "critical", "DOWN": "critical", "WARNING": "warning", "UNKNOWN": "error",
            "UNREACHABLE": "error"}
SUMMARY_MAX = 1024           # PagerDuty cuts payload.summary there


def severity(state: str) -> str:
    """PagerDuty's critical/error/warning/info of a checkd state."""
    return SEVERITY.get(state, "info")


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="seconds")


def event(n: Notification, routing_key: str, link: str) -> dict[str, Any]:
    """The Events API v2 document for `n` (docs/integrations.md lists it field by field)."""
    action = ACTIONS[n.kind]
    doc: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": n.dedup_key}
    if action != "trigger":
        return doc              # acknowledge and resolve carry the key alone
    doc["payload"] = {
        "summary": f"{n.subject} {n.output.splitlines()[0] if n.output else ''}".strip()[:SUMMARY_MAX],
        "source": n.host,
        "severity": severity(n.state),
        "timestamp": iso(n.since),
        "component": n.service or "host",
        "group": n.site,
        "class": "host check" if n.service is None else "service check",
        "custom_details": {"event_id": n.event_id, "state": n.state, "output": n.output,
                           "long_output": n.long_output, "escalation_level": n.escalation_level,
                           "notes": n.notes, "runbook": n.runbook, "via": n.via, "checkd_type": n.kind.value},
    }
    doc["client"] = "checkd"
    if link:
        doc["client_url"] = link
        doc["links"] = [{"href": link, "text": f"checkd event {n.event_id}"}]
    if n.runbook:
        doc.setdefault("links", []).append({"href": n.runbook, "text": "runbook"})
    return doc


class PagerDutyChannel(ApiChannel):
    """`settings`: the node file's `pagerduty:` section, routing keys filled in (checkd/config/integrations.py)."""

    default_url = PAGERDUTY_URL
    entries = "services"

    async def send(self, n: Notification) -> None:
        key = self.keys.get(n.address)
        if key is None:
            raise DeliveryError(f"pagerduty: no service {n.address!r} under `pagerduty: {{services:}}`",
                                retryable=False)
        if n.kind not in ACTIONS:
            return              # the notifier decides no other kind for this channel (PAGED)
        doc = event(n, key, self.link(n))
        _, answer = await self.client.post_json(f"{self.base}/v2/enqueue", doc, f"pagerduty {n.address}",
                                                secrets=(key,))
        try:
            status = json.loads(answer).get("status", "success")
        except (ValueError, AttributeError):
            status = "success"  # a 2xx is acceptance; the body is informative only
        if status not in ("success", None):
            raise DeliveryError(f"pagerduty {n.address}: answered {status!r}", retryable=False)
