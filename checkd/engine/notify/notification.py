"""Notification: one message about one event to one contact on one channel.

Immutable; the subject line is the contract operators' mail filters and
phones rely on: `host/Service Description CRITICAL [ID#:367768]`.
"""

from __future__ import annotations

import dataclasses
import enum


SUBJECT_IDS = 20           # event IDs named in a SUMMARY subject


class Kind(enum.Enum):
    PROBLEM = "PROBLEM"
    RECOVERY = "RECOVERY"
    ACKNOWLEDGEMENT = "ACKNOWLEDGEMENT"
    ESCALATION = "ESCALATION"
    FLAPPINGSTART = "FLAPPINGSTART"
    FLAPPINGSTOP = "FLAPPINGSTOP"
    DOWNTIMESTART = "DOWNTIMESTART"
    DOWNTIMEEND = "DOWNTIMEEND"                 # a scheduled downtime ran to its end
    DOWNTIMECANCELLED = "DOWNTIMECANCELLED"     # ... or was deleted while in effect
    SUMMARY = "SUMMARY"          # storm control: several events in one message


DOWNTIME_KINDS = frozenset({Kind.DOWNTIMESTART, Kind.DOWNTIMEEND, Kind.DOWNTIMECANCELLED})


class Channel(enum.Enum):
    EMAIL = "email"
    JABBER = "jabber"
    WEBHOOK = "webhook"
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    SLACK = "slack"


class DeliveryError(Exception):
    """A channel could not deliver; `retryable` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    event_id: int
    kind: Kind
    host: str
    service: str | None          # None: a host notification
    state: str                   # CRITICAL, WARNING, UNKNOWN, OK, DOWN, UP, UNREACHABLE
    site: str
    output: str
    contact: str
    channel: Channel
    address: str                 # email address, bare JID, webhook URL, or a pagerduty/opsgenie/slack name
    since: float                 # when the problem began (Unix time)
    created: float               # when this notification was decided
    long_output: str = ""
    escalation_level: int = 1
    author: str = ""             # acknowledgements
    comment: str = ""
    runbook: str = ""
    notes: str = ""
    via: str = "central"         # who sends it: "central" or "ladc1 poller, central unreachable"
    summary_ids: tuple[int, ...] = ()   # SUMMARY: the events it stands for
    graph_png: bytes | None = None      # the metric's trend, once graphs exist
    log_id: int = 0                     # its notification_log row (0: not logged, e.g. a test)
    downtime_id: int = 0                # DOWNTIME*: the downtime it is about
    until: float = 0.0                  # DOWNTIME*: the downtime's scheduled end (Unix time)
    template: str = ""                  # WEBHOOK: the contact's webhook_template ("" : the fixed JSON)

    @property
    def dedup_key(self) -> str:
        """The key PagerDuty and Opsgenie meet one event's notifications under (docs/integrations.md)."""
        return f"checkd-{self.event_id}"

    @property
    def target(self) -> str:
        return self.host if self.service is None else f"{self.host}/{self.service}"

    @property
    def label(self) -> str:
        """The one word mail filters colour by (docs/notifications.md): the state of a problem
        or escalation (CRITICAL, WARNING, DOWN, ...), else the kind (RECOVERY, ACKNOWLEDGEMENT,
        FLAPPINGSTART, DOWNTIMESTART, SUMMARY, ...)."""
        if self.kind in (Kind.PROBLEM, Kind.ESCALATION) and self.state:
            return self.state
        return self.kind.value

    @property
    def subject(self) -> str:
        """`host/Service CRITICAL [ID#:367768]`, with RECOVERY/ACKNOWLEDGEMENT/ESCALATION/... prefixes;
        `DOWNTIMESTART host/Service OK` for a downtime notice on a check without an open problem."""
        # A downtime notice is about a check, which may have no open problem (event 0).
        ident = "" if self.event_id == 0 and self.kind in DOWNTIME_KINDS else f" [ID#:{self.event_id}]"
        base = f"{self.target} {self.state}{ident}"
        if self.kind is Kind.PROBLEM:
            return base
        if self.kind is Kind.SUMMARY:
            # Short enough for one header line and a phone screen; the body lists every ID.
            ids = ",".join(map(str, self.summary_ids[:SUBJECT_IDS]))
            more = len(self.summary_ids) - SUBJECT_IDS
            return f"SUMMARY {len(self.summary_ids)} problems [ID#:{ids}{f',+{more} more' if more > 0 else ''}]"
        return f"{self.kind.value} {base}"
