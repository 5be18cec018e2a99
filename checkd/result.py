"""CheckResult: one run of one check, with its state, from the plugin run to the store.

Its record (`to_record`) is the protocol's batch item (DESIGN.md): the spool and
the forwarder carry that dict on disk and on the wire, and central's validation
(central/validate.py `item`) turns it back into a CheckResult before the engine
sees it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from checkd.states import StateType

CheckKey = tuple[str, "str | None"]   # (host, service); service None for a host check


@dataclasses.dataclass(slots=True)
class CheckResult:
    """Treated as immutable (a change is `dataclasses.replace`), but not frozen: a frozen
    dataclass's __init__ costs ~1.9 us against ~0.2 us here, and central builds one per
    ingested result (at 50k results/s that was a quarter of ingest's time, measured)."""

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


_FIELDS = tuple(f.name for f in dataclasses.fields(CheckResult) if f.name != "event_id")
