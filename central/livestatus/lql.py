"""One Livestatus request, parsed: `GET table` with its headers into a Query, or
`COMMAND [ts] NAME;args` into a Command line. Nothing here knows central's state;
a header that cannot be understood is an LqlError with the status code clients
expect in a fixed16 response header (400 bad request, 404 no such table or column,
413 too large, 451 incomplete, 452 malformed)."""

from __future__ import annotations

import dataclasses
import re

OUTPUT_FORMATS = ("csv", "json", "python", "python3")
DEFAULT_SEPARATORS = ("\n", ";", ",", "|")      # dataset, column, list, host/service in a list
IGNORED = ("localtime", "timelimit")            # accepted, no effect (docs/livestatus.md)


class LqlError(Exception):
    """A request central cannot answer; `code` goes into the fixed16 header."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True, slots=True)
class FilterLine:
    """`Filter: column op value` as written (checked against the table in filters.py)."""

    column: str
    op: str
    value: str


@dataclasses.dataclass(frozen=True, slots=True)
class Combine:
    """`And: n` / `Or: n` over the last n filters, `Negate:` of the last one (n = 1)."""

    kind: str               # "and" | "or" | "negate"
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class Aggregate:
    """`Stats: sum|min|max|avg|std|suminv|avginv column`."""

    func: str
    column: str


AGGREGATES = ("sum", "min", "max", "avg", "std", "suminv", "avginv")
Step = FilterLine | Combine


@dataclasses.dataclass(slots=True)
class Query:
    table: str
    columns: list[str] = dataclasses.field(default_factory=list)
    filters: list[Step] = dataclasses.field(default_factory=list)
    stats: list[Step | Aggregate] = dataclasses.field(default_factory=list)
    limit: int | None = None
    output: str = "csv"
    column_headers: bool | None = None      # None: on when no Columns: were given (Nagios)
    separators: tuple[str, str, str, str] = DEFAULT_SEPARATORS
    fixed16: bool = False
    keepalive: bool = False
    auth_user: str | None = None


@dataclasses.dataclass(slots=True)
class CommandLine:
    """`COMMAND [ts] NAME;arg;arg`; the headers that may follow it (KeepAlive, AuthUser)."""

    name: str
    args: list[str]
    text: str
    fixed16: bool = False
    keepalive: bool = False
    auth_user: str | None = None


Request = Query | CommandLine
_COMMAND = re.compile(r"COMMAND \[(\d+)\] ([A-Z_0-9]+)(?:;(.*))?$")
_FILTER = re.compile(r"(\S+)\s+(!?(?:=~|~~|<=|>=|=|~|<|>))(?:\s(.*))?$")


def answer_flags(lines: list[str]) -> tuple[bool, bool]:
    """fixed16 and KeepAlive as asked, even in a request that does not parse (its error
    goes out with the header the client reads)."""
    flags = {line.replace(" ", "").lower() for line in lines[1:]}
    return "responseheader:fixed16" in flags, "keepalive:on" in flags


def parse(lines: list[str]) -> Request:
    """The request's lines, without the empty line that ends it."""
    if not lines or not lines[0].strip():
        raise LqlError(452, "empty request: expected `GET table` or `COMMAND [timestamp] NAME;args`")
    first = lines[0].rstrip()
    if first.startswith("COMMAND"):
        m = _COMMAND.match(first)
        if m is None:
            raise LqlError(452, f"malformed command {first[:200]!r}: expected COMMAND [timestamp] NAME;arg;...")
        req: Request = CommandLine(m.group(2), (m.group(3) or "").split(";") if m.group(3) is not None else [], first)
    elif first.startswith("GET"):
        parts = first.split()
        if len(parts) != 2 or parts[0] != "GET":
            raise LqlError(452, f"malformed request line {first[:200]!r}: expected `GET tablename`")
        req = Query(parts[1])
    else:
        raise LqlError(452, f"unknown request {first[:200]!r}: expected `GET table` or `COMMAND [timestamp] ...`")
    for n, line in enumerate(lines[1:], 2):
        name, sep, value = line.partition(":")
        if not sep or not name or " " in name:
            raise LqlError(400, f"line {n}: expected `Header: value`, got {line[:200]!r}")
        _header(req, name, value.strip(), n)
    return req


def _flag(value: str, name: str, n: int) -> bool:
    if value not in ("on", "off"):
        raise LqlError(400, f"line {n}: {name}: expected on or off, got {value[:50]!r}")
    return value == "on"


def _count(value: str, name: str, n: int) -> int:
    if not value.isdigit():
        raise LqlError(400, f"line {n}: {name}: expected a number, got {value[:50]!r}")
    return int(value)


def _header(req: Request, name: str, value: str, n: int) -> None:
    key = name.lower()
    if key == "keepalive":
        req.keepalive = _flag(value, name, n)
    elif key == "responseheader":
        if value not in ("off", "fixed16"):
            raise LqlError(400, f"line {n}: ResponseHeader: expected off or fixed16, got {value[:50]!r}")
        req.fixed16 = value == "fixed16"
    elif key == "authuser":
        req.auth_user = value
    elif key in IGNORED:
        pass
    elif isinstance(req, CommandLine):
        raise LqlError(400, f"line {n}: header {name!r} makes no sense after a COMMAND")
    else:
        _query_header(req, key, name, value, n)


def _query_header(q: Query, key: str, name: str, value: str, n: int) -> None:
    if key == "columns":
        q.columns = value.split()
    elif key == "filter":
        q.filters.append(filter_line(value, n))
    elif key in ("and", "or"):
        q.filters.append(Combine(key, _count(value, name, n)))
    elif key == "negate":
        q.filters.append(Combine("negate", 1))
    elif key == "stats":
        word, _, rest = value.partition(" ")
        if word in AGGREGATES and rest.strip() and _FILTER.match(value) is None:
            q.stats.append(Aggregate(word, rest.strip()))
        else:
            q.stats.append(filter_line(value, n))
    elif key in ("statsand", "statsor"):
        q.stats.append(Combine(key[5:], _count(value, name, n)))
    elif key == "statsnegate":
        q.stats.append(Combine("negate", 1))
    elif key == "limit":
        q.limit = _count(value, name, n)
    elif key == "outputformat":
        if value not in OUTPUT_FORMATS:
            raise LqlError(400, f"line {n}: OutputFormat: one of {', '.join(OUTPUT_FORMATS)}, got {value[:50]!r}")
        q.output = value
    elif key == "columnheaders":
        q.column_headers = _flag(value, name, n)
    elif key == "separators":
        codes = value.split()
        if len(codes) != 4 or not all(c.isdigit() and int(c) < 256 for c in codes):
            raise LqlError(400, f"line {n}: Separators: four character codes, e.g. `10 59 44 124`")
        q.separators = tuple(chr(int(c)) for c in codes)      # type: ignore[assignment]
    else:
        raise LqlError(400, f"line {n}: unknown header {name!r} (docs/livestatus.md lists those supported)")


def filter_line(value: str, n: int) -> FilterLine:
    m = _FILTER.match(value)
    if m is None:
        raise LqlError(400, f"line {n}: bad filter {value[:200]!r}: expected `column operator value`, operators "
                            "= ~ =~ ~~ < > <= >= (! before one negates it)")
    return FilterLine(m.group(1), m.group(2), m.group(3) or "")
