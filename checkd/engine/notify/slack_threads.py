"""Which Slack message each event's thread hangs from, kept in the node's state directory
(`slack-threads.jsonl`, one line per thread), so a restart still replies in the thread.

Appended as threads start (in a thread: no disk on the loop), read once at the first
send, rewritten with the newest `limit` when it has grown to twice that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)

Key = tuple[str, int]                   # (the contact's slack address, event ID)
Thread = tuple[str, str, str]           # (channel ID, the first message's ts, its text)


class ThreadBook:
    def __init__(self, path: Path | None, limit: int = 10_000):
        """`path` None: kept in memory only."""
        self.path, self.limit = path, limit
        self.threads: dict[Key, Thread] = {}
        self._loaded = path is None
        self._lines = 0
        self._file_lock = threading.Lock()      # appends and the rewrite, from worker threads

    async def get(self, key: Key) -> Thread | None:
        if not self._loaded:
            await asyncio.to_thread(self._load)
        return self.threads.get(key)

    async def add(self, key: Key, thread: Thread) -> None:
        self.threads[key] = thread
        while len(self.threads) > self.limit:
            del self.threads[next(iter(self.threads))]
        if self.path is not None:
            try:
                await asyncio.to_thread(self._write, key, thread)
            except OSError as e:
                # The message went out; only a restart's reply in its thread is lost.
                log.warning("slack: cannot keep the thread of event %d in %s: %s", key[1], self.path, e)

    def _load(self) -> None:
        self._loaded = True
        assert self.path is not None
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        except OSError as e:
            log.warning("slack: cannot read %s (replies after the restart start new threads): %s", self.path, e)
            return
        for line in text.splitlines():
            try:
                address, event, channel, ts, parent = json.loads(line)
                self.threads[(str(address), int(event))] = (str(channel), str(ts), str(parent))
            except (ValueError, TypeError):
                continue        # a line cut by a crash
            self._lines += 1
        while len(self.threads) > self.limit:
            del self.threads[next(iter(self.threads))]

    def _write(self, key: Key, thread: Thread) -> None:
        with self._file_lock:
            self._append(key, thread)

    def _append(self, key: Key, thread: Thread) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._lines >= 2 * self.limit:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps([*k, *t]) + "\n" for k, t in self.threads.items()))
            tmp.replace(self.path)
            self._lines = len(self.threads)
            return
        with self.path.open("a") as f:
            f.write(json.dumps([*key, *thread]) + "\n")
        self._lines += 1
