"""Graphs on both centrals of a pair (docs/ha.md, "Graphs"): the active central writes
the graph items of each stored batch as one row of `graph_feed`, in the transaction
that stores the results; the standby follows those rows into its own RRD writer. Both
nodes' files stay current, and after a failover the graphs go on from where the old
active's left off.

Rows are numbered in commit order (one central holds the lease at a time and its
writer commits one transaction after another; a takeover waits for the old active's
last one), so "every row after N" is everything a follower has not seen. The active
prunes rows older than KEEP. Each node remembers how far its files are in
`graph_feed.position` in its state directory, so a restarted standby takes up where it
stopped instead of replaying the whole table (RRD files refuse values older than their
last one in any case, so a replay costs time, never wrong graphs).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from central.graphs.feed import Feed, Item
from checkd import tasks
from checkd.engine.db import Database, Op

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_feed (id INTEGER PRIMARY KEY, at REAL NOT NULL, items TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS graph_feed_by_at ON graph_feed (at);
"""
APPEND = "INSERT INTO graph_feed (at, items) VALUES (?, ?)"
AFTER = "SELECT id, items FROM graph_feed WHERE id > ? ORDER BY id LIMIT ?"
NEWEST = "SELECT COALESCE(MAX(id), 0) FROM graph_feed"
PRUNE = "DELETE FROM graph_feed WHERE at < ?"

KEEP = 3600.0                   # seconds a row stays: how far back a standby that was down catches up
FOLLOW_EVERY = 1.0              # seconds between a standby's looks for new rows
TIDY_EVERY = 30.0               # seconds between the active's pruning and position notes
PAGE = 200                      # rows read at once
CATCH_UP = 3.0                  # seconds a takeover may spend on rows the standby had not followed yet
LOG_EVERY = 60.0


def append_op(items: list[Item], now: float) -> Op:
    """The batch's graph items as one row (one insert per batch, not per result)."""
    return (APPEND, [(now, json.dumps(items, separators=(",", ":")))])


class Position:
    """The last row this node's RRD files have, in a small file (not fsynced: losing it
    only means reading some rows again)."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as e:
            log.warning("graphs: %s unreadable (%s); following the shared feed from its oldest row", self.path, e)
            return 0

    def save(self, row: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(f"{row}\n")
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("graphs: cannot note the feed position in %s: %s", self.path, e)


class Follower:
    """The standby's side: rows of `graph_feed` after its position into its own feed,
    never faster than its RRD writer takes them."""

    def __init__(self, db: Database, feed: Feed, position: Position):
        self.db, self.feed, self.position = db, feed, position
        self.row = 0
        self.followed = 0               # results handed to the writer from the shared feed
        self._task: asyncio.Task[None] | None = None
        self._logged = 0.0

    async def start(self) -> None:
        self.row = self.position.load()
        try:
            newest = await asyncio.to_thread(self._newest)
        except Exception as e:          # the database is away: the loop below tries again
            self._trouble(e)
            newest = self.row
        if newest < self.row:
            log.warning("graphs: the shared feed ends at row %d, before this node's position %d (a new "
                        "database?); following it from its oldest row", newest, self.row)
            self.row = 0
        log.info("graphs: following the active central's results from row %d of the shared feed", self.row)
        self._task = asyncio.create_task(self._follow(), name="graph-follow")

    async def finish(self, within: float = CATCH_UP) -> None:
        """At a takeover, after the lease is ours (the old active can commit nothing more):
        the rows it committed that this node has not read yet, for at most `within`
        seconds; what is left then is skipped with one line (a gap in the graphs)."""
        await self._cancel()
        deadline = time.monotonic() + within
        try:
            while time.monotonic() < deadline:
                if not await self._step():
                    break
            else:
                newest = await asyncio.to_thread(self._newest)
                log.warning("graphs: rows %d-%d of the shared feed not followed within %.0fs of the takeover; "
                            "their values are missing from this node's graphs", self.row + 1, newest, within)
                self.row = newest
        except Exception as e:
            log.warning("graphs: catching up with the shared feed at the takeover failed (%s); "
                        "graphs may miss the last seconds before it", _one_line(e))
        self.position.save(self.row)

    async def stop(self) -> None:
        await self._cancel()
        self.position.save(self.row)

    async def _cancel(self) -> None:
        await tasks.cancel(self._task)
        self._task = None

    async def _follow(self) -> None:
        saved = self.row
        while True:
            try:
                more = await self._step()
            except Exception as e:      # the database is away, or the table is not there yet
                self._trouble(e)
                more = False
            if self.row != saved:
                await asyncio.to_thread(self.position.save, self.row)
                saved = self.row
            if not more:
                await asyncio.sleep(FOLLOW_EVERY)

    async def _step(self) -> bool:
        """One page of rows into the feed; True while there may be more."""
        room = self.feed.settings.queue // 2 - len(self.feed.pending)
        if room <= 0:
            await asyncio.sleep(0.2)    # the writer is behind: wait for it, never drop
            return True
        rows = await asyncio.to_thread(self.db.read, AFTER, (self.row, PAGE))
        for row, text in rows:
            items: list[list[Any]] = json.loads(text)
            for item in items:
                self.feed.put(tuple(item))      # type: ignore[arg-type]
            self.followed += len(items)
            self.row = row
        return len(rows) == PAGE

    def _newest(self) -> int:
        return int(self.db.read(NEWEST)[0][0])

    def _trouble(self, e: BaseException) -> None:
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY:
            log.warning("graphs: cannot read the shared feed (%s); trying again", _one_line(e))
            self._logged = now


class Tidy:
    """The active's side: rows older than KEEP pruned (a fenced write like any other), and
    this node's position noted, so that it follows from there if it comes back a standby."""

    def __init__(self, db: Database, position: Position):
        self.db, self.position = db, position
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="graph-feed-tidy")

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None
        await self._note()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TIDY_EVERY)
            await self._note()
            try:
                await self.db.write([(PRUNE, [(time.time() - KEEP,)])])
            except Exception as e:      # refused: the engine's fatal has been told already
                log.warning("graphs: pruning the shared feed failed: %s", _one_line(e))

    async def _note(self) -> None:
        try:
            self.position.save(int((await asyncio.to_thread(self.db.read, NEWEST))[0][0]))
        except Exception as e:
            log.warning("graphs: cannot read the end of the shared feed: %s", _one_line(e))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
