"""What an operator's command asks of a daemon: the error it may answer with and,
as `ChatActions`, the operations the chat commands use. Central's
central/operations.py implements them; a poller can implement the same over its
own engine, so one chat bot (checkd/chat/) serves both.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from checkd.engine.store import CheckView, Event, Mute


class OpError(Exception):
    """An operation that cannot be done; `status` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def target_name(host: str, service: str | None) -> str:
    return host if service is None else f"{host}/{service}"


class ChatActions(Protocol):
    """The operations behind wassup, status, ack, resched, dis, ena and the operator HTTP
    calls (checkd/operator_api.py); each raises OpError for what cannot be done (404: no
    such event or check)."""

    def target(self, host: str, service: str | None) -> tuple[str, str | None]:
        """The host (and service), checked against the configuration."""
        ...

    def open_event(self, eid: int) -> Event: ...

    async def event_target(self, eid: int) -> tuple[str, str | None]: ...

    async def ack(self, eid: int, author: str, comment: str, sticky: bool = True,
                  expires: float | None = None) -> Event: ...

    async def ack_many(self, eids: list[int], author: str, comment: str, sticky: bool = True,
                       expires: float | None = None) -> tuple[list[Event], list[int]]:
        """Acknowledged in one step: those acknowledged, and the IDs not open (OpError 404
        when none is)."""
        ...

    def problems_of(self, host: str) -> list[int]:
        """The open problems of a host and its services."""
        ...

    async def set_notifications(self, host: str, service: str | None, enabled: bool, duration: float | None,
                                author: str) -> Mute | None: ...

    async def reschedule(self, host: str, service: str | None, author: str) -> list[str]:
        """Has the check run now; who runs it."""
        ...

    def next_result(self, host: str, service: str | None, after: float) -> asyncio.Future[CheckView]:
        """Resolves with the check's first result that finished after `after`."""
        ...
