"""What central keeps of the past, and no more (`retention:`, docs/retention.md): closed
events with their history, aliases and notification rows, comments, ended downtimes
and old downtime notices, each older than its age, are deleted in small batches, one
transaction each, through the same group-commit writer as ingest. A batch is a few
milliseconds of the writer's time and the pruner sleeps between batches, so results
are never held up behind it. Open events, pending notifications and anything younger
than its age are never touched. SQLite gives the freed pages back afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from checkd import tasks
from checkd.engine.db import Op
from checkd.engine.engine import Engine
from checkd.engine.store import Phase

log = logging.getLogger(__name__)

YEAR = 365 * 86400.0
EVERY = 600.0                   # seconds between pruning rounds
PAUSE = 0.05                    # seconds between batches: ingest's commits go between them
BATCH = 500                     # rows a batch deletes (events: with their history and notifications)

OLD_EVENTS = "SELECT id FROM events WHERE closed IS NOT NULL AND closed < ? ORDER BY closed LIMIT ?"
OLD_COMMENTS = "SELECT id FROM comments WHERE ts < ? ORDER BY ts LIMIT ?"
OLD_NOTICES = ("SELECT id FROM notification_log WHERE event_id = 0 AND created < ? AND status != 'pending' "
               "ORDER BY id LIMIT ?")
DELETE_EVENT = ("DELETE FROM events WHERE id = ?", "DELETE FROM event_history WHERE event_id = ?",
                "DELETE FROM notification_log WHERE event_id = ?", "DELETE FROM event_aliases WHERE event_id = ?")
DELETE_COMMENT = "DELETE FROM comments WHERE id = ?"
DELETE_NOTICE = "DELETE FROM notification_log WHERE id = ?"
DELETE_DOWNTIME = "DELETE FROM downtimes WHERE id = ?"
OLD_CANCELLED = "SELECT id FROM cancelled_downtimes WHERE until < ? ORDER BY until LIMIT ?"   # for reports
DELETE_CANCELLED = "DELETE FROM cancelled_downtimes WHERE id = ?"


@dataclasses.dataclass(frozen=True, slots=True)
class Keep:
    """How long each kind of record is kept (seconds)."""

    events: float = YEAR
    comments: float = YEAR
    notifications: float = YEAR
    downtimes: float = YEAR
    rrd_removed: float = YEAR
    batch: int = BATCH

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> Keep:
        keep = float(section.get("keep", YEAR))
        return cls(**{k: float(section.get(k, keep)) for k in ("events", "comments", "notifications", "downtimes",
                                                              "rrd_removed")},
                   batch=int(section.get("batch", BATCH)))


@dataclasses.dataclass
class Pruned:
    events: int = 0
    comments: int = 0
    notices: int = 0
    downtimes: int = 0
    files: int = 0              # RRD files of checks removed from the configuration
    batches: int = 0


class Pruner:
    def __init__(self, engine: Engine, keep: Keep, files: Callable[[float, float], int] | None = None,
                 clock: Callable[[], float] = time.time, pause: float = PAUSE):
        """`files(keep, now)`: deletes the RRD files of checks removed from the configuration
        (blocking; central/graphs/prune.py), or None without graphs."""
        self.engine, self.keep, self.files, self.clock, self.pause = engine, keep, files, clock, pause
        self.total = Pruned()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="prune")

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:       # a database hiccup: the next round tries again
                log.exception("pruning old records failed; trying again in %.0fs", EVERY)
            await asyncio.sleep(EVERY)

    async def round(self) -> Pruned:
        """One pass over every kind of record; returns what it deleted."""
        now, k = self.clock(), self.keep
        done = Pruned()
        done.events = await self._batches(OLD_EVENTS, now - k.events, DELETE_EVENT, done)
        done.comments = await self._batches(OLD_COMMENTS, now - k.comments, (DELETE_COMMENT,), done)
        done.notices = await self._batches(OLD_NOTICES, now - k.notifications, (DELETE_NOTICE,), done)
        done.downtimes = await self._downtimes(now - k.downtimes, done)
        done.downtimes += await self._batches(OLD_CANCELLED, now - k.downtimes, (DELETE_CANCELLED,), done)
        if self.files is not None:
            done.files = await asyncio.to_thread(self.files, k.rrd_removed, now)
        if done.batches:
            self.engine.db.reclaim_space()
            for f in dataclasses.fields(Pruned):
                setattr(self.total, f.name, getattr(self.total, f.name) + getattr(done, f.name))
            log.info("pruned %d closed event(s), %d comment(s), %d downtime notice(s), %d ended downtime(s) "
                     "older than retention: in %d batch(es)", done.events, done.comments, done.notices,
                     done.downtimes, done.batches)
        return done

    async def _batches(self, select: str, cutoff: float, deletes: tuple[str, ...], done: Pruned) -> int:
        count = 0
        while True:
            ids = [(r[0],) for r in await asyncio.to_thread(self.engine.db.read, select, (cutoff, self.keep.batch))]
            if not ids:
                return count
            await self.engine.write([(sql, ids) for sql in deletes])
            if deletes is DELETE_EVENT:
                self._forget_aliases({i for (i,) in ids})
            count += len(ids)
            done.batches += 1
            if len(ids) < self.keep.batch:
                return count
            await asyncio.sleep(self.pause)

    def _forget_aliases(self, gone: set[int]) -> None:
        aliases = self.engine.store.aliases
        for alias in [a for a, e in aliases.items() if e in gone]:
            del aliases[alias]

    async def _downtimes(self, cutoff: float, done: Pruned) -> int:
        """Ended downtimes live in memory too: taken from the store and the table together."""
        store = self.engine.store
        old = [d.id for d in store.downtimes.values() if d.phase is Phase.ENDED and d.over < cutoff]
        for i in range(0, len(old), self.keep.batch):
            chunk = old[i:i + self.keep.batch]
            for did in chunk:
                store.pop_downtime(did)
            ops: list[Op] = [(DELETE_DOWNTIME, [(did,) for did in chunk])]
            await self.engine.write(ops)
            done.batches += 1
            await asyncio.sleep(self.pause)
        return len(old)
