"""Nagios directives -> checkd keys, one definition at a time (templates stay templates).

A directive without a checkd equivalent is reported, unless its value means
what checkd does anyway (`obsess_over_service 0`, `process_perf_data 1`, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from checkd.nagios_import.parse import Definition
from checkd.nagios_import.report import Report
from checkd.nagios_import.resolve import split_list

# Directives whose value here changes nothing in checkd; any other value is reported.
SAME_AS_CHECKD = {
    "obsess_over_service": "0", "obsess_over_host": "0", "obsess": "0", "is_volatile": "0",
    "check_freshness": "0", "parallelize_check": "1", "process_perf_data": "1",
    "retain_status_information": "1", "retain_nonstatus_information": "1", "failure_prediction_enabled": "0",
    "event_handler_enabled": None, "passive_checks_enabled": "1", "host_notifications_enabled": "1",
    "service_notifications_enabled": "1", "can_submit_commands": None, "initial_state": "o",
    "stalking_options": "n", "flap_detection_options": "a",
}
HOST_OPTIONS = {"d": "down", "u": "unreachable", "r": "recovery", "f": "flapping", "s": "downtime", "n": "none"}
SERVICE_OPTIONS = {"w": "warning", "u": "unknown", "c": "critical", "r": "recovery", "f": "flapping",
                   "s": "downtime", "n": "none"}


@dataclasses.dataclass
class Context:
    interval_length: int
    report: Report
    template_names: dict[tuple[str, str], str]   # (type, nagios name) -> checkd template name
    resolved: Callable[[Definition], dict[str, str]]


def interval_seconds(value: str, ctx: Context) -> float | int:
    """A Nagios interval (in interval_length units, 60 s by default) in seconds."""
    seconds = float(value) * ctx.interval_length
    return int(seconds) if seconds == int(seconds) else seconds


def _bool(value: str) -> bool:
    return value.strip() not in ("0", "")


def _percent(value: str) -> float | None:
    number = float(value)
    return number if number > 0 else None  # 0 means "the global default" in Nagios


Rule = Callable[[str, Context], Any]
CHECK_RULES: dict[str, tuple[str, Rule]] = {
    "alias": ("alias", lambda v, c: v),
    "check_command": ("command", lambda v, c: v),
    "check_interval": ("interval", interval_seconds), "normal_check_interval": ("interval", interval_seconds),
    "retry_interval": ("retry_interval", interval_seconds), "retry_check_interval": ("retry_interval", interval_seconds),
    "max_check_attempts": ("max_attempts", lambda v, c: int(v)),
    "check_period": ("check_period", lambda v, c: v),
    "active_checks_enabled": ("active", lambda v, c: _bool(v)),
    "contacts": ("contacts", lambda v, c: split_list(v)),
    "contact_groups": ("contact_groups", lambda v, c: split_list(v)),
    "notification_interval": ("notification_interval", interval_seconds),
    "notification_period": ("notification_period", lambda v, c: v),
    "notifications_enabled": ("notifications_enabled", lambda v, c: _bool(v)),
    "first_notification_delay": ("first_notification_delay", lambda v, c: interval_seconds(v, c) or None),
    "notes": ("notes", lambda v, c: v), "notes_url": ("runbook", lambda v, c: v),
    "freshness_threshold": ("freshness_threshold", lambda v, c: int(v) or None),
    "flap_detection_enabled": ("flap_detection", lambda v, c: _bool(v)),
    "low_flap_threshold": ("low_flap_threshold", lambda v, c: _percent(v)),
    "high_flap_threshold": ("high_flap_threshold", lambda v, c: _percent(v)),
}
HOST_RULES = {**CHECK_RULES, "host_name": ("name", lambda v, c: v), "address": ("address", lambda v, c: v),
              "parents": ("parents", lambda v, c: split_list(v)),
              "hostgroups": ("hostgroups", lambda v, c: split_list(v))}
SERVICE_RULES = {**CHECK_RULES, "service_description": ("description", lambda v, c: v),
                 "servicegroups": ("servicegroups", lambda v, c: split_list(v))}
CONTACT_RULES: dict[str, tuple[str, Rule]] = {
    "contact_name": ("name", lambda v, c: v), "alias": ("alias", lambda v, c: v),
    "email": ("email", lambda v, c: v), "contactgroups": ("contact_groups", lambda v, c: split_list(v)),
    "host_notification_options": ("host_notification_options",
                                  lambda v, c: [HOST_OPTIONS[o] for o in split_list(v) if o in HOST_OPTIONS]),
    "service_notification_options": ("service_notification_options",
                                     lambda v, c: [SERVICE_OPTIONS[o] for o in split_list(v) if o in SERVICE_OPTIONS]),
}
WHY = {
    "event_handler": "not imported; add `event_handler:` and its command by hand (docs/event-handlers.md)",
    "pager": "no pager address in checkd: give the contact `pagerduty:` or `opsgenie:` (docs/integrations.md)",
    "host_notification_commands": "checkd sends notifications itself (email, jabber, webhook, pagerduty, opsgenie, "
                                  "slack)",
    "service_notification_commands": "checkd sends notifications itself (email, jabber, webhook, pagerduty, "
                                     "opsgenie, slack)",
    "notification_options": "checkd filters notifications per contact (*_notification_options)",
    "obsess_over_service": "checkd has no obsessive-compulsive processing",
    "obsess_over_host": "checkd has no obsessive-compulsive processing",
    "obsess": "checkd has no obsessive-compulsive processing",
}


def convert(d: Definition, rules: dict[str, tuple[str, Rule]], ctx: Context,
            skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The checkd keys of one host, service or contact definition (or template of one)."""
    out: dict[str, Any] = {}
    resolved = None
    for key, value in d.attrs.items():
        if key in ("name", "register", "use", *skip):
            continue
        if value.startswith("+"):  # additive inheritance: checkd has none, so write the full value
            resolved = resolved or ctx.resolved(d)
            value = resolved.get(key, value[1:])
        if key.startswith("_"):
            out.setdefault("vars", {})[key[1:].upper()] = value
            continue
        if key in rules:
            new, rule = rules[key]
            try:
                converted = rule(value, ctx)
            except ValueError:
                ctx.report.add(*d.where(key), f"{d.type} {key} {value!r}: not a valid value, left out")
                continue
            if converted in (None, 0) and new in ("interval", "retry_interval", "max_attempts"):
                ctx.report.add(*d.where(key), f"{d.type} {key} {value}: 0 is not allowed in checkd, "
                                              "left out (checkd's default applies)")
            elif converted is not None:
                out[new] = converted
            continue
        if key in SAME_AS_CHECKD and SAME_AS_CHECKD[key] in (None, value.strip()):
            continue
        why = WHY.get(key, "no checkd equivalent")
        ctx.report.add(*d.where(key), f"{d.type} directive {key} {value!r} not carried over: {why}")
    uses = [ctx.template_names[(d.type, u)] for u in split_list(d.attrs.get("use"))
            if (d.type, u) in ctx.template_names]
    if uses:
        out["use"] = uses[0] if len(uses) == 1 else uses
    return out


def notification_period(d: Definition, out: dict[str, Any], ctx: Context) -> None:
    """A contact has one notification_period in checkd; Nagios has one for hosts and one for services."""
    host, service = d.attrs.get("host_notification_period"), d.attrs.get("service_notification_period")
    if service or host:
        out["notification_period"] = service or host
    if host and service and host != service:
        ctx.report.add(*d.where("host_notification_period"),
                       f"contact host_notification_period {host!r} differs from service_notification_period "
                       f"{service!r}; checkd uses {service!r} for both")
