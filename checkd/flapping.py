"""Flap detection exactly as Nagios does it (base/flapping.c).

The last 21 states are kept; each of the 20 transitions between them counts
with a weight rising linearly from 0.75 (oldest) to 1.25 (newest). Flapping
starts above the high threshold and stops below the low one.
"""

from __future__ import annotations

HISTORY = 21
LOW_CURVE, HIGH_CURVE = 0.75, 1.25
_MASK = (1 << 2 * HISTORY) - 1


class FlapDetector:
    """The last HISTORY states of one check, packed into one int (2 bits per state, newest in
    the lowest bits): a deque per check held 60 MB at 100,000 checks (docs/benchmarks.md)."""

    __slots__ = ("_bits", "_count", "flapping")

    def __init__(self, states: list[int] | None = None, flapping: bool = False):
        self._bits, self._count = 0, 0
        self.flapping = flapping
        for status in (states or [])[-HISTORY:]:
            self._push(status)

    def _push(self, status: int) -> None:
        # Check states are 0-3 (hosts 0-2); anything else counts as UNKNOWN, as Nagios reads it.
        self._bits = ((self._bits << 2) | (status if 0 <= status <= 3 else 3)) & _MASK
        self._count = min(self._count + 1, HISTORY)

    @property
    def states(self) -> list[int]:
        """The kept states, oldest first."""
        return [(self._bits >> (2 * i)) & 3 for i in range(self._count - 1, -1, -1)]

    def percent_change(self) -> float:
        """Weighted percent of state changes over the history (0 with too little)."""
        if self._count < HISTORY:
            return 0.0
        states = self.states
        changes = 0.0
        for x in range(1, HISTORY):
            if states[x] != states[x - 1]:
                changes += (x - 1) * (HIGH_CURVE - LOW_CURVE) / (HISTORY - 2) + LOW_CURVE
        return changes * 100.0 / (HISTORY - 1)

    def record(self, status: int, low: float, high: float) -> bool:
        """Add a state; returns whether the check is flapping now."""
        self._push(status)
        pct = self.percent_change()
        if not self.flapping and pct > high:
            self.flapping = True
        elif self.flapping and pct < low:
            self.flapping = False
        return self.flapping
