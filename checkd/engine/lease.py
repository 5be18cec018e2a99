"""Which of two centrals sharing one PostgreSQL database is active: a lease row with
an epoch (the fencing token), judged by the database's clock (docs/ha.md).

The active central renews the lease on a connection of its own. Every write
transaction of the store first checks, inside the transaction, that the lease is
still its epoch's and unexpired (`FENCE`, FOR SHARE: a standby's takeover waits for
it, and every transaction after the takeover fails). Locally the lease is trusted
until the start of the last successful renewal plus the TTL: the database's expiry is
later than that, so a node stops before anyone else can start. Not an advisory lock
held by a session: a half-open connection would keep such a lock and leave two actives.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

TTL = 8.0                       # seconds a lease lasts without renewal
RENEW_EVERY = 2.0               # seconds between renewals (four tries inside one TTL)
TRY_EVERY = 1.0                 # seconds between a standby's tries to take the lease
STATEMENT_TIMEOUT_MS = 2000     # a renewal that hangs is a failed renewal

SCHEMA = ("CREATE TABLE IF NOT EXISTS central_lease (id INT PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, "
          "url TEXT NOT NULL, epoch BIGINT NOT NULL, expires TIMESTAMPTZ NOT NULL)")
SEED = "INSERT INTO central_lease VALUES (1, '', '', 0, '-infinity') ON CONFLICT DO NOTHING"
TAKE = ("UPDATE central_lease SET holder = %s, url = %s, epoch = epoch + 1, "
        "expires = now() + make_interval(secs => %s) WHERE id = 1 AND expires < now() RETURNING epoch")
RENEW = ("UPDATE central_lease SET expires = now() + make_interval(secs => %s) "
         "WHERE id = 1 AND epoch = %s AND expires > now() RETURNING epoch")
RELEASE = "UPDATE central_lease SET expires = '-infinity' WHERE id = 1 AND epoch = %s RETURNING epoch"
WHO = "SELECT holder, url, epoch, EXTRACT(EPOCH FROM expires - now()) FROM central_lease WHERE id = 1"
# The first statement of every write transaction of the active central.
FENCE = "SELECT 1 FROM central_lease WHERE id = 1 AND epoch = %s AND expires > now() FOR SHARE"


class Fenced(Exception):
    """This central's lease is gone: another central may be active; it must not write."""


@dataclass(frozen=True)
class Holder:
    """Who holds the lease, as a standby tells pollers and people."""

    name: str
    url: str
    epoch: int
    expires_in: float           # seconds; negative once it has lapsed


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """The lease as seen by one central. Blocking calls: run them in a thread."""

    def __init__(self, connect: Any, name: str, url: str, ttl: float = TTL):
        self._connect, self.name, self.url, self.ttl = connect, name, url, ttl
        self._conn: Any = None
        self.epoch = 0
        self.valid_until = 0.0          # time.monotonic(): until when this node may act as active

    def _db(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
            self._conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        return self._conn

    def setup(self) -> None:
        conn = self._db()
        conn.execute(SCHEMA)
        conn.execute(SEED)

    def try_take(self) -> bool:
        """Take the lease if it has lapsed (a new epoch); False while another holds it."""
        started = time.monotonic()
        row = self._query(TAKE, (self.name, self.url, self.ttl))
        if row is None:
            return False
        self.epoch, self.valid_until = int(row[0]), started + self.ttl
        log.info("central lease taken: epoch %d (%s)", self.epoch, self.name)
        return True

    def renew(self) -> bool:
        """Extend the lease; False when it is gone (lapsed, taken) or the database is not
        answering. `valid_until` moves only on success."""
        started = time.monotonic()
        try:
            row = self._query(RENEW, (self.ttl, self.epoch))
        except Exception as e:          # any database or connection error: not renewed
            log.warning("central lease renewal failed: %s", " ".join(str(e).split()))
            self._drop()
            return False
        if row is None:
            return False
        self.valid_until = started + self.ttl
        return True

    def holder(self) -> Holder | None:
        row = self._query(WHO, ())
        return None if row is None else Holder(row[0], row[1], int(row[2]), float(row[3]))

    def release(self) -> None:
        """A clean stop hands over at once instead of after the TTL."""
        try:
            self._query(RELEASE, (self.epoch,))
        except Exception as e:
            log.warning("central lease release failed (the standby takes over after it lapses): %s", e)
        self.valid_until = 0.0
        self._drop()

    def held(self) -> bool:
        return time.monotonic() < self.valid_until

    def _query(self, sql: str, args: tuple[Any, ...]) -> Any:
        try:
            return self._db().execute(sql, args).fetchone()
        except Exception:
            self._drop()
            raise

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
