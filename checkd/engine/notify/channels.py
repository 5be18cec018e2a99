"""The node file's `email:`, `jabber:`, `webhook:`, `pagerduty:`, `opsgenie:`, `slack:` and
`notify:` sections made into channels, a Jabber client and dispatcher settings.

A channel is built only when its section is there: a contact's Jabber ID is
ignored (with one warning) on a central without `jabber:`. Email and Jabber alerts
link to the event's page (links.py): central's own, also from a poller.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from checkd.engine.notify.dispatch import Sender, Settings
from checkd.engine.notify.email import EmailChannel
from checkd.engine.notify.jabber import JabberClient
from checkd.engine.notify.links import Links, base_url
from checkd.engine.notify.notification import Channel
from checkd.engine.notify.opsgenie import OpsgenieChannel
from checkd.engine.notify.pagerduty import PagerDutyChannel
from checkd.engine.notify.slack import SlackChannel
from checkd.engine.notify.webhook import WebhookChannel
from checkd.config.model import Objects
from checkd.config.node import NodeConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Channels:
    senders: dict[Channel, Sender]
    jabber: JabberClient | None
    settings: Settings

    async def close(self) -> None:
        """The connections kept open between sends (SMTP: QUIT; the HTTP channels' sessions)."""
        for sender in self.senders.values():
            if isinstance(sender, (WebhookChannel, PagerDutyChannel, OpsgenieChannel, SlackChannel)):
                await sender.close()
        mail = self.senders.get(Channel.EMAIL)
        if isinstance(mail, EmailChannel):
            await mail.close()


def build(node: NodeConfig, objs: Objects, links: Links | None = None) -> Channels:
    """`links`: central passes its own (it knows the port it bound); default: from the node file."""
    links = links or Links(lambda: base_url(node))
    base = Path(node.file).resolve().parent
    senders: dict[Channel, Sender] = {}
    email = dict(node.section("email"))
    notify = node.section("notify")
    if email:
        if email.get("maildir"):
            email["maildir"] = str(base / email["maildir"])
        email.pop("password_file", None)
        senders[Channel.EMAIL] = EmailChannel(email, node.templates_dir(), links=links)
    jabber = None
    if node.section("jabber"):
        settings = dict(node.section("jabber"))
        if settings.get("ca_file"):
            settings["ca_file"] = str(base / settings["ca_file"])
        jabber = JabberClient(settings, links=links)
        senders[Channel.JABBER] = jabber
    if node.section("webhook") or any(c.webhook for c in objs.contacts.values()):
        senders[Channel.WEBHOOK] = WebhookChannel(node.section("webhook"), links=links)
    for channel, kind in ((Channel.PAGERDUTY, PagerDutyChannel), (Channel.OPSGENIE, OpsgenieChannel)):
        if node.section(channel.value):
            senders[channel] = kind(node.section(channel.value), links=links)
    if node.section("slack"):
        senders[Channel.SLACK] = SlackChannel(node.section("slack"), links=links,
                                              threads_file=node.state_dir / "slack-threads.jsonl")
    for channel, attr in ((Channel.EMAIL, "email"), (Channel.JABBER, "jabber"), (Channel.PAGERDUTY, "pagerduty"),
                          (Channel.OPSGENIE, "opsgenie"), (Channel.SLACK, "slack")):
        unreachable = sorted(c.name for c in objs.contacts.values() if getattr(c, attr) and channel not in senders)
        if unreachable:
            log.warning("contacts %s have %s addresses but %s has no `%s:` section: not sent that way",
                        ", ".join(unreachable), attr, node.file, attr)
    defaults = Settings()
    settings = Settings(
        storm_threshold=notify.get("storm_threshold", defaults.storm_threshold),
        storm_window=notify.get("storm_window", defaults.storm_window),
        storm_hold=notify.get("storm_hold", defaults.storm_hold),
        retry_for=notify.get("retry_for", defaults.retry_for),
        retry_after=notify.get("retry_after", defaults.retry_after))
    return Channels(senders, jabber, settings)
