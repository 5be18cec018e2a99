"""Event IDs: integers unique across central and every poller, never reused.

Central hands out IDs from a chunk whose end (`id_mark`) is persisted before
any ID of the chunk can be seen; a restart continues at the persisted mark,
so IDs keep rising even after kill -9 (a few are skipped, none reused).
Pollers get blocks beyond the mark (POST /api/v1/ids/reserve) to use while
cut off from central; see docs/events.md.
"""

from __future__ import annotations

import time
from typing import Any

from checkd.engine.db import Op

CHUNK = 10_000
MAX_BLOCK = 100_000
SET_META = "INSERT OR REPLACE INTO meta VALUES (?,?)"
INSERT_BLOCK = "INSERT INTO id_blocks VALUES (?,?,?,?)"


class IdAllocator:
    def __init__(self, start: int, blocks: list[tuple[Any, ...]], used_poller_ids: set[int]):
        """`start`: the first ID that may be handed out (above every persisted mark,
        event and block); `blocks` are id_blocks rows (first, last, poller, issued)."""
        self.next = start
        self.mark = start                 # IDs below mark are durably reserved for central
        self.blocks: dict[str, list[tuple[int, int]]] = {}
        for first, last, poller, _ in blocks:
            self.blocks.setdefault(poller, []).append((first, last))
        self.used_poller_ids = used_poller_ids

    @classmethod
    def from_tables(cls, meta: dict[str, int], events: list[tuple[Any, ...]],
                    blocks: list[tuple[Any, ...]], poller_ids: list[tuple[Any, ...]] = ()) -> IdAllocator:
        start = max([meta.get("id_mark", 1), *(e[0] + 1 for e in events), *(b[1] + 1 for b in blocks)])
        used = {e[0] for e in events if e[11] != "central"} | {r[0] for r in poller_ids}
        return cls(start, blocks, used)

    def refill(self) -> list[Op]:
        """Reserve the next chunk for central; the ops must commit before its IDs are shown."""
        self.mark = max(self.mark, self.next) + CHUNK
        return [(SET_META, [("id_mark", self.mark)])]

    def allocate(self) -> tuple[int, list[Op]]:
        """The next central ID and the ops that keep the reservation ahead of it.

        The refill starts at half a chunk, so it is committed (group commit takes
        milliseconds) long before the IDs it covers are reached."""
        ops: list[Op] = []
        if self.next >= self.mark - CHUNK // 2:
            ops = self.refill()
        eid = self.next
        self.next += 1
        return eid, ops

    def reserve_block(self, poller: str, count: int, now: float | None = None) -> tuple[int, int, list[Op]]:
        """A block of `count` IDs for a poller, beyond everything reserved so far."""
        count = max(1, min(count, MAX_BLOCK))
        first = max(self.mark, self.next)
        last = first + count - 1
        self.blocks.setdefault(poller, []).append((first, last))
        # Central continues after the block, with a fresh chunk.
        self.next = last + 1
        self.mark = self.next
        ops = [(INSERT_BLOCK, [(first, last, poller, now or time.time())])] + self.refill()
        return first, last, ops

    def poller_may_use(self, poller: str, eid: int) -> bool:
        """An ID a poller allocated itself: inside one of its blocks and not used before."""
        return eid not in self.used_poller_ids and any(a <= eid <= b for a, b in self.blocks.get(poller, ()))

    def in_blocks(self, poller: str, eid: int) -> bool:
        """Whether `eid` lies in a block reserved for `poller` (used or not)."""
        return any(a <= eid <= b for a, b in self.blocks.get(poller, ()))
