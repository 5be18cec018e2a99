"""The check results of one NRDP submission (XMLDATA or JSONDATA) as Submissions, or Bad
saying why not. Shapes as NRDP's server reads them and its clients (send_nrdp.sh/.py/.php)
write them; the XML parser refuses DOCTYPE, so no entity can be declared or expanded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any
from xml.parsers import expat

MAX_ITEMS = 10_000          # per request; more is a runaway script, not a cron job
MAX_PROBLEMS = 10           # reasons shown per refused request


@dataclasses.dataclass(frozen=True, slots=True)
class Submission:
    """One <checkresult> as sent: the check, its state and plugin-style output."""

    index: int                  # 1-based, as people count the items of a file
    host: str
    service: str | None         # None: a host result
    state: int
    output: str                 # "TEXT | perf\nlong output", newlines already unescaped
    time: float | None          # when it was checked (optional <time>); None: when it arrives


class Bad(ValueError):
    """The data cannot be read; `message` is NRDP's word for it (BAD XML, BAD JSON, NO DATA)."""

    def __init__(self, message: str, information: str):
        super().__init__(f"{message}: {information}")
        self.message, self.information = message, information


# --- XML -----------------------------------------------------------------------------------

_FIELDS = ("hostname", "servicename", "state", "output", "time")


class _Reader:
    """An expat handler that keeps <checkresult> attributes and the text of its fields."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.path: list[str] = []
        self.text: list[str] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.path.append(name)
        if self.path == ["checkresults", "checkresult"]:
            if len(self.items) >= MAX_ITEMS:
                raise Bad("BAD XML", f"more than {MAX_ITEMS} checkresults in one request; send them in parts")
            self.items.append({"checkresult": dict(attrs)})
        elif len(self.path) == 1 and name != "checkresults":
            raise Bad("BAD XML", f"the document is <{name}>, not <checkresults>")
        self.text = []

    def end(self, name: str) -> None:
        if len(self.path) == 3 and self.path[1] == "checkresult" and name in _FIELDS:
            self.items[-1][name] = "".join(self.text)
        self.path.pop()
        self.text = []

    def data(self, text: str) -> None:
        self.text.append(text)


def _refuse_doctype(*_args: Any) -> None:
    raise Bad("BAD XML", "DOCTYPE is not accepted (no entities in check results)")


def parse_xml(text: str) -> list[Submission]:
    reader = _Reader()
    parser = expat.ParserCreate()
    parser.StartElementHandler, parser.EndElementHandler = reader.start, reader.end
    parser.CharacterDataHandler = reader.data
    # Refused at the first sign: an internal subset is where entities would be declared.
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(text, True)
    except expat.ExpatError as e:
        raise Bad("BAD XML", f"line {e.lineno} column {e.offset}: {expat.errors.messages[e.code]}") from None
    except RecursionError:
        raise Bad("BAD XML", "nested too deeply") from None
    return _submissions(reader.items, "BAD XML")


# --- JSON ----------------------------------------------------------------------------------

def parse_json(text: str) -> list[Submission]:
    """`{"checkresults": [{"checkresult": {"type": "service"}, "hostname", "servicename",
    "state", "output"}, ...]}`, NRDP's JSON (the state may be a number or a string)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise Bad("BAD JSON", f"{e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise Bad("BAD JSON", "nested too deeply") from None
    items = doc.get("checkresults") if type(doc) is dict else None
    if type(items) is not list:
        raise Bad("BAD JSON", 'expected {"checkresults": [...]}')
    if len(items) > MAX_ITEMS:
        raise Bad("BAD JSON", f"more than {MAX_ITEMS} checkresults in one request; send them in parts")
    return _submissions(items, "BAD JSON")


# --- one item, either format ------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(\\|n)")


def unescape(output: str) -> str:
    """Nagios' rule for passive output: a literal `\\n` is a new line, `\\\\` a backslash
    (send_nrdp's help: "Newlines should be encoded with encoded newlines (\\n)")."""
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else "\\", output)


def _text(raw: dict[str, Any], key: str) -> str | None:
    v = raw.get(key)
    if v is None or type(v) is str:
        return v
    if type(v) in (int, float) and key in ("state", "time"):
        return str(v)
    raise ValueError(f"{key}: expected a string")


def _item(index: int, raw: Any) -> Submission:
    if type(raw) is not dict:
        raise ValueError("expected an object")
    attrs = raw.get("checkresult") or {}
    if type(attrs) is not dict:
        raise ValueError('checkresult: expected {"type": "host"|"service"}')
    host, service = (_text(raw, "hostname") or "").strip(), (_text(raw, "servicename") or "").strip() or None
    kind = str(attrs.get("type", "service" if service else "host")).strip().lower()
    if kind not in ("host", "service"):
        raise ValueError(f"type {kind!r}: expected host or service")
    if not host:
        raise ValueError("no hostname")
    if kind == "service" and service is None:
        raise ValueError("a service result without servicename")
    if kind == "host":
        service = None          # as NRDP: the type decides
    state_text = (_text(raw, "state") or "").strip()
    top = 3 if service is not None else 2
    if not state_text.isdigit() or int(state_text) > top:
        raise ValueError(f"state {state_text!r}: expected 0-{top} for a {kind}")
    output = _text(raw, "output") or ""
    when = None
    time_text = (_text(raw, "time") or "").strip()
    if time_text:
        try:
            when = float(time_text)
        except ValueError:
            raise ValueError(f"time {time_text!r}: expected Unix time in seconds") from None
        if not math.isfinite(when):
            raise ValueError(f"time {time_text!r}: expected Unix time in seconds")
    return Submission(index, host, service, int(state_text), unescape(output), when or None)


def _submissions(raws: list[Any], bad: str) -> list[Submission]:
    if not raws:
        raise Bad("NO DATA", "no checkresult in the data")
    out, problems = [], []
    for i, raw in enumerate(raws, 1):
        try:
            out.append(_item(i, raw))
        except ValueError as e:
            problems.append(f"checkresult {i}: {e}")
    if problems:
        raise Bad(bad, "; ".join(problems[:MAX_PROBLEMS]) + (" ..." if len(problems) > MAX_PROBLEMS else ""))
    return out
