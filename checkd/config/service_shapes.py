"""Service entries that repeat one definition with only their host and description
changed, read once: a generated object file of 100,000 services is mostly that
(config/load.py; docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any

from checkd.config.errors import Problems
from checkd.config.objects import SERVICE_KEYS
from checkd.config.yamlsource import Node

# What the rest of an entry says is read once (load._services): these keys are read per entry.
PER_SERVICE = ("host", "hosts", "description")
_PLAIN = (str, int, float, bool)


def service_shape(node: Node) -> tuple[tuple[str, type, Any], ...] | None:
    """What a service entry says besides its host(s) and description, as a key; None when a
    value is not a plain scalar (lists, mappings: read each time). The type is part of the
    key: 1, 1.0 and true are equal in Python but not in the config."""
    out = []
    for key, value in node.items():
        if key in PER_SERVICE:
            continue
        if value.__class__ not in _PLAIN:
            return None
        out.append((key, value.__class__, value))
    return tuple(out)


def read_service_own(node: Node, shared: dict[str, Any], problems: Problems) -> dict[str, Any] | None:
    """A service entry whose other keys were read before (`shared`, from read_service_template
    without problems): its host(s) and description, with the same checks and messages."""
    d = dict(shared)
    for key in PER_SERVICE:
        if key in node:
            try:
                d[key] = SERVICE_KEYS[key](node[key])
            except ValueError as e:
                problems.add(*node.where_of(key), f"{key}: {e}")
    if not d.get("description"):
        problems.add(node.file, node.line, "service without a description: add `description: ...`")
        return None
    return d
