"""Build the Objects of a configuration directory from its YAML nodes.

One pass reads each section into typed objects (checkd.config.fields), a
second checks every reference between them (checkd.config.references).
"""

from __future__ import annotations

import calendar
import functools
import dataclasses
import datetime
import re
from collections.abc import Mapping
from typing import Any

from checkd import mailtags
from checkd.config import fields as f
from checkd.config.errors import Problems, did_you_mean
from checkd.config.macros import split_call, unknown_macros
from checkd.config.model import (CheckSpec, Command, CommandKind, Contact, Escalation, Group, Host,
                                 Notify, Ranges, Schedule, Service, Site, SSHSettings, TimePeriod, Where)
from checkd.config.sites import place, read_domains
from checkd.durations import format_duration
from checkd.config.templates import index_templates, resolve
from checkd.config.yamlsource import Node, Seq

SECTIONS = ("hosts", "services", "commands", "contacts", "contact_groups", "hostgroups",
            "templates", "timeperiods", "sites", "macros", "downtimes", "dependencies", "weathermaps")

SCHEDULE_KEYS: dict[str, f.Converter] = {
    "interval": f.positive_duration, "retry_interval": f.positive_duration,
    "max_attempts": f.positive_int, "timeout": f.positive_duration, "check_period": f.text,
    "active": f.boolean, "freshness_threshold": f.positive_duration, "freshness_state": f.state_word,
    "freshness_output": f.text, "flap_detection": f.boolean,
    "low_flap_threshold": f.percent, "high_flap_threshold": f.percent,
}
NOTIFY_KEYS: dict[str, f.Converter] = {
    "contacts": f.names, "contact_groups": f.names, "notification_interval": f.duration,
    "notification_period": f.text, "notifications_enabled": f.boolean, "escalations": f.raw,
    "first_notification_delay": f.duration,
}
ESCALATION_KEYS: dict[str, f.Converter] = {
    "after": f.positive_duration, "contacts": f.names, "contact_groups": f.names,
    "every": f.positive_duration, "period": f.text,
}
COMMON_KEYS: dict[str, f.Converter] = {
    "use": f.raw, "notes": f.text, "runbook": f.text, "vars": f.string_map, "command": f.raw,
    "event_handler": f.raw, "event_handler_enabled": f.boolean, **SCHEDULE_KEYS, **NOTIFY_KEYS,
}
HOST_KEYS = {"name": f.text, "address": f.text, "site": f.text, "alias": f.text,
             "parents": f.names, "hostgroups": f.names, "ssh": f.raw, **COMMON_KEYS}
SERVICE_KEYS = {"host": f.names, "hosts": f.names, "hostgroups": f.names, "description": f.text,
                "graph": f.boolean, "servicegroups": f.names, **COMMON_KEYS}
CONTACT_KEYS = {"name": f.text, "email": f.text, "jabber": f.text, "webhook": f.url, "alias": f.text, "use": f.raw,
                "webhook_template": f.text, "pagerduty": f.text, "opsgenie": f.text, "slack": f.text,
                "contact_groups": f.names, "notification_period": f.text,
                "service_notification_options": f.names, "host_notification_options": f.names}
GROUP_KEYS = {"name": f.text, "members": f.names, "alias": f.text}
COMMAND_KEYS = {"exec": f.text, "embedded": f.text, "ssh": f.text, "args": f.raw, "timeout": f.positive_duration}
SSH_KEYS = {"user": f.text, "port": f.port, "key": f.text, "known_hosts": f.text,
            "connect_timeout": f.positive_duration}
SITE_KEYS = {"name": f.text, "stale_after": f.positive_duration, "domains": f.names}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TIMEPERIOD_KEYS = {"name": f.text, "alias": f.text, "exceptions": f.raw, "exclude": f.names,
                   **{d: f.text for d in WEEKDAYS}}
SERVICE_STATES = {"warning", "critical", "unknown", "recovery", "flapping", "downtime", "none"}
HOST_STATES = {"down", "unreachable", "recovery", "flapping", "downtime", "none"}
NO_VARS: Mapping[str, str] = {}     # shared by every service without `vars:` (objects are never changed)


