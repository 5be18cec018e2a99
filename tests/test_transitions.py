"""SOFT/HARD sequences follow the "State Types" table of the Nagios documentation."""

from __future__ import annotations

from checkd.flapping import FlapDetector
from checkd.states import StateType
from checkd.transitions import CheckState, advance, apply

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
SOFT, HARD = StateType.SOFT, StateType.HARD


def run_sequence(statuses: list[int], max_attempts: int) -> list[tuple[int, StateType, int, bool]]:
    state, out = CheckState(), []
    for i, status in enumerate(statuses):
        t = advance(state, status, max_attempts)
        apply(state, t, float(i))
        out.append((t.status, t.state_type, t.attempt, t.hard_change))
    return out


def test_the_nagios_documentation_table() -> None:
    # Nagios 4 docs, "State Types", example with max_check_attempts 3: time 1..10.
    got = run_sequence([CRITICAL, WARNING, CRITICAL, WARNING, WARNING, OK, OK, UNKNOWN, OK, OK], 3)
    assert got == [
        (CRITICAL, SOFT, 1, False),   # first detection of a non-OK state
        (WARNING, SOFT, 2, False),    # still non-OK
        (CRITICAL, HARD, 3, True),    # max attempts reached: HARD, notification
        (WARNING, HARD, 1, True),     # HARD -> HARD change: notification
        (WARNING, HARD, 1, False),    # stable HARD problem
        (OK, HARD, 1, True),          # HARD recovery
        (OK, HARD, 1, False),
        (UNKNOWN, SOFT, 1, False),    # SOFT problem
        (OK, SOFT, 2, False),         # SOFT recovery: no notification
        (OK, HARD, 1, False),         # stabilises HARD OK
    ]


def test_max_attempts_one_goes_hard_at_once() -> None:
    assert run_sequence([CRITICAL, OK], 1) == [(CRITICAL, HARD, 1, True), (OK, HARD, 1, True)]


def test_only_soft_problems_ask_for_retry_interval() -> None:
    state = CheckState()
    t1 = advance(state, CRITICAL, 3)
    apply(state, t1, 1.0)
    assert t1.retrying
    t2 = advance(state, OK, 3)
    assert not t2.retrying and t2.state_type is SOFT


def test_flap_detection_uses_nagios_weights() -> None:
    flap = FlapDetector()
    for i in range(21):
        flap.record(OK, 20, 30)
    assert flap.percent_change() == 0 and not flap.flapping
    for i in range(21):
        flapping = flap.record(CRITICAL if i % 2 else OK, 20, 30)
    assert flap.percent_change() == 100.0 and flapping
    # Changes only among the oldest states weigh less than the same number among the newest.
    old = FlapDetector([OK, CRITICAL] * 3 + [OK] * 15)
    new = FlapDetector([OK] * 15 + [CRITICAL, OK] * 3)
    assert old.percent_change() < new.percent_change()
    for _ in range(21):
        flap.record(OK, 20, 30)
    assert not flap.flapping
