"""Graphite's plaintext protocol over one kept TCP connection to carbon:
`PREFIX.HOST.SERVICE.LABEL VALUE TIMESTAMP\n`. Each name part loses what Graphite
reads as structure or cannot store (dots, spaces, slashes...): they become `_`, as
Icinga 2's GraphiteWriter does, so `db1.ladc1` is one level, `db1_ladc1`.
"""

from __future__ import annotations

import asyncio
import re

from central.export.items import Item, Sample
from central.export.outbox import SendError
from checkd.config.exports import ExportTarget

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def part(text: str) -> str:
    """One level of a Graphite name: never empty, never a dot."""
    return _UNSAFE.sub("_", text) or "_"


def name(prefix: str, item: Item) -> str:
    if isinstance(item, Sample):
        return ".".join((prefix, part(item.host), part(item.service), part(item.label)))
    return ".".join((prefix, "deployments", part(item.host), part(item.module), part(item.phase)))


def encode(prefix: str, items: list[Item]) -> bytes:
    lines = []
    for item in items:
        value = item.value if isinstance(item, Sample) else 1.0
        lines.append(f"{name(prefix, item)} {value!r} {int(item.ts)}\n")
    return "".join(lines).encode()


class GraphiteSender:
    """Carbon never answers, so a write that reaches the kernel counts as sent; a
    connection carbon closed (it restarted) is noticed before the next write, when the
    reader is at EOF, and opened again."""

    def __init__(self, target: ExportTarget):
        self.target = target
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, items: list[Item]) -> None:
        data = encode(self.target.prefix, items)
        try:
            if self._conn is not None and (self._conn[0].at_eof() or self._conn[1].is_closing()):
                await self.close()
            if self._conn is None:
                host, port = self.target.address
                self._conn = await asyncio.open_connection(host, port)
            writer = self._conn[1]
            writer.write(data)
            await writer.drain()
        except OSError as e:
            await self.close()
            raise SendError(f"{self.target.address[0]}:{self.target.address[1]}: {e.strerror or e}") from None

    async def close(self) -> None:
        if self._conn is not None:
            writer, self._conn = self._conn[1], None
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
