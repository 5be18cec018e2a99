"""The poller's chat bot: while central is unreachable the poller's own Jabber account
(it connects only then) answers the commands that matter in an outage, wassup,
status, ack, resched, dis, ena and help, for the JIDs its `jabber:` section allows,
over checkd/poller_actions.py. Everyone else is refused and logged, as at central.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from checkd.chat.bot import ChatBot, Reply
from checkd.config.model import Objects
from checkd.config.node import NodeConfig
from checkd.engine.engine import Engine
from checkd.engine.notify.jabber import JabberClient
from checkd.poller_actions import PollerActions


class PollerBot(ChatBot):
    INTERNAL_ERROR = "internal error while doing that; it is in the poller's log"
    log = logging.getLogger(__name__)

    def __init__(self, node: Callable[[], NodeConfig], objects: Callable[[], Objects], engine: Engine,
                 actions: PollerActions, client: JabberClient):
        super().__init__(objects, lambda: node().section("jabber"), engine.store, engine.events, actions, client)
        self.node = node

    async def wassup(self, jid: str, args: str, reply: Reply) -> str:
        """Says whose view it is: this poller's, while central is away."""
        n = self.node()
        return f"(poller {n.name}, site {n.site}, central unreachable)\n" + await super().wassup(jid, args, reply)
