"""A GET answered from one snapshot: the table's rows the user may see, filtered, limited,
then either the asked columns or the stats per group. Everything is checked (table,
columns, filters, stats) first, by plan() on the event loop, so a bad query costs no copy."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from central.livestatus.columns import Column
from central.livestatus.filters import Test, column_of, one_test
from central.livestatus.lql import Combine, FilterLine, LqlError, Query
from central.livestatus.snapshot import Snapshot
from central.livestatus.stats import Stat, compile_stats, grouped
from central.livestatus.tables import TABLES, Table

TIME_OPS = {">=": "h.ts >= ?", ">": "h.ts > ?", "<": "h.ts < ?", "<=": "h.ts <= ?", "=": "h.ts = ?"}


def table_of(q: Query) -> Table:
    table = TABLES.get(q.table)
    if table is None:
        raise LqlError(404, f"no table {q.table!r}; tables: {', '.join(sorted(TABLES))}")
    return table


@dataclasses.dataclass(frozen=True)
class QueryPlan:
    """A GET checked and compiled (on the event loop, before any copy is taken)."""

    query: Query
    table: Table
    columns: list[Column]
    test: Test | None
    stats: list[Stat]
    hosts: set[str] | None              # the filters name these hosts only (None: any)


def plan(q: Query) -> QueryPlan:
    """LqlError for an unknown table or column, a bad filter, operator, value or stat."""
    table = table_of(q)
    columns = [column_of(table.columns, name, table.name) for name in q.columns]
    if not columns and not q.stats:
        columns = list(table.columns.values())
    test = one_test(q.filters, table.columns, table.name)
    stats = compile_stats(q.stats, table.columns, table.name)
    hosts = host_hint(q.filters, table.by_host) if table.by_host else None
    return QueryPlan(q, table, columns, test, stats, hosts)


def run(p: QueryPlan, snap: Snapshot) -> list[list[Any]]:
    """The answer's rows, the column headers first when asked for."""
    q, columns, stats = p.query, p.columns, p.stats
    rows: Any = p.table.rows(snap, q.auth_user) if p.hosts is None else p.table.rows(snap, q.auth_user, p.hosts)
    if p.test is not None:
        rows = filter(p.test, rows)
    if q.limit is not None:
        rows = itertools.islice(rows, q.limit)
    rows = _pausing(rows)
    if stats:
        out = grouped(rows, columns, stats)
        names = [c.name for c in columns] + [f"stats_{i}" for i in range(1, len(stats) + 1)]
    else:
        read = row_reader(columns)
        out = [read(r) for r in rows]
        names = [c.name for c in columns]
    headers = q.column_headers if q.column_headers is not None else not q.columns and not q.stats
    return [names, *out] if headers else out


def _pausing(rows: Iterable[Any], every: int = 200, pause: float = 0.0005) -> Iterator[Any]:
    """The rows, with a short sleep every few hundred: the query runs in a thread beside the
    event loop, and without it holds the interpreter through most of the loop's turns (pollers
    waited up to half a second for their acks during a full dump of 100k services; with it,
    tens of ms). It costs a full dump of 100k services about a quarter of a second."""
    for n, row in enumerate(rows, 1):
        if n % every == 0:
            time.sleep(pause)
        yield row


def host_hint(steps: list[Any], by_host: tuple[str, ...]) -> set[str] | None:
    """The hosts the filters allow at most, when they say (`host_name = X`, alone, in an And,
    or every branch of an Or, as NagVis asks); None when any host may match. The filters
    are still applied to the rows read."""
    stack: list[set[str] | None] = []
    for step in steps:
        if isinstance(step, FilterLine):
            stack.append({step.value} if step.column in by_host and step.op == "=" else None)
            continue
        taken = stack[len(stack) - step.count:] if step.count else []
        del stack[len(stack) - step.count:]
        known = [s for s in taken if s is not None]
        if step.kind == "and":
            stack.append(set.intersection(*known) if known else None)
        elif step.kind == "or":
            stack.append(set.union(*known) if taken and len(known) == len(taken) else None)
        else:
            stack.append(None)
    known = [s for s in stack if s is not None]
    return set.intersection(*known) if known else None


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
