"""Immutable configuration objects, as every other module sees them.

Built and validated by checkd.config.objects; nothing here parses YAML.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from checkd.config.scope import CheckScope
    from checkd.config.weathermaps import WeatherMap

from checkd.result import CheckKey


@dataclasses.dataclass(frozen=True, slots=True)
class Where:
    """Where an object was defined, for messages that point at the config."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class CommandKind(enum.Enum):
    EXEC = "exec"          # fork/exec on the polling node
    EMBEDDED = "embedded"  # a Python plugin run inside the polling node
    SSH = "ssh"            # a command line run on the monitored host over SSH


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    name: str
    kind: CommandKind
    line: str = ""                  # exec and ssh: command line with macros
    plugin: str = ""                # embedded: plugin name in the plugin directory
    args: tuple[str, ...] = ()      # embedded: argument templates with macros
    timeout: float | None = None
    where: Where = Where("?", 0)


@dataclasses.dataclass(frozen=True, slots=True)
class CheckSpec:
    """A call of a command: `check_tcp!3306` is Command check_tcp with ARG1=3306."""

    command: Command
    args: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class SSHSettings:
    user: str = "checkd"
    port: int = 22
    key: str | None = None              # private key file; agent/default keys otherwise
    known_hosts: str | None = None      # None: ~/.ssh/known_hosts; "none" is refused by config
    connect_timeout: float = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    """Nagios' scheduling knobs, shared by hosts and services."""

    interval: float = 300.0
    retry_interval: float = 60.0
    max_attempts: int = 3
    timeout: float = 60.0
    check_period: str | None = None
    active: bool = True
    freshness_threshold: float | None = None
    freshness_state: int | None = None      # stale: store this state (None: run the command)
    freshness_output: str = ""              # its text, before "no result for 15m (freshness threshold 10m)"
    flap_detection: bool = True
    low_flap_threshold: float = 20.0
    high_flap_threshold: float = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class Escalation:
    """Who else hears about a problem still unacknowledged `after` seconds in.

    Level 1 is the object's own contacts; an object's escalations are levels
    2, 3, ... in rising `after` order.
    """

    after: float
    contacts: tuple[str, ...] = ()
    contact_groups: tuple[str, ...] = ()
    every: float | None = None              # re-notify interval; None: the object's notification_interval
    period: str | None = None               # timeperiod when this level notifies; None: always
    where: Where = Where("?", 0)


@dataclasses.dataclass(frozen=True, slots=True)
class Notify:
    """Who hears about an object and how often."""

    contacts: tuple[str, ...] = ()
    contact_groups: tuple[str, ...] = ()
    notification_interval: float = 0.0      # 0: notify a problem once
    notification_period: str | None = None
    notifications_enabled: bool = True
    escalations: tuple[Escalation, ...] = ()
    first_notification_delay: float = 0.0   # the first problem notification waits this long after it began


class SiteRule(enum.Enum):
    """What put a host in its site (checkd.config.sites; `check-config --sites` shows it)."""

    EXPLICIT = "site:"                  # the host (or a template it uses) says so
    DOMAIN = "domain"                   # its name is in a domain listed under the site's `domains:`
    LAST_LABEL = "last label"           # a HOST.SITE name


@dataclasses.dataclass(frozen=True, slots=True)
class Host:
    name: str
    address: str
    site: str
    alias: str = ""
    parents: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    check: CheckSpec | None = None          # None: no host check, always UP
    schedule: Schedule = Schedule()
    notify: Notify = Notify()
    notes: str = ""
    runbook: str = ""
    vars: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ssh: SSHSettings | None = None
    where: Where = Where("?", 0)
    site_rule: SiteRule = SiteRule.EXPLICIT
    event_handler: CheckSpec | None = None  # run on state changes (checkd.event_handlers)
    event_handler_enabled: bool = True      # false: no handler at all, the node's global one neither


@dataclasses.dataclass(frozen=True, slots=True)
class Service:
    host: str
    description: str
    check: CheckSpec
    schedule: Schedule = Schedule()
    notify: Notify = Notify()
    graph: bool = True                      # perfdata goes to RRD files (when central has rrd:)
    groups: tuple[str, ...] = ()
    notes: str = ""
    runbook: str = ""
    vars: Mapping[str, str] = dataclasses.field(default_factory=dict)
    where: Where = Where("?", 0)
    event_handler: CheckSpec | None = None
    event_handler_enabled: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return (self.host, self.description)


@dataclasses.dataclass(frozen=True, slots=True)
class Dependency:
    """`dependent` depends on `master` (Nagios' servicedependency / hostdependency).

    While the master is in one of `notification_failure` the dependent's problems are
    not told; in one of `execution_failure` its scheduled checks do not run. States are
    the lower-case names of the master's states ("critical", "down") or "pending".
    """

    master: CheckKey
    dependent: CheckKey
    notification_failure: frozenset[str] = frozenset()
    execution_failure: frozenset[str] = frozenset()
    inherits_parent: bool = False           # also fails while a dependency of the master fails
    period: str | None = None               # when the dependency applies; None: always
    where: Where = Where("?", 0)


