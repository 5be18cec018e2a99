"""YAML reading that remembers where every mapping and key came from.

PyYAML forgets line numbers after parsing; config errors must name FILE:LINE,
so mappings and lists are built as subclasses that carry them.

They are built straight from libyaml's event stream (`_read_events`), not from
PyYAML's node tree: that tree holds every scalar of the file with two position
marks until the last one is parsed, 570 MB and most of the load time for an
object file of 100,000 services (docs/benchmarks.md). A file that uses what the
event reader leaves to PyYAML (aliases, merge keys `<<`, explicit tags, several
documents, a mapping or list as a key) is read again the old way, with the same
results and the same errors. Top-level lists of one-line entries, what generated
files are mostly made of, are read without the parser at all (config/yamlflow.py).
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent,
                         SequenceStartEvent, StreamEndEvent)

from checkd.config import yamlflow
from checkd.config.errors import ConfigError, Problem

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAP_TAG = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
_SEQ_TAG = yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG
_NO_FILES: dict[Any, str] = {}      # shared by every mapping read from a file: never written to
_NOKEY = object()                   # a mapping waits for its next key


class Node(dict):
    """A YAML mapping with its file, line and the line of each key."""

    __slots__ = ("file", "line", "key_lines", "key_files")
    file: str
    line: int
    key_lines: dict[Any, int]
    key_files: dict[Any, str]           # keys merged from a template's file (config/templates.py)

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)

    def where_of(self, key: Any) -> tuple[str, int]:
        """File and line of `key`; merged template keys keep their own file."""
        return self.key_files.get(key, self.file), self.line_of(key)


class Seq(list):
    """A YAML sequence with its file and line."""

    __slots__ = ("file", "line")
    file: str
    line: int


class _Loader(_Base):  # type: ignore[misc, valid-type]
    filename = "?"
    duplicates: list[Problem]


class _Fallback(Exception):
    """The file uses something the event reader leaves to PyYAML's own composer."""


def _add_key(out: Node, key: Any, line: int, value: Any, loader: _Loader, hint_value: str) -> None:
    """One key of a mapping, with the checks both readers make."""
    if not isinstance(key, (str, int, float, bool)) or key is None:
        hint = f'; quote it: "{hint_value}"' if isinstance(key, datetime.date) else ""
        loader.duplicates.append(Problem(loader.filename, line,
                                         f"mapping key must be a plain value, not {key!r}{hint}"))
        return
    if key in out:
        loader.duplicates.append(Problem(
            loader.filename, line, f"duplicate key {key!r} (first at line {out.key_lines[key]}); remove one"))
    out[key] = value
    out.key_lines[key] = line


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Node:
    loader.flatten_mapping(node)
    out = Node()
    out.file, out.line, out.key_lines, out.key_files = loader.filename, node.start_mark.line + 1, {}, _NO_FILES
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            _add_key(out, key, key_node.start_mark.line + 1, None, loader, str(key_node.value))
            continue
        _add_key(out, key, key_node.start_mark.line + 1, loader.construct_object(value_node, deep=True),
                 loader, "")
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> Seq:
    out = Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.file, out.line = loader.filename, node.start_mark.line + 1
    return out


_Loader.add_constructor(_MAP_TAG, _construct_mapping)
_Loader.add_constructor(_SEQ_TAG, _construct_sequence)


def _scalar(loader: _Loader, event: ScalarEvent, cache: dict[tuple[str, bool], Any]) -> Any:
    """A scalar as PyYAML's SafeLoader makes it. A file repeats most of its scalars (host
    names, commands, intervals): each distinct one is resolved once and shared (all the
    values the safe loader makes from an untagged scalar are immutable)."""
    if event.tag is not None and event.tag != "!":
        raise _Fallback
    return _resolved(loader, event.value, event.implicit, cache)


# First characters for which PyYAML's implicit resolvers may make a plain scalar something
# other than a string (bool, int, float, null, timestamp, merge, value). A plain scalar that
# starts with any other character is its own text: "h1.example", "Load", "check_load".
_RESOLVER_FIRSTS = frozenset(_Loader.yaml_implicit_resolvers)
_MAYBE_NOT_TEXT = None in _RESOLVER_FIRSTS     # a resolver for any first character: ask each time


def _resolved(loader: _Loader, text: str, implicit: tuple[bool, bool], cache: dict[tuple[str, bool], Any]) -> Any:
    key = (text, implicit[0])
    value = cache.get(key, _NOKEY)          # callers mostly looked already: no KeyError raised
    if value is not _NOKEY:
        return value
    if implicit[0] and text and not _MAYBE_NOT_TEXT and text[0] not in _RESOLVER_FIRSTS:
        # What resolve + construct_yaml_str would make, without them: 0.2 s of 100,000
        # distinct service descriptions (docs/benchmarks.md).
        value = text
    else:
        tag = loader.resolve(yaml.ScalarNode, text, implicit)
        if tag not in loader.yaml_constructors:
            raise _Fallback                                 # `<<` (merge) and `=`: PyYAML's own way
        value = loader.yaml_constructors[tag](loader, yaml.ScalarNode(tag, text))
    value = sys.intern(value) if isinstance(value, str) and len(value) < 64 else value
    cache[key] = value
    return value


