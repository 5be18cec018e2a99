"""Links in alerts: every email and Jabber alert names its event's page on central,
`BASE/event/ID` (central/web/pages.py sends it on to the host or service page), and
a storm summary names the NOC overview, `BASE/`. BASE is how people reach central.
"""

from __future__ import annotations

import socket
from urllib.parse import quote
from collections.abc import Callable

from checkd.engine.notify.notification import Kind, Notification
from checkd.config.node import NodeConfig

WILDCARDS = ("", "0.0.0.0", "::", "*")


def base_url(node: NodeConfig, port: int | None = None) -> str:
    """`public_url:` when set. Else central's listen address (`port`: the one bound),
    with the machine's name for a wildcard address; a poller uses its `central:` URL,
    so links from a poller alerting on its own work once central is back."""
    if node.public_url:
        return node.public_url.rstrip("/")
    if node.role == "poller":
        return node.central.rstrip("/")
    host, listen_port = node.listen
    if host in WILDCARDS:
        host = socket.gethostname()      # no DNS: the short name people's resolvers usually complete
    elif ":" in host:
        host = f"[{host}]"
    scheme = "https" if node.section("tls").get("cert") else "http"
    return f"{scheme}://{host}:{port or listen_port}"


class Links:
    """`links(n)`: the URL a notification points at. `base` is read at each call, so a
    reload's public_url and the port central bound are used."""

    def __init__(self, base: Callable[[], str]) -> None:
        self.base = base

    def event(self, event_id: int) -> str:
        return f"{self.base()}/event/{event_id}"

    def graph(self, host: str, service: str) -> str:
        """The service's graph image (central/graphs/api.py), for the chat's `graph`."""
        return f"{self.base()}/graph/{quote(host)}/{quote(service, safe='')}.png"

    def __call__(self, n: Notification) -> str:
        if n.kind is Kind.SUMMARY:
            return f"{self.base()}/"
        if not n.event_id:
            # A notice about no problem (a downtime of a check that is fine): the check's page.
            path = f"host/{quote(n.host, safe='')}" if n.service is None else \
                f"service/{quote(n.host, safe='')}/{quote(n.service, safe='')}"
            return f"{self.base()}/{path}"
        return self.event(n.event_id)
