"""`reports:` in central's node file: the availability summary mailed every week to
contacts and contact groups (docs/availability.md). Read with the node file; the names
are checked against the objects once both are loaded (`report_problems`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from checkd.config import fields as f
from checkd.config.errors import Problem, Problems, did_you_mean
from checkd.config.model import Objects, Where
from checkd.config.yamlsource import Node
from checkd.report_periods import WEEKDAYS


def weekday(value: Any) -> str:
    day = f.text(value).strip().lower()
    if day not in WEEKDAYS:
        raise ValueError(f"expected a day of the week (monday ... sunday), got {value!r}")
    return day


def clock_time(value: Any) -> str:
    """HH:MM, 00:00 to 23:59 (YAML reads 08:00 unquoted as a number of minutes: quote it)."""
    text = f.text(value).strip()
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
    if m is None:
        raise ValueError(f'expected a time of day such as "08:00" (quoted), got {value!r}')
    return f"{int(m.group(1)):02d}:{m.group(2)}"


WEEKLY_KEYS = {"contacts": f.names, "contact_groups": f.names, "day": weekday, "at": clock_time,
               "downtime_as_ok": f.boolean}


@dataclasses.dataclass(frozen=True)
class WeeklyReport:
    """Last week's availability (Monday to Sunday), mailed on `day` at `at` (local time)."""

    contacts: tuple[str, ...] = ()
    contact_groups: tuple[str, ...] = ()
    day: str = "monday"
    at: str = "08:00"
    downtime_as_ok: bool = False
    where: Where = Where("?", 0)


def read_reports(value: Any, node: Node, problems: Problems) -> WeeklyReport | None:
    """`reports: {weekly: {contacts:, contact_groups:, day:, at:, downtime_as_ok:}}`."""
    if value is None:
        return None
    if not isinstance(value, Node):
        problems.add(*node.where_of("reports"), "reports: expected a mapping, e.g. {weekly: {contact_groups: [...]}}")
        return None
    f.check_keys(value, {"weekly": f.raw}, problems, "reports")
    weekly = value.get("weekly")
    if weekly is None:
        return None
    if not isinstance(weekly, Node):
        problems.add(*value.where_of("weekly"), "reports: weekly: expected {contact_groups: [...], day:, at:}")
        return None
    d = f.convert(weekly, WEEKLY_KEYS, problems, "reports: weekly")
    if not d.get("contacts") and not d.get("contact_groups"):
        problems.add(weekly.file, weekly.line, "reports: weekly: say who gets it: contacts: and/or contact_groups:")
        return None
    return WeeklyReport(**d, where=Where(weekly.file, weekly.line))


def report_problems(weekly: WeeklyReport | None, objs: Objects, has_email: bool) -> list[Problem]:
    """No `email:` section to send with; contacts and contact groups the objects do not have,
    or none with an email address."""
    if weekly is None:
        return []
    if not has_email:
        return [Problem(weekly.where.file, weekly.where.line,
                        "reports: weekly is sent by email: add an email: section (docs/notifications.md)")]
    out = []
    for key, known in (("contacts", objs.contacts), ("contact_groups", objs.contact_groups)):
        for name in getattr(weekly, key):
            if name not in known:
                out.append(Problem(weekly.where.file, weekly.where.line,
                                   f"reports: weekly: {key}: no {key[:-1].replace('_', ' ')} {name!r}"
                                   f"{did_you_mean(name, known)}"))
    names = [*weekly.contacts, *(m for g in weekly.contact_groups if g in objs.contact_groups
                                 for m in objs.contact_groups[g].members)]
    if not out and not any(n in objs.contacts and objs.contacts[n].email for n in names):
        out.append(Problem(weekly.where.file, weekly.where.line,
                           "reports: weekly: none of its contacts has an email address"))
    return out
