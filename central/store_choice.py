"""Which store central keeps its state in (`store:` in the node file): SQLite in the
state directory, the default, or a PostgreSQL database two centrals can share
(docs/ha.md)."""

from __future__ import annotations

from checkd.config.node import NodeConfig
from checkd.engine.db import Database, SqliteDatabase


def database(node: NodeConfig) -> Database:
    if node.store == "postgresql":
        try:
            from checkd.engine.pgdb import PostgresDatabase      # psycopg only where it is used
        except ImportError as e:
            raise SystemExit(f"{node.where('store')}: store: postgresql needs psycopg 3 "
                             f"(apt install python3-psycopg, or pip install 'psycopg[binary]'): {e}") from None
        pg = node.section("postgresql")
        return PostgresDatabase(pg["dsn"], pg.get("password", ""))
    return SqliteDatabase(node.state_dir / "central.sqlite")
