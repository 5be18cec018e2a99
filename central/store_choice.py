"""Which store central keeps its state in (`store:` in the node file): SQLite in the
state directory, the default, or a PostgreSQL database two centrals can share
(docs/ha.md)."""

from __future__ import annotations

from checkd.config.node import NodeConfig
from checkd.engine.db import Database, SqliteDatabase
from checkd.engine.lease import Lease, identity
from checkd.engine.notify.links import base_url

LEASE_CONNECT_TIMEOUT = 2       # seconds: a lease renewal must not wait on a dead server for long


def database(node: NodeConfig) -> tuple[Database, Lease | None]:
    """The store, and with PostgreSQL the lease that says whether this central is the
    active one (its URL, what a standby tells pollers and people, is the listen address
    or public_url)."""
    if node.store == "postgresql":
        try:
            from checkd.engine.pgdb import PostgresDatabase      # psycopg only where it is used
        except ImportError as e:
            raise SystemExit(f"{node.where('store')}: store: postgresql needs psycopg 3 "
                             f"(apt install python3-psycopg, or pip install 'psycopg[binary]'): {e}") from None
        pg = node.section("postgresql")
        db = PostgresDatabase(pg["dsn"], pg.get("password", ""))
        # Fenced from the start: until the lease is taken nothing is written or sent.
        db.lease = Lease(lambda: db.connect(LEASE_CONNECT_TIMEOUT), identity(), base_url(node))
        return db, db.lease
    return SqliteDatabase(node.state_dir / "central.sqlite"), None
