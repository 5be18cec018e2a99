"""Persistence of the store: one writer thread, group commit; SQLite here (pgdb.py: PostgreSQL).

Every change is a list of `Op`s submitted with `write()`; the writer thread
takes everything queued, runs it in ONE transaction with one fsync, and only
then resolves the callers' futures. Ingest answers a poller after that, so an
ack always means "durable". Reads happen once, at start-up (`load_all`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from checkd.engine import nflog
from checkd.engine.schema import (  # noqa: F401 (importers of these names through db)
    ADDED_COLUMNS, DOWNTIME_COLUMNS, EVENT_COLUMNS, POLLER_EVENT_IDS, SCHEMA, SCHEMA_VERSION, SEED_FIRST_RESULTS,
    SchemaError, migrate as _migrate)

log = logging.getLogger(__name__)

UPSERT_CHECK = "INSERT OR REPLACE INTO checks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
APPEND_JOURNAL = "INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
FOLD = ("INSERT OR REPLACE INTO checks SELECT * FROM journal ORDER BY rowid", "DELETE FROM journal")
# Only the newest row per (host, service) within one transaction is worth writing.
COALESCED = {UPSERT_CHECK}
INSERT_FIRST_RESULT = "INSERT OR IGNORE INTO first_results VALUES (?,?,?)"     # (host, service or "", finished)
# Rows no other statement of the transaction reads, written as one op where the first of them
# was: a check's first result adds one row, and 100,000 new checks in a run of batches were
# 100,000 single-row statements (PostgreSQL ingest 19,500 -> 9,900 results/s).
GATHERED = {INSERT_FIRST_RESULT}
FOLD_EVERY = 5.0              # seconds between folds of the journal into checks
FOLD_ROWS = 200_000           # ... or sooner when this many rows wait

Op = tuple[str, list[tuple[Any, ...]]]          # (sql, rows for executemany)


class WriteError(Exception):
    """The database refused a transaction; the in-memory state is ahead of the disk."""


class StoreUnavailable(Exception):
    """The store cannot be reached or used at start (a PostgreSQL server down, a wrong DSN,
    a damaged SQLite file, a full disk): one line naming it and the fix."""


def damaged(path: Path, what: str) -> StoreUnavailable:
    what = "; ".join(line.strip() for line in what.splitlines() if line.strip() and not line.startswith("***"))
    return StoreUnavailable(
        f"{path}: the database is damaged ({what}); not starting on it. Move the file aside and restore it "
        f"from a backup, or salvage its rows with `sqlite3 {path} .recover | sqlite3 {path}.recovered` and "
        "move that in its place (docs/operations.md, \"A damaged database\")")


def disk_full(path: Path) -> str:
    return f"{path}: the disk is full; free space on its file system, then start again"


def _sqlite_trouble(path: Path, e: sqlite3.Error) -> StoreUnavailable | None:
    """A damaged file or a full disk, said in one line; None for anything else."""
    name = getattr(e, "sqlite_errorname", "")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return damaged(path, str(e))
    if name.startswith("SQLITE_FULL") or "disk is full" in str(e):
        return StoreUnavailable(disk_full(path))
    return None


TABLES = ("meta", "checks", "pollers", "id_blocks", "downtimes", "mutes", "event_aliases", "deployments",
          "downtime_schedules")


class Database:
    """Group commit on one writer thread, whatever holds the rows: every `write()` queued
    while a transaction runs goes into the next one, so a burst costs one commit. The
    stores say how to connect, what a transaction is and what to load (SqliteDatabase
    here, PostgresDatabase in pgdb.py)."""

    where = "?"                           # the file or the server, for messages
    checks_sql = ""                       # how this store writes coalesced check rows

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[list[Op], asyncio.Future[None]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commits = 0                      # transactions, for the benchmark's "group size"
        self.timings: dict[str, float] = {}   # seconds per step of open() (central's start-up line)

    # --- what each store provides ----------------------------------------------------------

    def open(self, extra_schema: str = "") -> None:
        """Create or upgrade the schema, plus a node's own tables (blocking; before serving)."""
        raise NotImplementedError

    def load_all(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows, for the in-memory store (blocking; start-up only)."""
        raise NotImplementedError

    def read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """A one-off read on its own connection (blocking: run it in a thread)."""
        raise NotImplementedError

    def _connect(self) -> Any:
        raise NotImplementedError

    def refusal(self, e: Exception) -> str:
        """What a failed transaction says: the store and the cause."""
        return f"{self.where}: {e}"

    def _transaction(self, conn: Any, ops: list[Op]) -> None:
        """Run `ops` as one transaction, rolled back when anything fails."""
        raise NotImplementedError

    def _after_commit(self, conn: Any, ops: list[Op], idle: bool) -> None:
        """Upkeep between transactions (SQLite folds its journal)."""

    def acting(self) -> bool:
        """Whether this node may act on what it stores (send messages): always, except for
        a central that shares its database and whose lease lapsed (pgdb.py)."""
        return True

    def _closing(self, conn: Any) -> None:
        """Upkeep before the writer's connection closes."""

    def reclaim_space(self) -> None:
        """After rows were pruned: give the freed space back where the store can (SQLite)."""

    # --- the writer ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="central-db-writer", daemon=True)
        self._thread.start()

    def write(self, ops: list[Op]) -> asyncio.Future[None]:
        """Queue ops; the future resolves once they are committed (even an empty list
        waits for everything queued before it, so its caller's ack is never early)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((ops, fut))
        return fut

    def stop(self) -> None:
        """Commit what is queued, then end the writer thread (blocking)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                try:
                    first = self._queue.get(timeout=FOLD_EVERY)
                except queue.Empty:
                    self._after_commit(conn, [], idle=True)
                    continue
                if first is None:
                    self._closing(conn)
                    return
                jobs = [first]
                stop = False
                while True:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    jobs.append(nxt)
                ops = _merge([op for ops, _ in jobs for op in ops], self.checks_sql)
                self._commit(conn, jobs, ops)
                self._after_commit(conn, ops, idle=False)
                if stop:
                    self._closing(conn)
                    return
        finally:
            conn.close()

    def _commit(self, conn: Any, jobs: list[tuple[list[Op], asyncio.Future[None]]], ops: list[Op]) -> None:
        error: BaseException | None = None
        try:
            self._transaction(conn, ops)
            self.commits += 1
        except Exception as e:      # a database error, or a value it cannot hold: never kill the writer
            # Said once, by the node that stops on it (Engine.fatal): one line, not one a caller.
            error = WriteError(self.refusal(e))
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, fut in jobs:
            by_loop.setdefault(fut.get_loop(), []).append(fut)
        for loop, futs in by_loop.items():
            loop.call_soon_threadsafe(_resolve, futs, error)


class SqliteDatabase(Database):
    """One SQLite file in WAL mode: the embedded store (a poller's alerting, a single
    central). Check rows go to an append-only journal folded into `checks` every few
    seconds: sequential writes are what makes one fsync per group cheap."""

    checks_sql = APPEND_JOURNAL

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.where = str(path)
        self._journal_rows, self._folded_at = 0, time.monotonic()
        self._reclaim = False
        self.early: EarlyCheck | None = None     # quick_check already running (central's start)

    def reclaim_space(self) -> None:
        self._reclaim = True                  # the writer thread does it between transactions

    def refusal(self, e: Exception) -> str:
        trouble = _sqlite_trouble(self.path, e) if isinstance(e, sqlite3.Error) else None
        return str(trouble) if trouble is not None else super().refusal(e)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk when it returns (NORMAL may lose the last ones on power loss).
        conn.execute("PRAGMA synchronous=FULL")
        # The whole current state (~200 B a check) fits: updates never wait for page reads.
        conn.execute("PRAGMA cache_size=-262144")
        return conn

    def open(self, extra_schema: str = "") -> None:
        try:
            self._open(extra_schema)
        except sqlite3.Error as e:
            trouble = _sqlite_trouble(self.path, e)
            if trouble is None:
                raise
            raise trouble from None

    def _open(self, extra_schema: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            t = time.perf_counter()
            self._check_integrity()
            self.timings["quick_check"] = time.perf_counter() - t
        else:
            # A new file: pages freed by pruning can be given back. Set before anything else
            # (WAL mode and the first table fix it for good).
            sqlite3.connect(self.path, isolation_level=None).execute("PRAGMA auto_vacuum = INCREMENTAL").close()
        conn = self._connect()
        try:
            _migrate(conn)
        except SchemaError as e:
            conn.close()
            raise SchemaError(f"{self.where}: {e}") from None
        conn.executescript(SCHEMA + extra_schema)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        _fold(conn)
        conn.execute(SEED_FIRST_RESULTS)
        conn.close()

    def _check_integrity(self) -> None:
        """PRAGMA quick_check before anything is read: a file damaged by a disk, a copy taken
        while central wrote, or a crash on storage that lies about fsync, is refused with the
        fix, instead of loading half of its rows (docs/operations.md, "A damaged database").
        Central starts it early (EarlyCheck); then this waits for its answer."""
        early = self.early
        problems = early.result() if early is not None and early.path == self.path else quick_check(self.path)
        if problems != ["ok"]:
            raise damaged(self.path, "; ".join(problems))

    def load_all(self) -> dict[str, list[tuple[Any, ...]]]:
        try:
            return self._load_all()
        except sqlite3.Error as e:
            trouble = _sqlite_trouble(self.path, e)
            if trouble is None:
                raise
            raise trouble from None

    def _load_all(self) -> dict[str, list[tuple[Any, ...]]]:
        conn = self._connect()
        try:
            tables = {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}
            # Closed events stay on disk (GET /events/{id} reads them there).
            tables["events"] = conn.execute("SELECT * FROM events WHERE closed IS NULL").fetchall()
            tables["notification_log"] = conn.execute(nflog.LOAD).fetchall()
            # Event IDs pollers allocated are never opened twice, even long after they closed.
            tables["poller_event_ids"] = conn.execute(POLLER_EVENT_IDS).fetchall()
            # Rows not folded yet (a kill -9 before the fold) are newer than checks'.
            tables["checks"] += conn.execute("SELECT * FROM journal ORDER BY rowid").fetchall()
            return tables
        finally:
            conn.close()

    def read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            return conn.execute(sql, tuple(args)).fetchall()
        finally:
            conn.close()

    def _transaction(self, conn: sqlite3.Connection, ops: list[Op]) -> None:
        try:
            conn.execute("BEGIN")
            for sql, rows in ops:
                conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _after_commit(self, conn: sqlite3.Connection, ops: list[Op], idle: bool) -> None:
        if self._reclaim and idle:
            # Pages freed by pruning go back to the file system (a new file is made with
            # auto_vacuum=INCREMENTAL; an older one reuses them for new rows instead).
            self._reclaim = False
            try:
                conn.execute("PRAGMA incremental_vacuum")
            except sqlite3.Error as e:
                log.warning("giving pruned space back failed (it is reused for new rows): %s", e)
        self._journal_rows += sum(len(rows) for sql, rows in ops if sql is APPEND_JOURNAL)
        if self._journal_rows and (idle or self._journal_rows >= FOLD_ROWS
                                   or time.monotonic() - self._folded_at >= FOLD_EVERY):
            try:
                _fold(conn)
            except sqlite3.Error as e:
                log.error("folding the journal into checks failed (will retry): %s", e)
                return
            self._journal_rows, self._folded_at = 0, time.monotonic()

    def _closing(self, conn: sqlite3.Connection) -> None:
        try:
            _fold(conn)
        except sqlite3.Error as e:      # the rows stay in the journal, which the next start reads
            log.info("the journal stays unfolded until the next start (%s)", e)


def quick_check(path: Path) -> list[str]:
    """SQLite's quick_check of a file: ["ok"], or up to 3 problems."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
    finally:
        conn.close()


class EarlyCheck:
    """quick_check of a file, started in a thread before the store is opened: central starts
    it while it reads its objects, and SQLite releases the GIL while it reads the pages, so
    on two cores the check (1.1-1.4 s at 680 MB, bench/central_startup.py) overlaps with it."""

    def __init__(self, path: Path):
        self.path = path
        self.seconds = 0.0
        self._problems: list[str] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="quick-check", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t = time.perf_counter()
        try:
            self._problems = quick_check(self.path)
        except BaseException as e:      # raised again where the store is opened
            self._error = e
        self.seconds = time.perf_counter() - t

    def result(self) -> list[str]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._problems


def _fold(conn: sqlite3.Connection) -> None:
    """Move journal rows into checks, in one transaction (crash-safe: either both or neither)."""
    conn.execute("BEGIN")
    try:
        for sql in FOLD:
            conn.execute(sql)
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:         # SQLite rolls back by itself on some errors (a full disk)
            conn.execute("ROLLBACK")
        raise


def _merge(ops: list[Op], checks_sql: str) -> list[Op]:
    """Keep op order, but write each check row once, first, with `checks_sql`: the newest
    wins (group commit of a busy check writes its final state, not every step); and the rows
    of each GATHERED statement as one op, in their order."""
    out: list[Op] = []
    checks: dict[tuple[Any, Any], tuple[Any, ...]] = {}
    gathered: dict[str, list[tuple[Any, ...]]] = {}
    for sql, rows in ops:
        if sql in COALESCED:
            for row in rows:
                checks[(row[0], row[1])] = row
        elif sql in GATHERED:
            if sql not in gathered:
                gathered[sql] = []
                out.append((sql, gathered[sql]))
            gathered[sql].extend(rows)
        else:
            out.append((sql, rows))
    if checks:
        out.insert(0, (checks_sql, list(checks.values())))
    return out


def _resolve(futs: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futs:
        if fut.done():
            continue    # the caller went away (cancelled request); the data is stored all the same
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
