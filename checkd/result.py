"""CheckResult: one run of one check, with its state, from the plugin run to the store.

Its record (`to_record`, `from_record`) is the protocol's batch item (DESIGN.md):
the spool, the forwarder and central's ingest carry that dict on the wire and on
disk, and turn it back into a CheckResult before the engine sees it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from checkd.states import StateType

CheckKey = tuple[str, "str | None"]   # (host, service); service None for a host check


@dataclasses.dataclass(frozen=True, slots=True)
class CheckResult:
    host: str
    service: str | None
    status: int                 # service: Status; host: HostStatus
    state_type: StateType
    attempt: int
    output: str
    long_output: str
    perfdata: str
    scheduled: float            # wall clock: when the check was due
    started: float
    finished: float
    max_attempts: int = 1
    flapping: bool = False
    check_type: str = "active"  # active | forced (rescheduled) | freshness
    polled_by: str = ""
    event_id: int | None = None # the poller's event for this problem (its own alerting); central adopts it

    @property
    def key(self) -> CheckKey:
        return (self.host, self.service)

    @property
    def latency(self) -> float:
        return max(0.0, self.started - self.scheduled)

    def to_record(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies and costs more than the check itself.
        d = {name: getattr(self, name) for name in _FIELDS}
        d["state_type"] = self.state_type.value
        if self.event_id is not None:
            d["event_id"] = self.event_id
        return d

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> CheckResult:
        """A record back into a result: a batch item central/validate.py passed (the
        optional fields take their defaults), or one of central's own."""
        finished = r["finished"]
        scheduled, started, max_attempts = r.get("scheduled"), r.get("started"), r.get("max_attempts")
        return cls(r["host"], r.get("service"), r["status"], StateType(r["state_type"]), r["attempt"], r["output"],
                   r.get("long_output") or "", r.get("perfdata") or "",
                   finished if scheduled is None else scheduled, finished if started is None else started,
                   finished, max_attempts if type(max_attempts) is int else 1, bool(r.get("flapping")),
                   r.get("check_type") or "active", r.get("polled_by") or "", r.get("event_id"))


_FIELDS = tuple(f.name for f in dataclasses.fields(CheckResult) if f.name != "event_id")
