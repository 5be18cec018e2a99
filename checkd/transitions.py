"""SOFT and HARD states, attempts and retries, as the Nagios documentation defines them.

Given a check's current state and a new plugin status, `advance` returns what
the result reports and the state to keep. Follows the "State Types" table of
the Nagios 4 docs: a problem is SOFT until max_attempts, then HARD (the attempt
counter restarts at 1 after the HARD result is reported); a recovery from a
SOFT problem is a SOFT recovery, reported once, then the state is HARD OK.
"""

from __future__ import annotations

import dataclasses

from checkd.flapping import FlapDetector
from checkd.states import StateType

OK = 0  # Status.OK and HostStatus.UP share the value 0


@dataclasses.dataclass(slots=True)
class CheckState:
    """What the scheduler remembers about one check between runs."""

    status: int = OK
    state_type: StateType = StateType.HARD
    attempt: int = 1
    last_check: float = 0.0
    last_state_change: float = 0.0
    last_hard_state_change: float = 0.0
    output: str = ""
    flap: FlapDetector = dataclasses.field(default_factory=FlapDetector)


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    status: int
    state_type: StateType
    attempt: int               # as reported with this result
    state_change: bool         # status differs from the previous one
    hard_change: bool          # a HARD state began (problem, HARD->HARD change, or recovery)

    @property
    def retrying(self) -> bool:
        """True while a SOFT problem is being confirmed: next run at retry_interval."""
        return self.state_type is StateType.SOFT and self.status != OK

    @property
    def runs_handlers(self) -> bool:
        """Nagios runs event handlers on every SOFT result (each problem attempt and a soft
        recovery) and when a HARD state begins (problem, HARD->HARD change, recovery); never
        on a HARD state that stays the same."""
        return self.state_type is StateType.SOFT or self.hard_change


def advance(cur: CheckState, new: int, max_attempts: int) -> Transition:
    changed = new != cur.status
    if cur.state_type is StateType.HARD:
        if new == OK:
            return Transition(OK, StateType.HARD, 1, changed, changed)
        if cur.status == OK and max_attempts > 1:
            return Transition(new, StateType.SOFT, 1, True, False)
        return Transition(new, StateType.HARD, 1, changed, changed)
    # SOFT: a problem being confirmed
    attempt = cur.attempt + 1
    if new == OK:
        return Transition(OK, StateType.SOFT, attempt, True, False)   # soft recovery
    if attempt >= max_attempts:
        return Transition(new, StateType.HARD, attempt, changed, True)
    return Transition(new, StateType.SOFT, attempt, changed, False)


def passive_host(cur: CheckState, new: int) -> Transition:
    """A passive host result is HARD at once: Nagios' default (passive_host_checks_are_soft=0),
    since the sender has already decided the host is down."""
    changed = new != cur.status
    return Transition(new, StateType.HARD, 1, changed, changed)


def apply(cur: CheckState, t: Transition, now: float) -> None:
    """Keep the state after reporting `t`: HARD results and soft recoveries reset to attempt 1."""
    if t.state_change:
        cur.last_state_change = now
    if t.hard_change:
        cur.last_hard_state_change = now
    cur.status = t.status
    if t.state_type is StateType.HARD or t.status == OK:
        cur.state_type, cur.attempt = StateType.HARD, 1
    else:
        cur.state_type, cur.attempt = StateType.SOFT, t.attempt
    cur.last_check = now
