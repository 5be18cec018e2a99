"""Deployments: the deploy hook mutes a rollout's hosts, and every finished one is a
marker on that host's graphs and in the change log.

(Being built: the deploy-hooks issue. `markers()` is the interface the graphs use.)
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Marker:
    """One deployment as a vertical line on a host's graphs: `r{revision} @{engineer}`."""

    ts: float                       # when it finished (or started, for one that never finished)
    hosts: tuple[str, ...]
    module: str
    revision: str
    engineer: str


class Deployments:
    def __init__(self) -> None:
        self.recorded: list[Marker] = []

    def markers(self, host: str, start: float, end: float) -> list[Marker]:
        """Deployments touching `host` within [start, end], oldest first."""
        return [m for m in self.recorded if host in m.hosts and start <= m.ts <= end]
