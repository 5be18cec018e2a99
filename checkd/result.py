"""CheckResult: one run of one check, with its state, as spooled and sent to central.

The record format is the protocol's batch item (DESIGN.md), so the spool,
the forwarder and central's ingest all speak the same dict.
"""

from __future__ import annotations

import dataclasses
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
        return d


_FIELDS = tuple(f.name for f in dataclasses.fields(CheckResult))