def section_items(node: Node, section: str, problems: Problems) -> list[Node]:
    """The mappings of a list section; anything else is reported."""
    value = node.get(section)
    if value is None:
        return []
    if not isinstance(value, Seq):
        problems.add(node.file, node.line_of(section), f"{section}: expected a list of mappings")
        return []
    items = [v for v in value if isinstance(v, Node)]
    if len(items) != len(value):
        problems.add(value.file, value.line, f"{section}: every entry must be a mapping (key: value)")
    return items


# --- commands -------------------------------------------------------------------------------

def read_command(name: str, value: Any, file: str, line: int, macros: dict[str, str],
                 problems: Problems) -> Command | None:
    where = Where(file, line)
    if isinstance(value, str):
        cmd = Command(name, CommandKind.EXEC, line=value, where=where)
    elif isinstance(value, Node):
        d = f.convert(value, COMMAND_KEYS, problems, f"command {name!r}")
        kinds = [k for k in ("exec", "embedded", "ssh") if k in d]
        if len(kinds) != 1:
            problems.add(file, line, f"command {name!r}: give exactly one of exec:, embedded:, ssh:")
            return None
        args = value.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
            problems.add(file, value.line_of("args"), f"command {name!r}: args must be a list of strings")
            args = []
        if args and kinds[0] != "embedded":
            problems.add(file, value.line_of("args"),
                         f"command {name!r}: args: only for embedded; put arguments in the command line")
        kind = CommandKind(kinds[0])
        cmd = Command(name, kind, line=d.get("exec") or d.get("ssh", ""), plugin=d.get("embedded", ""),
                      args=tuple(str(a) for a in args), timeout=d.get("timeout"), where=where)
    else:
        problems.add(file, line, f"command {name!r}: expected a command line or a mapping "
                                 "with exec:, embedded: or ssh:")
        return None
    for text in (cmd.line, *cmd.args):
        for bad in unknown_macros(text, macros):
            problems.add(file, line, f"command {name!r}: unknown macro ${bad}$"
                                     f"{did_you_mean(bad, macros)}; define it under macros:")
    return cmd


def read_check(value: Any, owner: str, node: Node, commands: dict[str, Command],
               macros: dict[str, str], problems: Problems, key: str = "command") -> CheckSpec | None:
    """The `command:` (or `event_handler:`, the `key`) of a host or service: `name!arg!arg` or
    an inline command mapping."""
    file, line = node.where_of(key)
    if isinstance(value, str):
        name, args = split_call(value)
        cmd = commands.get(name)
        if cmd is None:
            problems.add(file, line, f"undefined command {name!r}{did_you_mean(name, commands)}")
            return None
        return CheckSpec(cmd, args)
    if isinstance(value, Node):
        cmd = read_command(owner, value, file, line, macros, problems)
        return CheckSpec(cmd) if cmd else None
    problems.add(file, line, f"{key}: expected `name!arg1!arg2` or a mapping (exec:, embedded:, ssh:)")
    return None


def read_handler(node: Node, owner: str, commands: dict[str, Command], macros: dict[str, str],
                 problems: Problems) -> CheckSpec | None:
    """`event_handler:` of a host or service (docs/event-handlers.md), like `command:`."""
    if "event_handler" not in node:
        return None
    return read_check(node["event_handler"], owner, node, commands, macros, problems, "event_handler")


# --- hosts and services ---------------------------------------------------------------------

FRESHNESS_STATES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


def _schedule(d: dict[str, Any], node: Node, problems: Problems, host: bool = False) -> Schedule:
    kw = {k: d[k] for k in SCHEDULE_KEYS if k in d}
    _freshness_state(kw, node, problems, host)
    sched = _shared(Schedule, tuple(kw.items()))
    if sched.low_flap_threshold > sched.high_flap_threshold:
        problems.add(*node.where_of("low_flap_threshold"),
                     "low_flap_threshold must not be above high_flap_threshold")
    return sched


