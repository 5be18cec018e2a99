"""PostgreSQL as central's store (`store: postgresql`): the same tables, statements and
group commit as SQLite, for a central whose state must outlive its machine (docs/ha.md).

The engine's statements are written once, in SQLite's dialect; `translate` turns each
into PostgreSQL's the first time it runs (placeholders, LIKE as ILIKE, INSERT OR
REPLACE/IGNORE as ON CONFLICT, from the primary keys the database reports). The schema is SQLite's too,
with PostgreSQL's types (`pg_schema`); the journal SQLite folds into `checks` is not
needed here: check rows are upserted in the group commit. Text with NUL (which
PostgreSQL's text cannot hold) is written with U+FFFD in its place. `synchronous_commit` is set
on for every session, so an ack to a poller means the commit is on disk.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

from checkd.engine import nflog
from checkd.engine.lease import FENCE, Fenced, Lease
from checkd.plugin_output import no_nul
from checkd.engine.db import (ADDED_COLUMNS, POLLER_EVENT_IDS, SCHEMA, SCHEMA_VERSION, SEED_FIRST_RESULTS, TABLES,
                              UPSERT_CHECK, Database, Op, SchemaError, StoreUnavailable)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10            # seconds for a connection to the server to be made


class PostgresDatabase(Database):
    checks_sql = UPSERT_CHECK

    def __init__(self, dsn: str, password: str = ""):
        super().__init__()
        self.dsn, self._password = dsn, password
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        self.where = f"postgresql://{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        self._keys: dict[str, tuple[list[str], list[str]]] = {}    # table: (primary key, other columns)
        self.lease: Lease | None = None      # two centrals on one database: this one's lease, once taken
        self._sql: dict[str, str] = {}                               # SQLite's statement: ours
        self._reader: psycopg.Connection[Any] | None = None
        self._reading = threading.Lock()

    def connect(self, timeout: float = CONNECT_TIMEOUT) -> psycopg.Connection[Any]:
        """A new connection, named after this process in pg_stat_activity."""
        kw: dict[str, Any] = {"autocommit": True, "connect_timeout": max(1, int(timeout)),
                              "options": "-c synchronous_commit=on",
                              "application_name": f"checkd-central-{os.getpid()}"}
        if self._password:
            kw["password"] = self._password
        try:
            conn = psycopg.connect(self.dsn, **kw)
        except psycopg.OperationalError as e:
            raise StoreUnavailable(f"{self.where}: cannot connect: {_one_line(e)}") from None
        conn.adapters.register_dumper(bool, _BoolAsInt)    # SQLite's 0/1 columns are BIGINT here
        return conn

    def _connect(self) -> psycopg.Connection[Any]:
        return self.connect()

    def acting(self) -> bool:
        return self.lease is None or self.lease.held()

    def open(self, extra_schema: str = "") -> None:
        with self._connect() as conn:
            with conn.transaction():
                # One central at a time creates or upgrades the schema.
                conn.execute("SELECT pg_advisory_xact_lock(4242001)")
                conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)")
                found = _version(conn)
                if found > SCHEMA_VERSION:
                    raise SchemaError(
                        f"{self.where}: database schema {found} was written by a newer checkd; this one knows up to "
                        f"{SCHEMA_VERSION}. Install the newer checkd again, or restore the database from "
                        "before the upgrade.")
                for stmt in pg_schema(SCHEMA + extra_schema):
                    conn.execute(stmt)
                for stmt in pg_upgrade():
                    conn.execute(stmt)
                conn.execute(SEED_FIRST_RESULTS)
                conn.execute("INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key) DO UPDATE "
                             "SET value = EXCLUDED.value", (SCHEMA_VERSION,))
            self._keys = _keys(conn)

    def load_all(self) -> dict[str, list[tuple[Any, ...]]]:
        with self._connect() as conn:
            # One snapshot: the tables agree with each other even while another node writes.
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                tables = {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}
                tables["meta"] = [r for r in tables["meta"] if r[0] != "schema_version"]
                tables["events"] = conn.execute("SELECT * FROM events WHERE closed IS NULL").fetchall()
                tables["notification_log"] = conn.execute(self.translate(nflog.LOAD)).fetchall()
                tables["poller_event_ids"] = conn.execute(POLLER_EVENT_IDS).fetchall()
            return tables

    def read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """On one reader connection kept open (a connection per page view costs more than
        the query), one read at a time; a broken one is replaced once."""
        with self._reading:
            for attempt in (1, 2):
                if self._reader is None or self._reader.closed:
                    self._reader = self.connect()
                try:
                    return self._reader.execute(self.translate(sql), tuple(args)).fetchall()
                except psycopg.OperationalError:
                    self._reader.close()
                    self._reader = None
                    if attempt == 2:
                        raise
        raise AssertionError("not reached")

    def stop(self) -> None:
        super().stop()
        with self._reading:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def _transaction(self, conn: psycopg.Connection[Any], ops: list[Op]) -> None:
        try:
            self._run_ops(conn, ops)
        except psycopg.DataError as e:
            # PostgreSQL's text cannot hold NUL, which plugin output may (psycopg refuses it
            # before sending): written as U+FFFD (SQLite keeps it). Only this transaction
            # pays for looking.
            if "NUL" not in str(e) and not isinstance(e, psycopg.errors.CharacterNotInRepertoire):
                raise
            log.warning("a NUL character in text to store: written as U+FFFD")
            self._run_ops(conn, [(sql, [tuple(no_nul(v) if type(v) is str else v for v in row) for row in rows])
                                 for sql, rows in ops])

    def _run_ops(self, conn: psycopg.Connection[Any], ops: list[Op]) -> None:
        with conn.transaction(), conn.cursor() as cur:
            if self.lease is not None:
                # Fencing: inside the transaction, the lease is still this epoch's. A standby
                # that takes it waits for this transaction; every one after it fails here.
                if cur.execute(FENCE, (self.lease.epoch,)).fetchone() is None:
                    raise Fenced(f"the central lease (epoch {self.lease.epoch}) is no longer this central's")
            for sql, rows in ops:
                if rows:
                    cur.executemany(self.translate(sql), rows)

    def translate(self, sql: str) -> str:
        pg = self._sql.get(sql)
        if pg is None:
            pg = self._sql[sql] = translate(sql, self._keys_of)
        return pg

    def _keys_of(self, table: str) -> tuple[list[str], list[str]]:
        if not self._keys:
            with self._connect() as conn:
                self._keys = _keys(conn)
        return self._keys[table]


def pg_schema(sqlite_schema: str) -> list[str]:
    """SQLite's schema as PostgreSQL statements: BIGINT and DOUBLE PRECISION, IDs that
    number themselves when not given, insertion order kept where SQLite's rowid kept it,
    no journal."""
    text = re.sub(r"--[^\n]*", "", sqlite_schema)
    out = []
    for stmt in (s.strip() for s in text.split(";")):
        if not stmt or re.match(r"CREATE TABLE IF NOT EXISTS (meta|journal)\b", stmt):
            continue
        stmt = stmt.replace("WITHOUT ROWID", "")
        stmt = stmt.replace("INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
        stmt = _pg_type(stmt)
        stmt = re.sub(r"(?<=[(,\s])end(?= DOUBLE)", '"end"', stmt)          # a reserved word here
        if stmt.startswith("CREATE TABLE IF NOT EXISTS event_history "):
            # SQLite reads a history in rowid order; here that is a column of its own.
            stmt = stmt[:stmt.rindex(")")] + ", rowid BIGINT GENERATED ALWAYS AS IDENTITY)"
        out.append(stmt)
    return out


def pg_upgrade() -> list[str]:
    """A database from an earlier schema: the columns added since (SQLite's own upgrade goes
    by the same list, db.ADDED_COLUMNS); nothing where they are there."""
    return [f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {_pg_type(decl)}"
            for table, columns in ADDED_COLUMNS.items() for name, decl in columns.items()]


def _pg_type(decl: str) -> str:
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", re.sub(r"\bINTEGER\b", "BIGINT", decl))


def translate(sql: str, keys: Callable[[str], tuple[list[str], list[str]]]) -> str:
    """One statement in PostgreSQL's dialect; `keys(table)`: its primary key and other columns."""
    s = sql.replace("%", "%%").replace("?", "%s")
    s = re.sub(r"\bLIKE\b", "ILIKE", s)          # SQLite's LIKE ignores case; PostgreSQL's ILIKE does
    m = re.match(r"\s*INSERT OR (REPLACE|IGNORE) INTO (\w+)(.*)$", s, re.S)
    if m is None:
        return s
    verb, table, rest = m.groups()
    if verb == "IGNORE":
        return f"INSERT INTO {table}{rest} ON CONFLICT DO NOTHING"
    pk, others = keys(table)
    sets = ", ".join(f"{_quoted(c)} = EXCLUDED.{_quoted(c)}" for c in others)
    return f"INSERT INTO {table}{rest} ON CONFLICT ({', '.join(pk)}) DO " + (f"UPDATE SET {sets}" if sets else "NOTHING")


def _quoted(column: str) -> str:
    """A column whose name PostgreSQL reserves (downtimes' `end`) in quotes."""
    return f'"{column}"' if column in ("end",) else column


def _keys(conn: psycopg.Connection[Any]) -> dict[str, tuple[list[str], list[str]]]:
    """Each table's primary key and other columns, in order, as the database has them."""
    cols: dict[str, list[str]] = {}
    for table, col in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
        cols.setdefault(table, []).append(col)
    pks: dict[str, list[str]] = {}
    for table, col in conn.execute(
            "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name "
            "AND kcu.table_schema = tc.table_schema "
            "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema() "
            "ORDER BY tc.table_name, kcu.ordinal_position"):
        pks.setdefault(table, []).append(col)
    return {t: (pks.get(t, []), [c for c in cs if c not in pks.get(t, []) and c != "rowid"])
            for t, cs in cols.items()}


def _version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


class _BoolAsInt(Dumper):
    """True/False as 1/0: the columns are SQLite's integers."""

    oid = psycopg.adapters.types["int8"].oid
    format = Format.TEXT

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
