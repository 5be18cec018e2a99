"""Event IDs: integers unique across central and every poller, never reused.

Central hands out IDs from a chunk whose end (`id_mark`) is persisted before
any ID of the chunk can be seen; a restart continues at the persisted mark,
so IDs keep rising even after kill -9 (a few are skipped, none reused).
Pollers get blocks beyond the mark (POST /api/v1/ids/reserve) to use while
cut off from central; see docs/events.md.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from checkd.engine.db import Op

CHUNK = 10_000
MAX_BLOCK = 100_000
SET_META = "INSERT OR REPLACE INTO meta VALUES (?,?)"
INSERT_BLOCK = "INSERT INTO id_blocks VALUES (?,?,?,?)"
INSERT_OWN_BLOCK = "INSERT OR IGNORE INTO id_blocks VALUES (?,?,?,?)"
Tables = dict[str, list[tuple[Any, ...]]]


class EventIds(Protocol):
    """Where Events takes new IDs from: central's allocator, or a poller's reserved blocks."""

    used_poller_ids: set[int]

    def load(self, meta: dict[str, int], tables: Tables) -> None: ...
    def allocate(self) -> tuple[int, list[Op]]: ...
    def poller_may_use(self, poller: str, eid: int) -> bool: ...


class NoIds(Exception):
    """No reserved event ID left (central never reached since the block ran out)."""


class IdAllocator:
    def __init__(self, start: int = 1, blocks: list[tuple[Any, ...]] = (), used_poller_ids: set[int] | None = None):
        """`start`: the first ID that may be handed out (above every persisted mark,
        event and block); `blocks` are id_blocks rows (first, last, poller, issued)."""
        self.next = start
        self.mark = start                 # IDs below mark are durably reserved for central
        self.blocks: dict[str, list[tuple[int, int]]] = {}
        for first, last, poller, _ in blocks:
            self.blocks.setdefault(poller, []).append((first, last))
        self.used_poller_ids = used_poller_ids if used_poller_ids is not None else set()

    def load(self, meta: dict[str, int], tables: Tables) -> None:
        """Continue above everything the database holds (start-up)."""
        loaded = IdAllocator.from_tables(meta, tables["events"], tables["id_blocks"], tables["poller_event_ids"])
        self.next, self.mark, self.blocks = loaded.next, loaded.mark, loaded.blocks
        self.used_poller_ids = loaded.used_poller_ids

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


class PollerIds:
    """A poller's event IDs: from the blocks central reserved for it in advance
    (POST /api/v1/ids/reserve), so IDs stay unique while it alerts on its own."""

    def __init__(self) -> None:
        self.blocks: list[tuple[int, int]] = []
        self.next = 1
        self.used_poller_ids: set[int] = set()      # EventIds' interface; unused on a poller

    def load(self, meta: dict[str, int], tables: Tables) -> None:
        self.blocks = sorted((first, last) for first, last, _poller, _ in tables["id_blocks"])
        self.next = meta.get("next_poller_id", 1)

    def poller_may_use(self, poller: str, eid: int) -> bool:
        return False                                # a poller never adopts someone else's IDs

    def available(self) -> int:
        return sum(last - max(first, self.next) + 1 for first, last in self.blocks if last >= self.next)

    def allocate(self) -> tuple[int, list[Op]]:
        for first, last in self.blocks:
            if last >= self.next:
                eid = max(first, self.next)
                self.next = eid + 1
                return eid, [(SET_META, [("next_poller_id", self.next)])]
        raise NoIds("no event ID left in this poller's reserved blocks")

    def add(self, poller: str, first: int, last: int, now: float) -> list[Op]:
        """A block central reserved for this poller; the ops record it."""
        self.blocks = sorted([*self.blocks, (first, last)])
        return [(INSERT_OWN_BLOCK, [(first, last, poller, now)])]
