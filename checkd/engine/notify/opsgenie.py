"""Opsgenie channel: the Alert API v2, one request per notification.

A problem or escalation creates an alert whose alias is the event's dedup key
(`checkd-367768`: Opsgenie counts a second create of an open alias instead of
opening another), an acknowledgement acknowledges it and a recovery closes it, by
alias. The contact's `opsgenie: NAME` picks an API key (`GenieKey`) from the node
file's `opsgenie: {teams:}`; the key is never logged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from checkd.config.integrations import OPSGENIE_URL
from checkd.engine.notify.apipost import ApiChannel
from checkd.engine.notify.notification import DeliveryError, Kind, Notification

PRIORITY = {"CRITICAL": "P1", "DOWN": "P1", "UNREACHABLE": "P2", "WARNING": "P3", "UNKNOWN": "P3"}
MESSAGE_MAX = 130           # Opsgenie's limits on message and description
DESCRIPTION_MAX = 15000
KINDS = frozenset({Kind.PROBLEM, Kind.ESCALATION, Kind.ACKNOWLEDGEMENT, Kind.RECOVERY})


def priority(state: str) -> str:
    return PRIORITY.get(state, "P5")


def create(n: Notification, link: str) -> dict[str, Any]:
    """The create request's body (docs/integrations.md lists it field by field)."""
    details = {"event_id": str(n.event_id), "state": n.state, "site": n.site, "host": n.host,
               "escalation_level": str(n.escalation_level), "via": n.via}
    for key, value in (("service", n.service), ("runbook", n.runbook), ("notes", n.notes), ("url", link)):
        if value:
            details[key] = value
    description = "\n\n".join(p for p in (n.output, n.long_output, link) if p)
    return {"message": n.subject[:MESSAGE_MAX], "alias": n.dedup_key, "description": description[:DESCRIPTION_MAX],
            "priority": priority(n.state), "entity": n.target, "source": "checkd",
            "tags": ["checkd", n.state.lower(), f"site:{n.site}"], "details": details}


class OpsgenieChannel(ApiChannel):
    """`settings`: the node file's `opsgenie:` section, API keys filled in (checkd/config/integrations.py)."""

    default_url = OPSGENIE_URL
    entries = "teams"

    async def send(self, n: Notification) -> None:
        key = self.keys.get(n.address)
        if key is None:
            raise DeliveryError(f"opsgenie: no team {n.address!r} under `opsgenie: {{teams:}}`", retryable=False)
        if n.kind not in KINDS:
            return              # the notifier decides no other kind for this channel (PAGED)
        link = self.link(n)
        if n.kind in (Kind.PROBLEM, Kind.ESCALATION):
            url, doc = f"{self.base}/v2/alerts", create(n, link)
        else:
            action = "acknowledge" if n.kind is Kind.ACKNOWLEDGEMENT else "close"
            url = f"{self.base}/v2/alerts/{quote(n.dedup_key, safe='')}/{action}?identifierType=alias"
            note = f"{n.kind.value} {n.state}" + (f": {n.comment}" if n.comment else "")
            doc = {"user": n.author or "checkd", "source": "checkd", "note": note}
        await self.client.post_json(url, doc, f"opsgenie {n.address}", {"Authorization": f"GenieKey {key}"},
                                    secrets=(key,))
