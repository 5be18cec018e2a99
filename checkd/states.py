"""States of checks, as the Nagios plugin API defines them.

Plugins exit with a Status; host checks map that to a HostStatus; the state
machine adds a StateType. Enums, never bare strings, so a typo fails loudly.
"""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """A service check's state, equal to the plugin's exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @classmethod
    def from_exit_code(cls, code: int) -> Status:
        """Exit codes outside 0-3 mean the plugin broke: UNKNOWN, as in Nagios."""
        return cls(code) if 0 <= code <= 3 else cls.UNKNOWN

    @property
    def severity(self) -> int:
        """Order for "worst first" lists: CRITICAL > UNKNOWN > WARNING > OK."""
        return _SEVERITY[self]


_SEVERITY = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}


def worst(states: list[Status]) -> Status:
    """The worst of several states (OK for none)."""
    return max(states, key=lambda s: s.severity, default=Status.OK)


class HostStatus(enum.IntEnum):
    """A host's state. UNREACHABLE is decided from parents, never by a plugin."""

    UP = 0
    DOWN = 1
    UNREACHABLE = 2

    @classmethod
    def from_plugin(cls, status: Status) -> HostStatus:
        """Nagios without aggressive host checking: OK and WARNING are UP."""
        return cls.UP if status in (Status.OK, Status.WARNING) else cls.DOWN


class StateType(enum.Enum):
    """The soft/hard rules live here; transitions.py decides the type of a new result."""
    SOFT = "SOFT"
    HARD = "HARD"


def is_retrying(status: int, state_type: StateType) -> bool:
    """A problem not confirmed yet: the check runs again at its retry interval."""
    return state_type is StateType.SOFT and status != 0


def settled_type(status: int, state_type: StateType) -> StateType:
    """An OK result is HARD whatever it was recorded as (a recovery is never soft)."""
    return StateType.HARD if status == 0 else state_type


def state_name(service: str | None, status: int) -> str:
    """"CRITICAL", "DOWN"...: a host check (service None) has host states. A number no
    state has is shown as the number (a log row from a newer checkd, say), never an error."""
    try:
        return (HostStatus(status) if service is None else Status(status)).name
    except ValueError:
        return str(status)
