"""YAML reading that remembers where every mapping and key came from.

PyYAML forgets line numbers after parsing; config errors must name FILE:LINE,
so mappings and lists are built as subclasses that carry them.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import yaml

from checkd.config.errors import ConfigError, Problem

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Node(dict):
    """A YAML mapping with its file, line and the line of each key."""

    file: str = "?"
    line: int = 0
    key_lines: dict[Any, int]
    key_files: dict[Any, str]           # keys merged from a template's file (config/templates.py)

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)

    def where_of(self, key: Any) -> tuple[str, int]:
        """File and line of `key`; merged template keys keep their own file."""
        return self.key_files.get(key, self.file), self.line_of(key)


class Seq(list):
    """A YAML sequence with its file and line."""

    file: str = "?"
    line: int = 0


class _Loader(_Base):  # type: ignore[misc, valid-type]
    filename = "?"
    duplicates: list[Problem]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Node:
    loader.flatten_mapping(node)
    out = Node()
    out.file, out.line, out.key_lines, out.key_files = loader.filename, node.start_mark.line + 1, {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            hint = f'; quote it: "{key_node.value}"' if isinstance(key, datetime.date) else ""
            loader.duplicates.append(Problem(loader.filename, key_node.start_mark.line + 1,
                                             f"mapping key must be a plain value, not {key!r}{hint}"))
            continue
        line = key_node.start_mark.line + 1
        if key in out:
            loader.duplicates.append(Problem(
                loader.filename, line,
                f"duplicate key {key!r} (first at line {out.key_lines[key]}); remove one"))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> Seq:
    out = Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.file, out.line = loader.filename, node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> Any:
    """Parse one file; syntax errors and duplicate keys become a ConfigError."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([Problem(name, 0, f"cannot read file: {e}")]) from None
    loader = _Loader(text)
    loader.filename, loader.duplicates = name, []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError([Problem(name, line, f"YAML syntax error: {e.problem or e}")]) from None
    except yaml.YAMLError as e:
        raise ConfigError([Problem(name, 0, f"YAML error: {e}")]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(loader.duplicates)
    return data
