"""The long lists of one-line entries that generated object files are made of, found
without the YAML parser.

    services:
      - {host: h1, description: Load, command: check_load, interval: 5m}

libyaml's Python binding makes an object and two position marks per YAML event (1.26
million events, about 1 s, in a file of 100,000 such entries: docs/benchmarks.md).
`cut` takes out every top-level list made only of such lines, each entry a flow mapping
of `key: plain words` (no quotes, colons, comments, anchors or nesting), and leaves blank
lines in their place, so the parser reads the rest with its lines where they were. Any
other list stays in the text; config/yamlsource.py resolves the cut scalars exactly as
the parser would and checks that the rest parsed as expected.
"""

from __future__ import annotations

import dataclasses
import re

_WORD = r"[A-Za-z0-9_/$][A-Za-z0-9_./$!+=~-]*"
_ITEM = rf"([A-Za-z_][A-Za-z0-9_]*): +({_WORD}(?: {_WORD})*)"
_ENTRY = re.compile(rf"( *)- \{{ *{_ITEM}((?: *, *{_ITEM})*) *\}} *")
_ITEMS = re.compile(_ITEM)
_SECTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):")


@dataclasses.dataclass
class Run:
    """One top-level `key:` whose value is a list of one-line entries."""

    key: str
    key_line: int                                   # 1-based, as Node lines are
    entries: list[tuple[int, re.Match[str]]]    # (line, the entry's match: items() reads it)


def items(entry: re.Match[str]) -> list[tuple[str, str]]:
    """An entry's (key, value text) pairs. Read as each entry is built, not when the file is
    cut: strings made all at once, kept or not, leave CPython's arenas half full."""
    return [(entry.group(2), entry.group(3)), *_ITEMS.findall(entry.group(4))]


def cut(text: str) -> tuple[str, list[Run]]:
    """`text` without the runs it found (blank lines instead), and the runs."""
    lines = text.split("\n")
    runs: list[Run] = []
    i = 0
    while i < len(lines):
        head = _SECTION.fullmatch(lines[i])
        if head is None:
            i += 1
            continue
        entries, indent, j = [], None, i + 1
        while j < len(lines):
            line = lines[j]
            if not line.strip():
                j += 1
                continue
            m = _ENTRY.fullmatch(line)
            if m is None or (indent is not None and m.group(1) != indent):
                break
            indent = m.group(1)
            entries.append((j + 1, m))
            j += 1
        # The list must end where the next top-level line starts (or at the end): otherwise the
        # parser reads the whole list.
        if entries and (j == len(lines) or not lines[j][:1].isspace() and not lines[j].startswith(("-", "#"))):
            runs.append(Run(head.group(1), i + 1, entries))
            for k in range(i + 1, j):
                lines[k] = ""
        i = max(j, i + 1)
    return ("\n".join(lines), runs) if runs else (text, runs)
