"""An answer written as the client asked: csv (the default, with `Separators:`), json,
python or python3; and the fixed16 response header (3-digit status, a space, the
body's length in bytes right-aligned in 11 characters, a newline)."""

from __future__ import annotations

import json
from typing import Any


def body(rows: list[list[Any]], fmt: str, separators: tuple[str, str, str, str]) -> bytes:
    if fmt == "csv":
        return _csv(rows, separators).encode()
    # json and python: the same text (Livestatus never sends true/false/null, which is where they differ).
    if not rows:
        return b"[]\n"
    return ("[" + ",\n".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rows)
            + "]\n").encode()


def _csv(rows: list[list[Any]], seps: tuple[str, str, str, str]) -> str:
    line_sep, field_sep, list_sep, pair_sep = seps
    done: dict[int, str] = {}       # a host's lists are one object in each of its services' rows

    def field(v: Any) -> str:
        t = type(v)
        if t is str:
            return v            # type: ignore[no-any-return]
        if t is int:
            return str(v)
        if t is list or t is dict:
            text = done.get(id(v))
            if text is None:
                text = done[id(v)] = _collection(v, list_sep, pair_sep)
            return text
        return _scalar(v)
    return "".join(field_sep.join(map(field, row)) + line_sep for row in rows)


def _collection(v: Any, list_sep: str, pair_sep: str) -> str:
    if isinstance(v, dict):
        return list_sep.join(f"{k}{pair_sep}{x}" for k, x in v.items())
    return list_sep.join(pair_sep.join(map(_scalar, x)) if isinstance(x, list) else _scalar(x) for x in v)


def _scalar(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def fixed16(code: int, length: int) -> bytes:
    return f"{code:03d} {length:11d}\n".encode()


def answer(code: int, payload: bytes, with_header: bool) -> bytes:
    return fixed16(code, len(payload)) + payload if with_header else payload
