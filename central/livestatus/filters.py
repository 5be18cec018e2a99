"""`Filter:` lines and `And:`/`Or:`/`Negate:` made into one test of a row, checked
against the table's columns first, so a bad column, operator or value is a clear
error before any row is read. Operators as mk-livestatus has them:

strings  = equal, ~ regex, =~ equal ignoring case, ~~ regex ignoring case, < > <= >=
numbers  = < > <= >= (~ and =~ compare as =)
lists    = with no value: empty; >= contains; < does not contain; <= contains ignoring case;
           > does not contain ignoring case; ~ ~~ an element matches the regex
`!` before an operator negates it."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from central.livestatus.columns import Column
from central.livestatus.lql import Combine, FilterLine, LqlError, Step

Test = Callable[[Any], bool]
ORDER = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


OWN_PREFIX = {"services": "service_", "hosts": "host_"}


def column_of(columns: dict[str, Column], name: str, table: str) -> Column:
    """A column by name; on services `service_state` is `state`, on hosts `host_state` is
    `state` (mk-livestatus strips the table's own prefix: NagVis relies on it)."""
    col = columns.get(name)
    prefix = OWN_PREFIX.get(table)
    if col is None and prefix is not None and name.startswith(prefix):
        col = columns.get(name[len(prefix):])
    if col is None:
        raise LqlError(404, f"table {table!r} has no column {name!r} (GET columns lists them)")
    return col


def _regex(value: str, flags: int) -> re.Pattern[str]:
    try:
        return re.compile(value, flags)
    except re.error as e:
        raise LqlError(400, f"invalid regular expression {value!r}: {e}") from None


def _number(col: Column, value: str) -> float:
    try:
        return float(value) if value.strip() else 0.0
    except ValueError:
        raise LqlError(400, f"column {col.name!r} is a number ({col.type}): cannot compare with {value!r}") from None


def _flat(item: Any) -> str:
    """A list element as text; a pair such as [host, service] as host|service."""
    return "|".join(map(str, item)) if isinstance(item, list) else str(item)


def compile_line(f: FilterLine, columns: dict[str, Column], table: str) -> Test:
    col = column_of(columns, f.column, table)
    negate, op = f.op.startswith("!"), f.op.lstrip("!")
    test = _test(col, op, f.value)
    get = col.get
    if negate:
        return lambda r: not test(get(r))
    return lambda r: test(get(r))


def _test(col: Column, op: str, value: str) -> Callable[[Any], bool]:
    if col.type in ("int", "time", "float"):
        num = _number(col, value)
        if op in ("=", "=~", "~", "~~"):
            return lambda v: v == num
        cmp = ORDER[op]
        return lambda v: cmp(v, num)
    if col.type == "list":
        return _list_test(col, op, value)
    if col.type == "dict":
        name, _, wanted = value.partition(" ")
        inner = _test(Column(col.name, "string", col.get), op, wanted)
        return lambda v: inner(v.get(name, ""))
    if op == "=":
        return lambda v: v == value
    if op == "=~":
        low = value.lower()
        return lambda v: v.lower() == low
    if op in ("~", "~~"):
        rx = _regex(value, re.IGNORECASE if op == "~~" else 0)
        return lambda v: rx.search(v) is not None
    cmp = ORDER[op]
    return lambda v: cmp(v, value)


def _list_test(col: Column, op: str, value: str) -> Callable[[Any], bool]:
    if op == "=":
        if value:
            raise LqlError(400, f"list column {col.name!r}: = tests for an empty list only; use >= to test "
                                "whether it contains an element")
        return lambda v: not v
    if op == ">=":
        return lambda v: any(_flat(x) == value for x in v)
    if op == "<":
        return lambda v: not any(_flat(x) == value for x in v)
    low = value.lower()
    if op == "<=":
        return lambda v: any(_flat(x).lower() == low for x in v)
    if op == ">":
        return lambda v: not any(_flat(x).lower() == low for x in v)
    if op in ("~", "~~"):
        rx = _regex(value, re.IGNORECASE if op == "~~" else 0)
        return lambda v: any(rx.search(_flat(x)) is not None for x in v)
    raise LqlError(400, f"operator {op} cannot be used with list column {col.name!r}")


def combine(steps: list[Step], columns: dict[str, Column], table: str, what: str = "Filter") -> list[Test]:
    """The stack of tests left after the steps (And: n pops n and pushes their conjunction)."""
    stack: list[Test] = []
    for step in steps:
        if isinstance(step, FilterLine):
            stack.append(compile_line(step, columns, table))
            continue
        assert isinstance(step, Combine)
        if step.count > len(stack):
            name = {"and": "And", "or": "Or", "negate": "Negate"}[step.kind]
            raise LqlError(400, f"{what == 'Stats' and 'Stats' or ''}{name}: {step.count} needs that many "
                                f"{what} lines before it, there are {len(stack)}")
        taken = stack[len(stack) - step.count:] if step.count else []
        del stack[len(stack) - step.count:]
        stack.append(join(step.kind, taken))
    return stack


def join(kind: str, tests: list[Test]) -> Test:
    if kind == "negate":
        t = tests[0]
        return lambda r: not t(r)
    if kind == "and":
        return lambda r: all(t(r) for t in tests)
    return lambda r: any(t(r) for t in tests)


def one_test(steps: list[Step], columns: dict[str, Column], table: str) -> Test | None:
    """All filters left on the stack must hold (None: no filter)."""
    stack = combine(steps, columns, table)
    if not stack:
        return None
    return stack[0] if len(stack) == 1 else join("and", stack)