def _read_runs(loader: _Loader, runs: list[yamlflow.Run], cache: dict[tuple[str, bool], Any]) -> list[Any]:
    """The lists that yamlflow.cut took out of the text, as the event reader builds them."""
    out = []
    plain = (True, False)
    filename, get, items = loader.filename, cache.get, yamlflow.items
    for run in runs:
        seq = Seq()
        seq.file, seq.line = filename, run.entries[0][0]
        append = seq.append
        for line, match in run.entries:
            entry = Node()
            key_lines: dict[Any, int] = {}
            entry.file, entry.line, entry.key_lines, entry.key_files = filename, line, key_lines, _NO_FILES
            for key_text, value_text in items(match):
                # The cache's lookups inline: 100,000 entries of five keys each (docs/benchmarks.md).
                key = get((key_text, True), _NOKEY)
                if key is _NOKEY:
                    key = _resolved(loader, key_text, plain, cache)
                value = get((value_text, True), _NOKEY)
                if value is _NOKEY:
                    value = _resolved(loader, value_text, plain, cache)
                if key.__class__ is str and key not in entry:
                    entry[key] = value
                    key_lines[key] = line
                else:
                    _add_key(entry, key, line, value, loader, key_text)
            append(entry)
        out.append((_resolved(loader, run.key, plain, cache), run.key_line, seq))
    return out


def _read_fast(text: str, name: str) -> Any:
    """The document with yamlflow's lists read without the parser and the rest from the
    event stream; _Fallback when anything is not as expected (then the whole file is read
    by the parser, errors included)."""
    rest, runs = yamlflow.cut(text)
    if not runs:
        raise _Fallback
    loader = _Loader(rest)
    loader.filename, loader.duplicates = name, []
    cache: dict[tuple[str, bool], Any] = {}
    try:
        root = _read_events(loader, cache)
        lists = _read_runs(loader, runs, cache)
    except yaml.YAMLError:
        raise _Fallback from None
    finally:
        loader.dispose()
    for key, line, seq in lists:
        if root.__class__ is not Node or key not in root or root[key] is not None or root.key_lines[key] != line:
            raise _Fallback
        root[key] = seq
    if loader.duplicates:
        raise ConfigError(loader.duplicates)
    return root


def _read_events(loader: _Loader, cache: dict[tuple[str, bool], Any] | None = None) -> Any:
    """The single document of the stream, built from its events (see the module's docstring)."""
    get, check, filename = loader.get_event, loader.check_event, loader.filename
    cache = {} if cache is None else cache
    get()                                                   # StreamStart
    if check(StreamEndEvent):
        return None
    get()                                                   # DocumentStart
    # The open collections, innermost last: [collection, its pending key, the key's line, the
    # key's text for a hint]; _NOKEY while a mapping waits for its next key.
    stack: list[list[Any]] = []
    while True:
        event = get()
        cls = event.__class__
        if cls is ScalarEvent:
            value = cache.get((event.value, event.implicit[0]), _NOKEY) if event.tag is None else _NOKEY
            if value is _NOKEY:
                value = _scalar(loader, event, cache)
        elif cls is MappingStartEvent or cls is SequenceStartEvent:
            if event.tag is not None and event.tag not in (_MAP_TAG, _SEQ_TAG, "!"):
                raise _Fallback
            if stack and stack[-1][1] is _NOKEY and stack[-1][0].__class__ is Node:
                raise _Fallback                             # a mapping or list as a key
            new: Node | Seq = Node() if cls is MappingStartEvent else Seq()
            new.file, new.line = filename, event.start_mark.line + 1
            if cls is MappingStartEvent:
                new.key_lines, new.key_files = {}, _NO_FILES
            stack.append([new, _NOKEY, 0, ""])
            continue
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            value = stack.pop()[0]
        else:
            raise _Fallback                                 # an alias
        if not stack:
            break
        top = stack[-1]
        if top[0].__class__ is Seq:
            top[0].append(value)
        elif top[1] is _NOKEY:
            top[1], top[2], top[3] = value, event.start_mark.line + 1, event.value
        else:
            mapping, key = top[0], top[1]
            if key.__class__ is str and key not in mapping:      # the usual case, without a call
                mapping[key] = value
                mapping.key_lines[key] = top[2]
            else:
                _add_key(mapping, key, top[2], value, loader, top[3])
            top[1] = _NOKEY
    get()                                                   # DocumentEnd
    if not check(StreamEndEvent):
        raise _Fallback                                     # several documents: PyYAML's error
    return value


def load_yaml(path: Path) -> Any:
    """Parse one file; syntax errors and duplicate keys become a ConfigError."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([Problem(name, 0, f"cannot read file: {e}")]) from None
    try:
        return _read_fast(text, name)
    except _Fallback:
        pass
    loader = _Loader(text)
    loader.filename, loader.duplicates = name, []
    try:
        try:
            data = _read_events(loader)
        except _Fallback:
            loader.dispose()
            loader = _Loader(text)
            loader.filename, loader.duplicates = name, []
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
