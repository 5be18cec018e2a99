"""Performance data, as the Nagios plugin guidelines define it.

`'label with spaces'=value[UOM];[warn];[crit];[min];[max]`, several separated by
spaces. Parsing is lenient: a broken item is reported and skipped, the rest kept,
because one bad label must not cost a graph its other lines.
"""

from __future__ import annotations

import dataclasses
import math
import re

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_VALUE_RE = re.compile(rf"^({_NUMBER}|U)([^;0-9\s][^;]*)?$")
_RANGE_RE = re.compile(rf"^(@)?(?:(~|{_NUMBER})?:)?(~|{_NUMBER})?$")


class PerfdataError(ValueError):
    """One perfdata item could not be read."""


@dataclasses.dataclass(frozen=True, slots=True)
class Range:
    """A threshold range: alert outside [start, end], or inside when `inside`."""

    start: float = 0.0
    end: float = math.inf
    inside: bool = False
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Range:
        m = _RANGE_RE.match(text)
        if not text or not m or (m.group(2) is None and m.group(3) is None):
            raise PerfdataError(f"bad range {text!r}")
        inside, start, end = m.group(1) == "@", m.group(2), m.group(3)
        has_colon = ":" in text
        lo = 0.0 if not has_colon else (-math.inf if start in (None, "~") else float(start))
        if not has_colon:
            hi = float(end)  # "10" means 0..10
        else:
            hi = math.inf if end in (None, "~") else float(end)
        if lo > hi:
            raise PerfdataError(f"range {text!r} has start > end")
        return cls(lo, hi, inside, text)

    def alerts(self, value: float) -> bool:
        """True when `value` should raise an alert against this range."""
        outside = value < self.start or value > self.end
        return not outside if self.inside else outside


@dataclasses.dataclass(frozen=True, slots=True)
class Metric:
    label: str
    value: float | None  # None for "U" (unknown value)
    uom: str = ""
    warn: Range | None = None
    crit: Range | None = None
    min: float | None = None
    max: float | None = None

    @property
    def is_counter(self) -> bool:
        return self.uom == "c"


def _split_items(text: str) -> list[str]:
    """Split on spaces, keeping quoted labels ('a b'=1, with '' as a quote) whole."""
    if "'" not in text:
        return text.split()         # the common case, and 10x faster than the loop below
    items, cur, quoted, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            if quoted and text[i + 1:i + 2] == "'":
                cur.append("''")
                i += 2
                continue
            quoted = not quoted
            cur.append(ch)
        elif ch.isspace() and not quoted:
            if cur:
                items.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        items.append("".join(cur))
    return items


def _optional_float(text: str, what: str) -> float | None:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise PerfdataError(f"bad {what} {text!r}") from None


def _head(item: str) -> tuple[str, float | None, str, list[str]]:
    """Label, value, UOM, and the five fields (value;warn;crit;min;max, missing ones "")."""
    label, sep, rest = item.rpartition("=")
    if not sep or not label:
        raise PerfdataError(f"no label=value in {item!r}")
    if label.startswith("'"):
        if len(label) < 3 or not label.endswith("'"):
            raise PerfdataError(f"unbalanced quotes in label {label!r}")
        label = label[1:-1].replace("''", "'")
    elif "'" in label:
        raise PerfdataError(f"quote inside unquoted label {label!r}")
    fields = rest.split(";")
    if len(fields) > 5:
        raise PerfdataError(f"too many fields in {item!r}")
    fields += [""] * (5 - len(fields))
    m = _VALUE_RE.match(fields[0])
    if not m:
        raise PerfdataError(f"bad value {fields[0]!r} for {label!r}")
    value = None if m.group(1) == "U" else float(m.group(1))
    if value is not None and not math.isfinite(value):
        raise PerfdataError(f"value of {label!r} is not finite")
    return label, value, (m.group(2) or "").strip(), fields


def parse_item(item: str) -> Metric:
    label, value, uom, fields = _head(item)
    return Metric(
        label=label,
        value=value,
        uom=uom,
        warn=Range.parse(fields[1]) if fields[1] else None,
        crit=Range.parse(fields[2]) if fields[2] else None,
        min=_optional_float(fields[3], "min"),
        max=_optional_float(fields[4], "max"),
    )


def parse(text: str) -> tuple[list[Metric], list[str]]:
    """All metrics in `text`, plus one message per item that was skipped."""
    metrics, errors = [], []
    for item in _split_items(text.strip()):
        try:
            metrics.append(parse_item(item))
        except PerfdataError as e:
            errors.append(str(e))
    return metrics, errors


def values(text: str) -> tuple[list[tuple[str, float | None, str]], list[str]]:
    """(label, value, UOM) of every item, plus one message per item skipped: what graphs
    store. Thresholds, min and max are not read (5-7x cheaper than parse(), and a
    malformed threshold does not cost a value its graph)."""
    out, errors = [], []
    for item in _split_items(text.strip()):
        try:
            label, value, uom, _ = _head(item)
        except PerfdataError as e:
            errors.append(str(e))
        else:
            out.append((label, value, uom))
    return out, errors
