"""The store's schema: its tables (SQLite's text; pgdb.py derives PostgreSQL's) and the
upgrades of a state directory written by an earlier checkd."""

from __future__ import annotations

import sqlite3
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checks (
    host TEXT NOT NULL, service TEXT NOT NULL,          -- service '' for a host check
    status INTEGER NOT NULL, state_type TEXT NOT NULL, attempt INTEGER NOT NULL,
    output TEXT NOT NULL, long_output TEXT NOT NULL, perfdata TEXT NOT NULL,
    last_check REAL NOT NULL, last_state_change REAL NOT NULL, polled_by TEXT NOT NULL,
    event_id INTEGER, flapping INTEGER NOT NULL,
    PRIMARY KEY (host, service)) WITHOUT ROWID;
-- Results are appended here (sequential writes, cheap to fsync) and folded into
-- checks every few seconds; checks + journal in rowid order is the current state.
CREATE TABLE IF NOT EXISTS journal (
    host TEXT NOT NULL, service TEXT NOT NULL, status INTEGER NOT NULL, state_type TEXT NOT NULL,
    attempt INTEGER NOT NULL, output TEXT NOT NULL, long_output TEXT NOT NULL, perfdata TEXT NOT NULL,
    last_check REAL NOT NULL, last_state_change REAL NOT NULL, polled_by TEXT NOT NULL,
    event_id INTEGER, flapping INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pollers (name TEXT PRIMARY KEY, site TEXT NOT NULL,
    last_seen REAL NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, host TEXT NOT NULL, service TEXT NOT NULL,
    opened REAL NOT NULL, closed REAL, status INTEGER NOT NULL, parent_id INTEGER,
    flapping INTEGER NOT NULL, acknowledged INTEGER NOT NULL, ack_author TEXT, ack_comment TEXT,
    source TEXT NOT NULL, notified_status INTEGER, notified_at REAL NOT NULL DEFAULT 0,
    rounds INTEGER NOT NULL DEFAULT 0, level INTEGER NOT NULL DEFAULT 1,
    ack_sticky INTEGER NOT NULL DEFAULT 1, ack_expires REAL);
CREATE TABLE IF NOT EXISTS event_history (event_id INTEGER NOT NULL, ts REAL NOT NULL,
    kind TEXT NOT NULL, status INTEGER, output TEXT, author TEXT);
CREATE INDEX IF NOT EXISTS event_history_by_event ON event_history (event_id);
CREATE INDEX IF NOT EXISTS events_by_check ON events (host, service, opened);
-- Pruning (central/prune.py): closed events by when they closed.
CREATE INDEX IF NOT EXISTS events_by_closed ON events (closed);
-- The history search (history.search): newest first, one service's events, who acted
-- (the few rows with an author only).
CREATE INDEX IF NOT EXISTS event_history_by_time ON event_history (ts);
CREATE INDEX IF NOT EXISTS events_by_service ON events (service);
CREATE INDEX IF NOT EXISTS event_history_by_author ON event_history (author, ts) WHERE author IS NOT NULL;
CREATE TABLE IF NOT EXISTS id_blocks (first INTEGER PRIMARY KEY, last INTEGER NOT NULL,
    poller TEXT NOT NULL, issued REAL NOT NULL);
-- phase: scheduled -> active -> ended, moved with the DOWNTIME* notices it causes.
CREATE TABLE IF NOT EXISTS downtimes (id INTEGER PRIMARY KEY, host TEXT NOT NULL, service TEXT,
    start REAL NOT NULL, end REAL NOT NULL, author TEXT NOT NULL, comment TEXT NOT NULL,
    phase TEXT NOT NULL DEFAULT 'scheduled', flexible INTEGER NOT NULL DEFAULT 0,
    duration REAL NOT NULL DEFAULT 0, triggered REAL, series TEXT NOT NULL DEFAULT '');
-- Recurring downtimes made through the API (those of the configuration are in the objects).
CREATE TABLE IF NOT EXISTS downtime_schedules (name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mutes (host TEXT NOT NULL, service TEXT NOT NULL, until REAL,
    author TEXT NOT NULL, PRIMARY KEY (host, service));
CREATE TABLE IF NOT EXISTS comments (id INTEGER PRIMARY KEY, host TEXT NOT NULL, service TEXT,
    ts REAL NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS comments_by_check ON comments (host, service, ts);
CREATE INDEX IF NOT EXISTS comments_by_ts ON comments (ts);
-- One row per notification, written `pending` in the transaction that decides it,
-- then `sent`, `summarised` (went out inside a storm summary) or `failed`.
CREATE TABLE IF NOT EXISTS notification_log (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL,
    kind TEXT NOT NULL, contact TEXT NOT NULL, channel TEXT NOT NULL, number INTEGER NOT NULL,
    level INTEGER NOT NULL, created REAL NOT NULL, status TEXT NOT NULL, done REAL,
    attempts INTEGER NOT NULL, error TEXT, payload TEXT NOT NULL,
    UNIQUE (event_id, kind, contact, channel, number));
CREATE INDEX IF NOT EXISTS notification_log_by_event ON notification_log (event_id);
-- Start-up reads the few rows still pending without reading the whole log (nflog.LOAD).
CREATE INDEX IF NOT EXISTS notification_log_pending ON notification_log (id) WHERE status = 'pending';
-- A poller's event ID for a problem central already had open under its own (split brain).
CREATE TABLE IF NOT EXISTS event_aliases (alias INTEGER PRIMARY KEY, event_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deployments (id TEXT PRIMARY KEY, hosts TEXT NOT NULL,
    module TEXT NOT NULL, revision TEXT NOT NULL, engineer TEXT NOT NULL,
    started REAL NOT NULL, expires REAL NOT NULL, finished REAL, result TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '');
-- When each check's first result was stored: before it the check's state is not known
-- (availability reports count that time as undetermined; checkd/engine/timelines.py). No key:
-- rows are appended, one per check at its first result (engine/events.py), and readers take
-- the earliest. A key on (host, service) put each new check's row at a random place in its
-- index, so a group commit of new checks rewrote most of the index's pages (SQLite ingest
-- into a new state directory 36-49k -> 45-65k results/s without it, docs/benchmarks.md).
-- Files made before keep their key.
CREATE TABLE IF NOT EXISTS first_results (host TEXT NOT NULL, service TEXT NOT NULL, finished REAL NOT NULL);
-- What a deleted downtime had covered (its row is gone): from when it took effect to its deletion.
CREATE TABLE IF NOT EXISTS cancelled_downtimes (id INTEGER PRIMARY KEY, host TEXT NOT NULL, service TEXT,
    start REAL NOT NULL, until REAL NOT NULL);
"""


POLLER_EVENT_IDS = "SELECT id FROM events WHERE source != 'central' UNION SELECT alias FROM event_aliases"
# Checks stored before first_results existed (or by an older checkd after a downgrade): known
# since the earliest sign of them, their first problem or their last change of state. Plain
# SQL both stores run as it is.
SEED_FIRST_RESULTS = (
    "INSERT INTO first_results SELECT c.host, c.service, COALESCE((SELECT MIN(e.opened) FROM events e "
    "WHERE e.host = c.host AND e.service = c.service AND e.opened < c.last_state_change), c.last_state_change) "
    # A join, not NOT EXISTS: first_results has no index, and SQLite builds one for a join
    # (PostgreSQL hashes it) but scanned the whole table once per check for the subquery.
    "FROM checks c LEFT JOIN first_results f ON f.host = c.host AND f.service = c.service "
    "WHERE c.last_check > 0 AND f.host IS NULL")


EVENT_COLUMNS = {"notified_status": "INTEGER", "notified_at": "REAL NOT NULL DEFAULT 0",
                 "rounds": "INTEGER NOT NULL DEFAULT 0", "level": "INTEGER NOT NULL DEFAULT 1",
                 "ack_sticky": "INTEGER NOT NULL DEFAULT 1", "ack_expires": "REAL"}
DOWNTIME_COLUMNS = {"flexible": "INTEGER NOT NULL DEFAULT 0", "duration": "REAL NOT NULL DEFAULT 0",
                    "triggered": "REAL", "series": "TEXT NOT NULL DEFAULT ''"}
ADDED_COLUMNS = {"events": EVENT_COLUMNS, "downtimes": DOWNTIME_COLUMNS}     # by the upgrades since schema 1


SCHEMA_VERSION = 4     # 1: before notification progress and deployments; 2: before deployment summaries
                       # and downtime phases; 3: before sticky and expiring acks and flexible,
                       # scoped and recurring downtimes; 4: this SCHEMA (migrations go by the
                       # columns present)


class SchemaError(Exception):
    """A database from a newer checkd: refuse rather than damage it."""


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a state directory from an earlier checkd up to this schema, keeping its rows;
    refuse one from a later checkd (a downgrade)."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"database schema {found} was written by a newer checkd; this one knows up to {SCHEMA_VERSION}. "
            "Install the newer checkd again, or restore the state directory from before the upgrade.")
    downtime_cols = {r[1] for r in conn.execute("PRAGMA table_info(downtimes)")}
    if downtime_cols and "phase" not in downtime_cols:
        # Downtimes from before phases were never announced: those already running count as
        # told (no DOWNTIMESTART for a downtime that began before the upgrade), past ones as over.
        conn.execute("ALTER TABLE downtimes ADD COLUMN phase TEXT NOT NULL DEFAULT 'scheduled'")
        now = time.time()
        conn.execute("UPDATE downtimes SET phase = CASE WHEN end <= ? THEN 'ended' WHEN start <= ? THEN 'active' "
                     "ELSE 'scheduled' END", (now, now))
    for table, columns in ADDED_COLUMNS.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        for name, decl in columns.items():
            if have and name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
    deploy_cols = {r[1] for r in conn.execute("PRAGMA table_info(deployments)")}
    if deploy_cols and "result" not in deploy_cols:
        conn.execute("DROP TABLE deployments")         # the first schema's table was never written to
    elif deploy_cols and "summary" not in deploy_cols:
        conn.execute("ALTER TABLE deployments ADD COLUMN summary TEXT NOT NULL DEFAULT ''")
    log_cols = {r[1] for r in conn.execute("PRAGMA table_info(notification_log)")}
    if log_cols and "payload" not in log_cols:
        # The first schema's table was never written to; replace it.
        conn.execute("DROP TABLE notification_log")
