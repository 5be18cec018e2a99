"""Commands for pollers (reschedule now, ...), held until the poller's next
heartbeat or results answer, since pollers never accept inbound connections.

Kept in memory only: a reschedule lost in a central restart is harmless (the
check runs at its next interval anyway), so it is not worth a disk write.
"""

from __future__ import annotations

from typing import Any


class CommandQueue:
    def __init__(self) -> None:
        self._pending: dict[str, list[dict[str, Any]]] = {}

    def reschedule(self, poller: str, host: str, service: str | None) -> None:
        cmd = {"type": "reschedule", "host": host, "service": service}
        queue = self._pending.setdefault(poller, [])
        if cmd not in queue:        # asking twice before the poller calls in is one run
            queue.append(cmd)

    def take(self, poller: str) -> list[dict[str, Any]]:
        """Everything pending for `poller`; delivered once."""
        return self._pending.pop(poller, [])

    def pending(self, poller: str) -> list[dict[str, Any]]:
        return list(self._pending.get(poller, ()))
