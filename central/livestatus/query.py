"""A GET answered from one snapshot: the table's rows the user may see, filtered, limited,
then either the asked columns or the stats per group. Everything is checked (table,
columns, filters, stats) before a row is read, so a bad query costs nothing."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from central.livestatus.columns import Column
from central.livestatus.filters import column_of, one_test
from central.livestatus.lql import Combine, FilterLine, LqlError, Query
from central.livestatus.snapshot import Snapshot
from central.livestatus.stats import compile_stats, grouped
from central.livestatus.tables import TABLES, Table

TIME_OPS = {">=": "h.ts >= ?", ">": "h.ts > ?", "<": "h.ts < ?", "<=": "h.ts <= ?", "=": "h.ts = ?"}


def table_of(q: Query) -> Table:
    table = TABLES.get(q.table)
    if table is None:
        raise LqlError(404, f"no table {q.table!r}; tables: {', '.join(sorted(TABLES))}")
    return table


def run(q: Query, snap: Snapshot) -> list[list[Any]]:
    """The answer's rows, the column headers first when asked for."""
    table = table_of(q)
    columns = [column_of(table.columns, name, table.name) for name in q.columns]
    if not columns and not q.stats:
        columns = list(table.columns.values())
    test = one_test(q.filters, table.columns, table.name)
    stats = compile_stats(q.stats, table.columns, table.name)
    rows: Any = table.rows(snap, q.auth_user)
    if test is not None:
        rows = filter(test, rows)
    if q.limit is not None:
        rows = itertools.islice(rows, q.limit)
    if stats:
        out = grouped(rows, columns, stats)
        names = [c.name for c in columns] + [f"stats_{i}" for i in range(1, len(stats) + 1)]
    else:
        read = row_reader(columns)
        out = [read(r) for r in rows]
        names = [c.name for c in columns]
    headers = q.column_headers if q.column_headers is not None else not q.columns and not q.stats
    return [names, *out] if headers else out


def row_reader(columns: list[Column]) -> Callable[[Any], list[Any]]:
    """The values of `columns` for a row. Columns read through the same other row (a service's
    host_ columns) are read there once per query and host, as one run of values."""
    runs: dict[str, tuple[Callable[[Any], Any], list[int], list[Callable[[Any], Any]]]] = {}
    direct: list[tuple[int, Callable[[Any], Any]]] = []
    for i, c in enumerate(columns):
        if c.via is not None and c.base is not None:
            prefix = c.name[:len(c.name) - len(c.base.name)]
            runs.setdefault(prefix, (c.via, [], []))[1].append(i)
            runs[prefix][2].append(c.base.get)
        else:
            direct.append((i, c.get))
    if not runs:
        getters = [c.get for c in columns]
        return lambda r: [g(r) for g in getters]
    n = len(columns)
    plan = [(f"run:{prefix}", via, idx, getters, slice(idx[0], idx[-1] + 1) if idx == list(range(idx[0], idx[-1] + 1))
             else None) for prefix, (via, idx, getters) in runs.items()]

    def read(r: Any) -> list[Any]:
        out: list[Any] = [None] * n
        for i, g in direct:
            out[i] = g(r)
        for key, via, idx, getters, span in plan:
            other = via(r)
            values = other.memo.get(key)
            if values is None:
                values = other.memo[key] = [g(other) for g in getters]
            if span is not None:
                out[span] = values
            else:
                for i, v in zip(idx, values):
                    out[i] = v
        return out
    return read


def log_terms(q: Query) -> tuple[list[str], list[float], int | None]:
    """What of a log query the database can do: `time` bounds when every filter must hold
    (no Or or Negate), and the Limit when those bounds are all the filters."""
    if any(isinstance(s, Combine) and s.kind != "and" for s in q.filters):
        return [], [], None
    where, args = [], []
    others = False
    for f in q.filters:
        if not isinstance(f, FilterLine):
            continue
        if f.column == "time" and f.op in TIME_OPS:
            try:
                args.append(float(f.value))
            except ValueError:
                raise LqlError(400, f"log: time {f.op} {f.value!r}: expected a Unix time") from None
            where.append(TIME_OPS[f.op])
        else:
            others = True
    return where, args, None if others or q.stats else q.limit
