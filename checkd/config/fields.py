"""Typed reading of one YAML mapping: known keys, converters, did-you-mean.

A converter takes the raw YAML value and returns the typed one or raises
ValueError whose text is the fix to suggest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from checkd.config.errors import Problems, did_you_mean
from checkd.config.yamlsource import Node
from checkd.durations import parse_duration

Converter = Callable[[Any], Any]


def text(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise ValueError(f"expected a string, got {value!r}")
    return str(value)


def url(value: Any) -> str:
    """An http:// or https:// URL with a host."""
    text_value = text(value)
    parts = urlsplit(text_value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {text_value!r}")
    return text_value


def duration(value: Any) -> float:
    return parse_duration(value)


def positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be more than 0")
    return seconds


def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of at least 0, got {value!r}")
    return value


def port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"expected a port number 1-65535, got {value!r}")
    return value


def percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError(f"expected a percentage 0-100, got {value!r}")
    return float(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def state_word(value: Any) -> str | int:
    """A check state as a word (lower case, `critical`) or its number (2)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip().lower()
    raise ValueError(f"expected a state such as critical (or its number), got {value!r}")


def urls(value: Any) -> tuple[str, ...]:
    """A URL or a list of them (two centrals sharing one database: docs/ha.md)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("expected a URL or a list of URLs, got an empty list")
    return tuple(url(v) for v in items)


def names(value: Any) -> tuple[str, ...]:
    """A name or a list of names (a comma-separated string is accepted, as in Nagios)."""
    if isinstance(value, str):
        if "," not in value:                # `host: web1`, once per service of a big config
            value = value.strip()
            return (value,) if value else ()
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        return tuple(str(v) for v in value)
    raise ValueError(f"expected a name or a list of names, got {value!r}")


def string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, (str, int, float)) for v in value.values()):
        raise ValueError("expected a mapping of names to plain values")
    return {str(k): str(v) for k, v in value.items()}


def raw(value: Any) -> Any:
    return value


def check_keys(node: Node, allowed: Mapping[str, Converter], problems: Problems, what: str) -> None:
    """Report every key of `node` that `what` does not know."""
    for key in node:
        if key not in allowed:
            _unknown_key(node, key, allowed, problems, what)


def _unknown_key(node: Node, key: Any, allowed: Mapping[str, Converter], problems: Problems, what: str) -> None:
    problems.add(*node.where_of(key), f"unknown key {key!r} in {what}{did_you_mean(str(key), allowed)}")


def convert(node: Node, allowed: Mapping[str, Converter], problems: Problems, what: str) -> dict[str, Any]:
    """Known keys of `node`, converted; problems recorded, bad keys left out."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        conv = allowed.get(key)
        if conv is None:
            _unknown_key(node, key, allowed, problems, what)     # one pass: 100,000 services read each once
            continue
        try:
            out[key] = conv(value)
        except ValueError as e:
            problems.add(*node.where_of(key), f"{key}: {e}")
    return out