def _freshness_state(kw: dict[str, Any], node: Node, problems: Problems, host: bool) -> None:
    """`freshness_state:` as a state number, checked against what it goes with (docs/passive.md)."""
    if host:
        for key in ("freshness_state", "freshness_output"):
            if kw.pop(key, None) is not None:
                problems.add(*node.where_of(key), f"{key}: central checks the freshness of services only; "
                                                  "put it on a service")
        return
    word = kw.get("freshness_state")
    if word is not None:
        state = word if isinstance(word, int) else FRESHNESS_STATES.get(word)
        if state is None or not 0 <= state <= 3:
            problems.add(*node.where_of("freshness_state"),
                         f"freshness_state: one of ok, warning, critical, unknown (or 0-3), got {word!r}"
                         f"{did_you_mean(str(word), FRESHNESS_STATES)}")
            state = None
        kw["freshness_state"] = state
        if "freshness_threshold" not in kw:
            problems.add(*node.where_of("freshness_state"), "freshness_state: needs `freshness_threshold:` "
                         "(how long without a result before the check counts as stale)")
    elif "freshness_output" in kw:
        problems.add(*node.where_of("freshness_output"), "freshness_output: goes with `freshness_state:` (without "
                     "it central runs the check's command when the check is stale)")


def _notify(d: dict[str, Any]) -> Notify:
    """`d` as converted, with `escalations` already read by read_escalations."""
    return _shared(Notify, tuple((k, d[k]) for k in NOTIFY_KEYS if k in d))


@functools.lru_cache(maxsize=4096)
def _shared(kind: type[Any], items: tuple[tuple[str, Any], ...]) -> Any:
    """One immutable Schedule or Notify for every object that sets the same values: 100,000
    services of a generated config mostly share a handful (docs/benchmarks.md)."""
    return kind(**dict(items))


def read_escalations(node: Node, problems: Problems) -> tuple[Escalation, ...]:
    """`escalations:` of a host or service: levels 2, 3, ... with rising `after`."""
    value = node.get("escalations")
    if value is None:
        return ()
    file, line = node.where_of("escalations")
    if not isinstance(value, list):
        problems.add(file, line, "escalations: expected a list of mappings like {after: 10m, contacts: [ops]}")
        return ()
    out: list[Escalation] = []
    for item in value:
        if not isinstance(item, Node):
            problems.add(file, getattr(value, "line", line),
                         "escalations: every entry must be a mapping like {after: 10m, contacts: [ops]}")
            continue
        d = f.convert(item, ESCALATION_KEYS, problems, "escalation")
        if "after" not in item:
            problems.add(item.file, item.line, "escalation without after: add e.g. `after: 10m`, "
                                               "the time since the problem began")
        if not d.get("contacts") and not d.get("contact_groups"):
            problems.add(item.file, item.line, "escalation names no one: add contacts: or contact_groups:")
        if "after" not in d:
            continue
        if out and d["after"] <= out[-1].after:
            problems.add(item.file, item.line_of("after"),
                         f"escalations: after {format_duration(d['after'])} must be later than the "
                         f"level before ({format_duration(out[-1].after)}); list levels in rising order")
        out.append(Escalation(after=d["after"], contacts=d.get("contacts", ()),
                              contact_groups=d.get("contact_groups", ()), every=d.get("every"),
                              period=d.get("period"), where=Where(item.file, item.line)))
    return tuple(out)


def read_ssh(value: Any, node: Node, problems: Problems) -> SSHSettings | None:
    if value is None:
        return None
    if not isinstance(value, Node):
        problems.add(*node.where_of("ssh"), "ssh: expected a mapping (user:, port:, key:, known_hosts:)")
        return None
    d = f.convert(value, SSH_KEYS, problems, "ssh settings")
    if d.get("known_hosts", "").lower() in ("none", "off", "no"):
        problems.add(value.file, value.line_of("known_hosts"),
                     "known_hosts: host key checking cannot be turned off; "
                     "give a known_hosts file with the host's key")
    return SSHSettings(**d)


