"""Read nagios.cfg and the object files it names into Definitions with file:line.

Follows cfg_file and cfg_dir (every *.cfg below it), resource_file ($USERn$)
and interval_length, as Nagios does; paths are relative to nagios.cfg.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from checkd.nagios_import.report import Report

_DEFINE_RE = re.compile(r"^define\s+(\w+)\s*\{\s*(.*)$")


@dataclasses.dataclass
class Definition:
    """One `define TYPE { ... }` block; attrs keep Nagios' keys and raw string values."""
    type: str
    attrs: dict[str, str]
    file: str
    line: int
    key_lines: dict[str, int] = dataclasses.field(default_factory=dict)

    def where(self, key: str | None = None) -> tuple[str, int]:
        return self.file, self.key_lines.get(key, self.line) if key else self.line

    @property
    def registered(self) -> bool:
        return self.attrs.get("register", "1").strip() != "0"


@dataclasses.dataclass
class NagiosConfig:
    definitions: list[Definition]
    resource_macros: dict[str, str]
    interval_length: int
    main_file: str


def strip_comment(line: str) -> str:
    """Nagios object files: `#` or `;` starts a comment line; `;` ends a value (`\\;` is a literal `;`)."""
    stripped = line.strip()
    if not stripped or stripped[0] in "#;":
        return ""
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and line[i + 1:i + 2] == ";":
            out.append(";")
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


def parse_object_file(path: Path, report: Report) -> list[Definition]:
    defs: list[Definition] = []
    current: Definition | None = None
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = strip_comment(raw)
        if not line:
            continue
        if current is None:
            m = _DEFINE_RE.match(line)
            if m:
                current = Definition(m[1], {}, str(path), number)
                line = m[2].strip()
                if not line:
                    continue
            elif line.split()[0] in ("include_file", "include_dir"):
                report.add(str(path), number, f"{line.split()[0]} is not followed; list the files in nagios.cfg")
                continue
            else:
                report.add(str(path), number, f"not inside a definition, ignored: {line!r}")
                continue
        closing = line.endswith("}")
        if closing:
            line = line[:-1].strip()
        if line:
            key, value = (line.split(None, 1) + [""])[:2]
            value = value.strip()
            if current.type == "timeperiod" and key not in ("timeperiod_name", "alias", "name", "use",
                                                            "register", "exclude"):
                key, value = _timeperiod_line(line)
            current.attrs[key] = value
            current.key_lines[key] = number
        if closing:
            defs.append(current)
            current = None
    if current is not None:
        report.add(str(path), current.line, f"define {current.type} is never closed with }}")
    return defs


_RANGES_RE = re.compile(r"^(.*?)\s+((?:\d{1,2}:\d{2}-\d{1,2}:\d{2}\s*,?\s*)+)$")


def _timeperiod_line(line: str) -> tuple[str, str]:
    """`december 25 00:00-24:00` -> ("december 25", "00:00-24:00"): the day is everything before the ranges."""
    m = _RANGES_RE.match(line)
    if not m:
        return " ".join(line.split()), ""
    return " ".join(m[1].split()), re.sub(r"\s+", "", m[2])


def _cfg_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.cfg") if p.is_file())


def read_resource(path: Path, report: Report) -> dict[str, str]:
    macros: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^\$(USER\d+)\$\s*=\s*(.*)$", line)
        if m:
            macros[m[1]] = m[2]
        else:
            report.add(str(path), number, f"not a $USERn$=value line, ignored: {line!r}")
    return macros


def parse_main(cfg: Path, report: Report) -> NagiosConfig:
    """nagios.cfg and every object file it names (missing files are reported, not fatal)."""
    cfg = Path(cfg)
    base = cfg.parent
    files: list[Path] = []
    macros: dict[str, str] = {}
    interval_length = 60
    for number, raw in enumerate(cfg.read_text(errors="replace").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = (s.strip() for s in line.partition("="))
        path = base / value
        if key == "cfg_file":
            if path.is_file():
                files.append(path)
            else:
                report.add(str(cfg), number, f"cfg_file {value} does not exist")
        elif key == "cfg_dir":
            if path.is_dir():
                files.extend(_cfg_files(path))
            else:
                report.add(str(cfg), number, f"cfg_dir {value} does not exist")
        elif key == "resource_file":
            if path.is_file():
                macros.update(read_resource(path, report))
            else:
                report.add(str(cfg), number, f"resource_file {value} cannot be read")
        elif key == "interval_length":
            interval_length = int(value)
    defs = [d for path in dict.fromkeys(files) for d in parse_object_file(path, report)]
    return NagiosConfig(defs, macros, interval_length, str(cfg))
