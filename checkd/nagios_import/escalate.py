"""hostescalation / serviceescalation -> `escalations:` levels on the hosts and services.

checkd counts a level from when the problem began (`after`), Nagios from the
notification number: after = (first_notification - 1) * notification_interval.
"""

from __future__ import annotations

from typing import Any

from checkd.nagios_import.parse import Definition
from checkd.nagios_import.report import Report
from checkd.nagios_import.resolve import split_list

NOTIFICATION_INTERVAL_DEFAULT = 30  # Nagios' default, in interval_length units


def level(d: Definition, a: dict[str, str], notify_every: float, interval_length: int,
          report: Report) -> dict[str, Any] | None:
    """One escalation level, or None (reported) when checkd cannot express it."""
    first = int(a.get("first_notification", "1") or 1)
    if first <= 1:
        report.add(*d.where("first_notification"), f"{d.type} first_notification {first}: checkd's first "
                   "level is the object's own contacts, so an escalation from the first notification is not carried over")
        return None
    if notify_every <= 0:
        report.add(*d.where(), f"{d.type}: the object's notification_interval is 0 (one notification), "
                               "so notification numbers cannot be turned into times; not carried over")
        return None
    out: dict[str, Any] = {"after": int((first - 1) * notify_every)}
    for key in ("contacts", "contact_groups"):
        if split_list(a.get(key)):
            out[key] = split_list(a.get(key))
    if not ("contacts" in out or "contact_groups" in out):
        report.add(*d.where(), f"{d.type} names no contacts or contact_groups; not carried over")
        return None
    every = float(a.get("notification_interval", "0") or 0) * interval_length
    if every > 0:
        out["every"] = int(every)
    if a.get("escalation_period"):
        out["period"] = a["escalation_period"]
    if a.get("last_notification", "0").strip() not in ("0", ""):
        report.add(*d.where("last_notification"), f"{d.type} last_notification {a['last_notification']}: "
                   "checkd keeps a level until the next one begins; the end is not carried over")
    options = set(split_list(a.get("escalation_options")))
    if options and not {"w", "u", "c", "r"} <= options and not {"d", "u", "r"} <= options:
        report.add(*d.where("escalation_options"), f"{d.type} escalation_options {a['escalation_options']!r}: "
                   "checkd escalates every problem state; the restriction is not carried over")
    return out


def attach(obj: dict[str, Any], new: dict[str, Any], d: Definition, report: Report) -> None:
    """Add a level to an object's escalations, keeping them in rising `after` order."""
    levels = obj.setdefault("escalations", [])
    if any(lv["after"] == new["after"] for lv in levels):
        report.add(*d.where(), f"{d.type}: another escalation of the same object starts at the same "
                               f"notification; checkd needs rising levels, this one is not carried over")
        return
    levels.append(new)
    levels.sort(key=lambda lv: lv["after"])
