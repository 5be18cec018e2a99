"""The poller's copy of what central decided (checkd/engine/decisions.py): acks,
mutes, downtimes, rollouts and each open problem's notification progress. Asked for
every heartbeat interval while central answers and the poller is not alerting on its
own; applied to the poller's alerting engine and written to its alerts database in
one step, so the poller alerting on its own after central died decides as central would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from checkd.engine import decisions
from checkd.forwarder import Forwarder, PostError

if TYPE_CHECKING:
    from checkd.autonomy import LocalAlerting

log = logging.getLogger(__name__)


class DecisionSync:
    def __init__(self, alerting: LocalAlerting, every: float):
        self.alerting, self.every = alerting, every
        self.applied = 0                # documents applied since start
        self._failing = False

    @property
    def known(self) -> int | None:
        return self.alerting.store.meta.get(decisions.VERSION_KEY)

    async def run(self, fwd: Forwarder) -> None:
        while True:
            await asyncio.sleep(self.every)
            if not self.alerting.autonomous:
                await self.ask(fwd)

    async def ask(self, fwd: Forwarder) -> bool:
        """One ask; whether the poller's copy changed."""
        try:
            answer = await fwd.call("/api/v1/decisions", {"known": self.known})
        except PostError as e:
            if not self._failing:
                # Central away is the forwarder's to report; an older central has no such call.
                log.info("could not get central's decisions (%s); the poller keeps the copy it has", e)
                self._failing = True
            return False
        self._failing = False
        if not isinstance(answer, dict) or answer.get("unchanged") or self.alerting.autonomous:
            return False
        try:
            ops, summary = decisions.apply(self.alerting.store, self.alerting.engine.notifier.told, answer)
        except decisions.BadDecisions as e:
            log.error("%s; the poller keeps the copy it has", e)
            return False
        await self.alerting.engine.write(ops)
        self.applied += 1
        log.info("central's decisions for site %s (version %x): %s", self.alerting.node.site,
                 answer["version"], summary)
        return True