def read_host(node: Node, commands: dict[str, Command], macros: dict[str, str], domains: dict[str, Site],
              problems: Problems) -> Host | None:
    """A host; `domains` (checkd.config.sites.domain_index) places it when it has no `site:`."""
    d = f.convert(node, HOST_KEYS, problems, "host")
    name = d.get("name")
    if not name:
        problems.add(node.file, node.line, "host without a name: add `name: ...`")
        return None
    placed = place(name, d.get("site"), domains, Where(node.file, node.line), problems)
    if placed is None:
        return None
    site, rule = placed
    check = read_check(node["command"], name, node, commands, macros, problems) if "command" in node else None
    d["escalations"] = read_escalations(node, problems)
    return Host(name=name, address=d.get("address", name), site=site, alias=d.get("alias", ""),
                parents=d.get("parents", ()), groups=d.get("hostgroups", ()), check=check,
                schedule=_schedule(d, node, problems, host=True), notify=_notify(d), notes=d.get("notes", ""),
                runbook=d.get("runbook", ""), vars=d.get("vars", {}),
                ssh=read_ssh(node.get("ssh"), node, problems), where=Where(node.file, node.line), site_rule=rule,
                event_handler=read_handler(node, f"{name} event handler", commands, macros, problems),
                event_handler_enabled=d.get("event_handler_enabled", True))


def read_service_template(node: Node, commands: dict[str, Command], macros: dict[str, str],
                          problems: Problems) -> tuple[dict[str, Any], CheckSpec | None] | None:
    """The host-independent part of a service definition (it may apply to many hosts)."""
    d = f.convert(node, SERVICE_KEYS, problems, "service")
    desc = d.get("description")
    if not desc:
        problems.add(node.file, node.line, "service without a description: add `description: ...`")
        return None
    if "command" not in node:
        problems.add(node.file, node.line, f"service {desc!r} has no command: add `command: ...`")
        return None
    check = read_check(node["command"], desc, node, commands, macros, problems)
    d["escalations"] = read_escalations(node, problems)  # once, though the service may apply to many hosts
    d["event_handler"] = read_handler(node, f"{desc} event handler", commands, macros, problems)
    return d, check


def make_service(host: str, d: dict[str, Any], check: CheckSpec, node: Node, problems: Problems,
                 schedule: Schedule | None = None, notify: Notify | None = None) -> Service:
    """`schedule` and `notify`: those of an entry read the same way before, when given."""
    return Service(host=host, description=d["description"], check=check,
                   schedule=_schedule(d, node, problems) if schedule is None else schedule,
                   notify=_notify(d) if notify is None else notify,
                   graph=d.get("graph", True),
                   groups=d.get("servicegroups", ()), notes=d.get("notes", ""),
                   runbook=d.get("runbook", ""), vars=d.get("vars", NO_VARS), where=Where(node.file, node.line),
                   event_handler=d["event_handler"], event_handler_enabled=d.get("event_handler_enabled", True))


# --- contacts, groups, time periods, sites --------------------------------------------------

def read_contact(node: Node, problems: Problems) -> Contact | None:
    d = f.convert(node, CONTACT_KEYS, problems, "contact")
    name = d.get("name")
    if not name:
        problems.add(node.file, node.line, "contact without a name: add `name: ...`")
        return None
    for key, allowed in (("service_notification_options", SERVICE_STATES),
                         ("host_notification_options", HOST_STATES)):
        for opt in d.get(key, ()):
            if opt not in allowed:
                problems.add(*node.where_of(key), f"{key}: unknown option {opt!r}{did_you_mean(opt, allowed)}")
    if mailtags.is_template(d.get("email", "")):
        why = mailtags.address_problem(d["email"])
        if why is not None:
            problems.add(*node.where_of("email"), f"email: {why}")
    kw: dict[str, Any] = {}
    if "service_notification_options" in d:
        kw["service_states"] = frozenset(d["service_notification_options"]) - {"none"}
    if "host_notification_options" in d:
        kw["host_states"] = frozenset(d["host_notification_options"]) - {"none"}
    return Contact(name=name, email=d.get("email", ""), jabber=d.get("jabber", ""), webhook=d.get("webhook", ""),
                   webhook_template=d.get("webhook_template", ""), pagerduty=d.get("pagerduty", ""),
                   opsgenie=d.get("opsgenie", ""), slack=d.get("slack", ""),
                   alias=d.get("alias", ""),
                   groups=d.get("contact_groups", ()), notification_period=d.get("notification_period"),
                   where=Where(node.file, node.line), **kw)


