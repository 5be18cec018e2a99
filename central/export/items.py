"""What the exporter sends: one perfdata value of a stored result, or one deployment
marker. Immutable, small, made on the ingest path (so nothing here waits)."""

from __future__ import annotations

import dataclasses
from typing import Union


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One perfdata value: `label=value[unit]` of HOST/SERVICE at the result's time."""

    host: str
    service: str
    label: str
    unit: str
    value: float
    ts: float                   # when the check finished (Unix seconds)


@dataclasses.dataclass(frozen=True, slots=True)
class Mark:
    """A deployment touching `host`: a start, finish or abort, at `ts`; Grafana draws
    these as annotations (docs/metrics-export.md, "Grafana")."""

    host: str
    module: str
    revision: str
    engineer: str
    phase: str                  # start, finish, abort
    ts: float


Item = Union[Sample, Mark]
