"""Columns: a Nagios column name, its Livestatus type and how to read it from a row.
The columns hosts and services share (state, plugin_output, acknowledged,
scheduled_downtime_depth, ...) are made here once for both tables."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from checkd.config.model import Host, Service
from checkd.engine.store import CheckView, Event
from central.livestatus.snapshot import Snapshot

TYPES = ("int", "float", "string", "list", "time", "dict")


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str                           # one of TYPES
    get: Callable[[Any], Any]
    description: str = ""
    via: Callable[[Any], Any] | None = None     # a prefixed column: the row it is read through
    base: Column | None = None                  # ... and the column it reads there

    def prefixed(self, prefix: str, through: Callable[[Any], CheckRow], what: str) -> Column:
        """The same column read through another row (services' host_state from the host), its
        value kept with that row: the ten services of a host read its columns once."""
        get, name = self.get, self.name

        def read(r: Any) -> Any:
            row = through(r)
            memo = row.memo
            if name in memo:
                return memo[name]
            value = memo[name] = get(row)
            return value
        return Column(prefix + name, self.type, read, f"{what}: {self.description}", through, self)


class OnHost:
    """A row about a host (a check, a comment, a downtime): the host's own row for the
    host_ columns, made when first read."""

    __slots__ = ("snap", "host", "_host_row")

    def __init__(self, snap: Snapshot, host: Host):
        self.snap, self.host = snap, host
        self._host_row: CheckRow | None = None

    @property
    def host_row(self) -> CheckRow:
        """One per host and query: what its columns compute (its services) is kept with it."""
        if self._host_row is None:
            rows = self.snap.host_rows
            found = rows.get(self.host.name)
            if found is None:
                found = rows[self.host.name] = CheckRow(self.snap, self.host, self.host, None)
            self._host_row = found
        return self._host_row


class CheckRow(OnHost):
    """A host (service None) or a service, its current state and its open problem."""

    __slots__ = ("obj", "service", "view", "_event", "_services", "memo")

    def __init__(self, snap: Snapshot, obj: Host | Service, host: Host, service: str | None):
        # OnHost's part set here too: one row per service and query, made often.
        self.snap, self.host, self._host_row = snap, host, None
        self.obj, self.service = obj, service
        self.view: CheckView | None = snap.checks.get((host.name, service))
        self._event: Event | None | bool = False
        self._services: list[CheckRow] | None = None
        self.memo: dict[str, Any] = {}          # column values read through it (Column.prefixed)

    @property
    def services(self) -> list[CheckRow]:
        """A host's services' rows (for num_services_*, worst_service_state, ...)."""
        if self._services is None:
            self._services = [CheckRow(self.snap, s, self.host, s.description)
                              for s in self.snap.services_of.get(self.host.name, ())]
        return self._services

    @property
    def event(self) -> Event | None:
        if self._event is False:
            self._event = self.snap.event(self.view)
        return self._event      # type: ignore[return-value]

    @property
    def checked(self) -> bool:
        """A result is stored; a host without a host check is UP by definition (checked too)."""
        return self.view is not None and self.view.last_check > 0 or self.service is None and self.obj.check is None

    @property
    def state(self) -> int:
        return self.view.status if self.view is not None and self.view.last_check > 0 else 0


def _v(attr: str, default: Any) -> Callable[[CheckRow], Any]:
    return lambda r: getattr(r.view, attr) if r.view is not None else default


def _command(r: CheckRow) -> str:
    spec = r.obj.check
    return "" if spec is None else "!".join((spec.command.name, *spec.args))


def _ack_type(r: CheckRow) -> int:
    ev = r.event
    return 0 if ev is None or not ev.acknowledged else (2 if ev.ack_sticky else 1)


def _notifications(r: CheckRow) -> int:
    """0 when notifications are turned off (disabled for it or its host, or in its config);
    downtimes have their own column, as in Nagios."""
    return int(r.obj.notify.notifications_enabled and not r.snap.notifications_off(r.host.name, r.service))


def _downtimes(r: CheckRow) -> list[int]:
    return [d.id for d in r.snap.downtimes.get((r.host.name, r.service), ())]


def _downtimes_info(r: CheckRow) -> list[list[Any]]:
    return [[d.id, d.author, d.comment] for d in r.snap.downtimes.get((r.host.name, r.service), ())]


def _comments(r: CheckRow) -> list[int]:
    return [c.id for c in r.snap.comments_of.get((r.host.name, r.service), ())]


def _comments_info(r: CheckRow) -> list[list[Any]]:
    return [[c.id, c.author, c.text] for c in r.snap.comments_of.get((r.host.name, r.service), ())]


def _pending_flexible(r: CheckRow) -> int:
    return sum(1 for d in r.snap.downtimes.get((r.host.name, r.service), ()) if d.flexible and d.triggered is None)


def _next_check(r: CheckRow) -> int:
    """Central does not schedule the pollers' checks: the last check plus the interval."""
    if r.view is None or not r.view.last_check or not r.obj.schedule.active:
        return 0
    return int(r.view.last_check + r.obj.schedule.interval)


def _staleness(r: CheckRow) -> float:
    if r.view is None or not r.view.last_check:
        return 0.0
    return max(0.0, r.snap.now - r.view.last_check) / max(r.obj.schedule.interval, 1.0)


def check_columns() -> list[Column]:
    """Columns of the hosts table that the services table has under the same name."""
    return [
        Column("state", "int", lambda r: r.state, "current state (service 0-3, host 0 UP 1 DOWN 2 UNREACHABLE)"),
        Column("state_type", "int", lambda r: 0 if r.view is not None and r.view.state_type.value == "SOFT" else 1,
               "0 SOFT, 1 HARD"),
        Column("has_been_checked", "int", lambda r: int(r.checked), "1 once a result is stored"),
        Column("plugin_output", "string", _v("output", ""), "first line of the last result"),
        Column("long_plugin_output", "string", _v("long_output", ""), "further lines of the last result"),
        Column("perf_data", "string", _v("perfdata", ""), "performance data of the last result"),
        Column("last_check", "time", lambda r: int(r.view.last_check) if r.view is not None else 0,
               "when the last result was taken"),
        Column("last_state_change", "time", lambda r: int(r.view.last_state_change) if r.view is not None else 0,
               "when the state last changed"),
        Column("last_hard_state_change", "time",
               lambda r: int(r.view.last_state_change) if r.view is not None else 0,
               "when the state last changed (central keeps one time of change)"),
        Column("hard_state", "int", lambda r: r.state if r.view is None or r.view.state_type.value == "HARD"
               else 0, "the state when HARD, else 0 (OK/UP)"),
        Column("last_hard_state", "int", lambda r: r.state if r.view is None or r.view.state_type.value == "HARD"
               else 0, "the state when HARD"),
        Column("current_attempt", "int", _v("attempt", 1), "attempt of the current state"),
        Column("max_check_attempts", "int", lambda r: r.obj.schedule.max_attempts, "max_attempts"),
        Column("check_interval", "float", lambda r: r.obj.schedule.interval / 60, "interval in minutes"),
        Column("retry_interval", "float", lambda r: r.obj.schedule.retry_interval / 60, "retry interval in minutes"),
        Column("next_check", "time", _next_check, "last check plus interval (the poller schedules it)"),
        Column("check_command", "string", _command, "command!arg1!arg2"),
        Column("check_period", "string", lambda r: r.obj.schedule.check_period or "", "time period of checks"),
        Column("notification_period", "string", lambda r: r.obj.notify.notification_period or "", ""),
        Column("active_checks_enabled", "int", lambda r: int(r.obj.schedule.active), "1: checked on a schedule"),
        Column("checks_enabled", "int", lambda r: int(r.obj.schedule.active), "same as active_checks_enabled"),
        Column("accept_passive_checks", "int", lambda r: 1, "always 1 (docs/passive.md)"),
        Column("acknowledged", "int", lambda r: int(r.event is not None and r.event.acknowledged),
               "1: its open problem is acknowledged"),
        Column("acknowledgement_type", "int", _ack_type, "0 none, 1 normal, 2 sticky"),
        Column("scheduled_downtime_depth", "int", lambda r: r.snap.downtime_depth(r.host.name, r.service),
               "downtimes in effect (a host's count on its services)"),
        Column("notifications_enabled", "int", _notifications, "0: turned off for it or its host"),
        Column("is_flapping", "int", lambda r: int(r.view is not None and r.view.flapping), ""),
        Column("flap_detection_enabled", "int", lambda r: int(r.obj.schedule.flap_detection), ""),
        Column("event_handler_enabled", "int", lambda r: int(r.obj.event_handler_enabled), ""),
        Column("is_executing", "int", lambda r: 0, "always 0"),
        Column("latency", "float", lambda r: 0.0, "not known at central: 0"),
        Column("execution_time", "float", lambda r: 0.0, "not known at central: 0"),
        Column("staleness", "float", _staleness, "time since the last check in intervals"),
        Column("in_check_period", "int", lambda r: 1, "always 1"),
        Column("in_notification_period", "int", lambda r: 1, "always 1"),
        Column("current_notification_number", "int", lambda r: r.event.rounds if r.event is not None else 0, ""),
        Column("last_notification", "time", lambda r: int(r.event.notified_at) if r.event is not None else 0, ""),
        Column("contacts", "list", lambda r: list(r.snap.contacts(r.obj)), "contacts, groups expanded"),
        Column("contact_groups", "list", lambda r: list(r.obj.notify.contact_groups), ""),
        Column("groups", "list", lambda r: list(r.obj.groups), "host groups / service groups"),
        Column("notes", "string", lambda r: r.obj.notes, ""),
        Column("notes_url", "string", lambda r: r.obj.runbook, "the runbook"),
        Column("action_url", "string", lambda r: "", ""),
        Column("icon_image", "string", lambda r: "", ""),
        Column("custom_variable_names", "list", lambda r: list(r.obj.vars), "vars:"),
        Column("custom_variable_values", "list", lambda r: list(r.obj.vars.values()), "vars:"),
        Column("custom_variables", "dict", lambda r: dict(r.obj.vars), "vars:"),
        Column("downtimes", "list", _downtimes, "IDs of its downtimes to come or in effect"),
        Column("downtimes_with_info", "list", _downtimes_info, "[id, author, comment]"),
        Column("comments", "list", _comments, "IDs of its comments"),
        Column("comments_with_info", "list", _comments_info, "[id, author, text]"),
        Column("notification_interval", "float", lambda r: r.obj.notify.notification_interval / 60, "minutes"),
        Column("first_notification_delay", "float", lambda r: r.obj.notify.first_notification_delay / 60,
               "minutes"),
        Column("low_flap_threshold", "float", lambda r: r.obj.schedule.low_flap_threshold, ""),
        Column("high_flap_threshold", "float", lambda r: r.obj.schedule.high_flap_threshold, ""),
        Column("check_freshness", "int", lambda r: int(r.obj.schedule.freshness_threshold is not None), ""),
        Column("freshness_threshold", "int", lambda r: int(r.obj.schedule.freshness_threshold or 0), "seconds"),
        Column("check_type", "int", lambda r: 0 if r.obj.schedule.active else 1, "0 active, 1 passive"),
        Column("process_performance_data", "int", lambda r: 1, "always 1"),
        Column("pending_flex_downtime", "int", _pending_flexible, "flexible downtimes waiting for a failure"),
        Column("percent_state_change", "float", lambda r: 0.0, "not kept: 0"),
        Column("modified_attributes", "int", lambda r: 0, "always 0"),
        Column("modified_attributes_list", "list", lambda r: [], "always empty"),
        Column("notes_expanded", "string", lambda r: r.obj.notes, ""),
        Column("notes_url_expanded", "string", lambda r: r.obj.runbook, ""),
        Column("action_url_expanded", "string", lambda r: "", ""),
        Column("icon_image_expanded", "string", lambda r: "", ""),
        Column("icon_image_alt", "string", lambda r: "", ""),
        Column("pnpgraph_present", "int", lambda r: 0, "always 0 (checkd's graphs: docs/graphs.md)"),
        Column("event_id", "int", lambda r: r.event.id if r.event is not None else 0, "checkd: its open event"),
        Column("polled_by", "string", _v("polled_by", ""), "checkd: who ran the last check"),
    ]