def read_group(node: Node, problems: Problems, what: str) -> Group | None:
    d = f.convert(node, GROUP_KEYS, problems, what)
    if not d.get("name"):
        problems.add(node.file, node.line, f"{what} without a name: add `name: ...`")
        return None
    return Group(d["name"], d.get("members", ()), d.get("alias", ""), Where(node.file, node.line))


_RANGE_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_DATE = r"\d{4}-\d{2}-\d{2}"
_DATE_RE = re.compile(rf"^{_DATE}$")
_DATE_RANGE_RE = re.compile(rf"^({_DATE})\s*-\s*({_DATE})$")
_MONTH_DAY_RE = re.compile(r"^([A-Za-z]+)\s+(\d{1,2})$")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")  # not calendar.month_name: that follows the locale
EXCEPTION_FORMS = ("write YYYY-MM-DD, YYYY-MM-DD - YYYY-MM-DD, a month and day like 'december 25', "
                   "'day 1' or 'day -1' (of every month), or 'monday 1' / 'friday -1' (first, last of the month)")
_MONTHLY_RE = re.compile(r"^([A-Za-z]+)\s+(-?\d{1,2})$")


def parse_ranges(text: str) -> Ranges:
    """`09:00-17:00,18:00-24:00` -> ((540, 1020), (1080, 1440)); empty means none."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = _RANGE_RE.match(part)
        if not m:
            raise ValueError(f"bad time range {part!r}: write HH:MM-HH:MM, several separated by commas")
        start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
        if int(m[2]) > 59 or int(m[4]) > 59 or end > 1440 or start >= end:
            raise ValueError(f"bad time range {part!r}: start must be before end, at most 24:00")
        out.append((start, end))
    return tuple(out)


def _date(text: str) -> str:
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"no such date {text!r}") from None


def parse_exception_day(key: Any) -> tuple[str, Any]:
    """An exceptions: key -> ("date", "2026-12-25") | ("range", (first, last)) | ("yearly", (12, 25))
    | ("monthly", (weekday or 7 for `day`, N))."""
    text = str(key).strip()
    if _DATE_RE.match(text):
        return "date", _date(text)
    if m := _DATE_RANGE_RE.match(text):
        first, last = _date(m[1]), _date(m[2])
        if first > last:
            raise ValueError(f"date range {text!r} ends before it starts")
        return "range", (first, last)
    if (m := _MONTHLY_RE.match(text)) and (m[1].lower() in WEEKDAYS or m[1].lower() == "day"):
        n = int(m[2])
        if not (1 <= abs(n) <= (31 if m[1].lower() == "day" else 5)):
            raise ValueError(f"{text!r}: there is no such {'day' if m[1].lower() == 'day' else 'week'} in a month")
        return "monthly", (7 if m[1].lower() == "day" else WEEKDAYS.index(m[1].lower()), n)
    if m := _MONTH_DAY_RE.match(text):
        month = m[1].lower()
        if month not in MONTHS:
            raise ValueError(f"unknown month {m[1]!r}{did_you_mean(month, MONTHS)}")
        number, day = MONTHS.index(month) + 1, int(m[2])
        if not 1 <= day <= calendar.monthrange(2024, number)[1]:  # a leap year: february 29 is allowed
            raise ValueError(f"{m[1]} has no day {day}")
        return "yearly", (number, day)
    raise ValueError(f"bad exception day {text!r}: {EXCEPTION_FORMS}")


def read_timeperiod(node: Node, problems: Problems) -> TimePeriod | None:
    d = f.convert(node, TIMEPERIOD_KEYS, problems, "timeperiod")
    if not d.get("name"):
        problems.add(node.file, node.line, "timeperiod without a name: add `name: ...`")
        return None
    weekdays: dict[int, Ranges] = {}
    for i, day in enumerate(WEEKDAYS):
        if day in d:
            try:
                weekdays[i] = parse_ranges(d[day])
            except ValueError as e:
                problems.add(*node.where_of(day), f"{day}: {e}")
    exc = node.get("exceptions")
    if exc is not None and not isinstance(exc, Node):
        problems.add(*node.where_of("exceptions"), f"exceptions: expected a mapping of days to ranges; {EXCEPTION_FORMS}")
        exc = None
    days = ExceptionDays()
    seen: dict[tuple[str, Any], int] = {}
    for key, value in (exc or {}).items():
        line = exc.line_of(key)
        try:
            kind, day = parse_exception_day(key)
            ranges = parse_ranges(str(value or ""))
        except ValueError as e:
            problems.add(exc.file, line, f"exceptions: {e}")
            continue
        if (kind, day) in seen:
            problems.add(exc.file, line, f"exceptions: {key!s} is given twice (first at line {seen[kind, day]})")
            continue
        seen[kind, day] = line
        days.add(kind, day, ranges)
    return days.period(d["name"], d.get("alias", ""), weekdays, d.get("exclude", ()), Where(node.file, node.line))


@dataclasses.dataclass
class ExceptionDays:
    """A time period's exception days as they are read, sorted by kind (parse_exception_day)."""

    exceptions: dict[str, Ranges] = dataclasses.field(default_factory=dict)
    date_ranges: list[tuple[str, str, Ranges]] = dataclasses.field(default_factory=list)
    yearly: dict[tuple[int, int], Ranges] = dataclasses.field(default_factory=dict)
    monthly: dict[tuple[int, int], Ranges] = dataclasses.field(default_factory=dict)

    def add(self, kind: str, day: Any, ranges: Ranges) -> None:
        if kind == "date":
            self.exceptions[day] = ranges
        elif kind == "range":
            self.date_ranges.append((*day, ranges))
        elif kind == "monthly":
            self.monthly[day] = ranges
        else:
            self.yearly[day] = ranges

    def period(self, name: str, alias: str, weekdays: dict[int, Ranges], exclude: tuple[str, ...],
               where: Where) -> TimePeriod:
        return TimePeriod(name, alias, weekdays, self.exceptions, exclude, where, tuple(self.date_ranges),
                          self.yearly, self.monthly)


def read_site(node: Node, problems: Problems) -> Site | None:
    d = f.convert(node, SITE_KEYS, problems, "site")
    if not d.get("name"):
        problems.add(node.file, node.line, "site without a name: add `name: ...`")
        return None
    domains = read_domains(d.get("domains", ()), d["name"], node.where_of("domains"), problems)
    return Site(d["name"], d.get("stale_after"), Where(node.file, node.line), domains)


def hostgroup_members(hosts: Mapping[str, Host], groups: Mapping[str, Group]) -> dict[str, set[str]]:
    """Each host group's hosts: its `members` and the hosts that name it in `hostgroups`."""
    members: dict[str, set[str]] = {g: set(grp.members) for g, grp in groups.items()}
    for h in hosts.values():
        for g in h.groups:
            members.setdefault(g, set()).add(h.name)
    return members


def read_templates(docs: list[Node], problems: Problems) -> dict[str, Node]:
    return index_templates([t for doc in docs for t in section_items(doc, "templates", problems)], problems)


def resolved(doc: Node, section: str, templates: dict[str, Node], problems: Problems) -> list[Node]:
    return [resolve(item, templates, problems) for item in section_items(doc, section, problems)]
