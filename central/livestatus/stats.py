"""`Stats:` lines: each one a count of the rows a filter lets through or an aggregate
(sum, min, max, avg, std, suminv, avginv) of a number column, combined by
StatsAnd/StatsOr/StatsNegate, grouped by the query's Columns (one answer row per
distinct group, sorted by it, as mk-livestatus does)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from central.livestatus.columns import Column
from central.livestatus.filters import Test, join, column_of, compile_line
from central.livestatus.lql import Aggregate, Combine, FilterLine, LqlError


class Stat:
    """One stats column: `test` counts rows, or `func` of `column` aggregates them."""

    def __init__(self, test: Test | None = None, func: str = "", column: Column | None = None):
        self.test, self.func, self.column = test, func, column

    def start(self) -> list[float]:
        return [0.0, 0.0, 0.0, math.inf, -math.inf]       # count, sum, sum of squares / inverses, min, max

    def add(self, acc: list[float], row: Any) -> None:
        if self.test is not None:
            if self.test(row):
                acc[0] += 1
            return
        assert self.column is not None
        v = self.column.get(row)
        if not isinstance(v, (int, float)):
            return
        acc[0] += 1
        acc[1] += v
        acc[2] += (1 / v if v else 0.0) if self.func in ("suminv", "avginv") else v * v
        acc[3], acc[4] = min(acc[3], v), max(acc[4], v)

    def result(self, acc: list[float]) -> int | float:
        n = acc[0]
        if self.test is not None:
            return int(n)
        if self.func == "sum":
            return acc[1]
        if self.func == "suminv":
            return acc[2]
        if n == 0:
            return 0
        if self.func == "min":
            return acc[3]
        if self.func == "max":
            return acc[4]
        if self.func == "avg":
            return acc[1] / n
        if self.func == "avginv":
            return acc[2] / n
        return math.sqrt(max(acc[2] / n - (acc[1] / n) ** 2, 0.0))       # std


def compile_stats(steps: list[Any], columns: dict[str, Column], table: str) -> list[Stat]:
    stack: list[Stat] = []
    for step in steps:
        if isinstance(step, FilterLine):
            stack.append(Stat(test=compile_line(step, columns, table)))
        elif isinstance(step, Aggregate):
            col = column_of(columns, step.column, table)
            if col.type not in ("int", "float", "time"):
                raise LqlError(400, f"Stats: {step.func} needs a number column, {step.column!r} is a {col.type}")
            stack.append(Stat(func=step.func, column=col))
        else:
            assert isinstance(step, Combine)
            taken = stack[len(stack) - step.count:] if step.count else []
            name = {"and": "StatsAnd", "or": "StatsOr", "negate": "StatsNegate"}[step.kind]
            if step.count > len(stack) or any(s.test is None for s in taken):
                raise LqlError(400, f"{name}: {step.count} needs that many Stats filter lines (not sum/min/...) "
                                    "before it")
            del stack[len(stack) - step.count:]
            stack.append(Stat(test=join(step.kind, [s.test for s in taken if s.test is not None])))
    return stack


def _key(value: Any) -> Any:
    return tuple(_key(v) for v in value) if isinstance(value, list) else value


def grouped(rows: Iterable[Any], group_by: list[Column], stats: list[Stat]) -> list[list[Any]]:
    """One row per group: the group's column values, then each stat."""
    groups: dict[tuple[Any, ...], tuple[list[Any], list[list[float]]]] = {}
    for row in rows:
        values = [c.get(row) for c in group_by]
        key = tuple(_key(v) for v in values)
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = (values, [s.start() for s in stats])
        for s, acc in zip(stats, entry[1]):
            s.add(acc, row)
    if not group_by and not groups:
        return [[s.result(s.start()) for s in stats]]
    out = []
    for key in sorted(groups, key=lambda k: tuple((str(type(x)), x) for x in k)):
        values, accs = groups[key]
        out.append(values + [s.result(a) for s, a in zip(stats, accs)])
    return out