@dataclasses.dataclass(frozen=True, slots=True)
class Contact:
    name: str
    email: str = ""
    jabber: str = ""
    alias: str = ""
    groups: tuple[str, ...] = ()
    notification_period: str | None = None
    service_states: frozenset[str] = frozenset({"warning", "critical", "unknown", "recovery", "flapping", "downtime"})
    host_states: frozenset[str] = frozenset({"down", "unreachable", "recovery", "flapping", "downtime"})
    webhook: str = ""                       # http(s) URL that receives notifications as JSON
    webhook_template: str = ""              # a `webhook: {templates:}` name: the JSON body's shape
    pagerduty: str = ""                     # a `pagerduty: {services:}` name (its routing key)
    opsgenie: str = ""                      # an `opsgenie: {teams:}` name (its API key)
    slack: str = ""                         # a `slack: {webhooks:}` name, or a channel for the bot
    where: Where = Where("?", 0)


@dataclasses.dataclass(frozen=True, slots=True)
class Group:
    """A host group or contact group: a name and its members."""

    name: str
    members: tuple[str, ...] = ()
    alias: str = ""
    where: Where = Where("?", 0)


Ranges = tuple[tuple[int, int], ...]     # [start, end) minutes of the day; end 1440 is midnight


@dataclasses.dataclass(frozen=True, slots=True)
class TimePeriod:
    """Weekday ranges (0=Monday) and date exceptions, in minutes of the day.

    An exception that matches a day replaces that day's weekday ranges (empty
    ranges: not active that day). When several match, the most specific kind
    wins: `exceptions` (one date) over `date_ranges` over `yearly` over `monthly`
    (Nagios' `day 1`, `day -1`, `monday 1`, `friday -1`); matches of the same kind
    add up. Evaluated by checkd.timeperiods.
    """

    name: str
    alias: str = ""
    weekdays: Mapping[int, Ranges] = dataclasses.field(default_factory=dict)
    exceptions: Mapping[str, Ranges] = dataclasses.field(default_factory=dict)  # "2026-12-25"
    exclude: tuple[str, ...] = ()
    where: Where = Where("?", 0)
    date_ranges: tuple[tuple[str, str, Ranges], ...] = ()   # ("2026-12-24", "2026-12-31", ranges), inclusive
    yearly: Mapping[tuple[int, int], Ranges] = dataclasses.field(default_factory=dict)  # (12, 25): december 25
    # (weekday 0-6, or 7 for `day N`; N from 1, or from -1 counting back from the month's end)
    monthly: Mapping[tuple[int, int], Ranges] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Site:
    name: str
    stale_after: float | None = None        # None: the node's default
    where: Where = Where("?", 0)
    domains: tuple[str, ...] = ()           # DNS domains whose hosts are in this site, lower case


@dataclasses.dataclass(frozen=True, slots=True)
class RecurringDowntime:
    """A downtime that comes back (`downtimes:` in the objects, or made through the API):
    in effect in each window of `period`, for what `scope` covers then; with `duration`,
    flexible within each window (checkd/engine/recurring.py)."""

    name: str
    scope: CheckScope
    period: TimePeriod                      # its own ranges, or the named timeperiod's
    comment: str = ""
    author: str = "schedule"
    duration: float | None = None          # flexible: lasts this long from the first failure in a window
    where: Where = Where("?", 0)


@dataclasses.dataclass(frozen=True)
class Objects:
    """The whole object configuration shared by central and every poller."""

    hosts: Mapping[str, Host]
    services: Mapping[tuple[str, str], Service]
    commands: Mapping[str, Command]
    contacts: Mapping[str, Contact]
    contact_groups: Mapping[str, Group]
    host_groups: Mapping[str, Group]
    timeperiods: Mapping[str, TimePeriod]
    sites: Mapping[str, Site]
    macros: Mapping[str, str]               # $USER1$-style resource macros, $PLUGINDIR$
    directory: str = ""
    downtimes: Mapping[str, RecurringDowntime] = dataclasses.field(default_factory=dict)
    dependencies: Mapping[CheckKey, tuple[Dependency, ...]] = dataclasses.field(default_factory=dict)  # by dependent
    weathermaps: Mapping[str, WeatherMap] = dataclasses.field(default_factory=dict)   # central draws them

    def services_of_site(self, site: str) -> list[Service]:
        return [s for s in self.services.values() if self.hosts[s.host].site == site]

    def hosts_of_site(self, site: str) -> list[Host]:
        return [h for h in self.hosts.values() if h.site == site]
