"""Flap detection exactly as Nagios does it (base/flapping.c).

The last 21 states are kept; each of the 20 transitions between them counts
with a weight rising linearly from 0.75 (oldest) to 1.25 (newest). Flapping
starts above the high threshold and stops below the low one.
"""

from __future__ import annotations

import collections

HISTORY = 21
LOW_CURVE, HIGH_CURVE = 0.75, 1.25


class FlapDetector:
    def __init__(self, states: list[int] | None = None, flapping: bool = False):
        self.states: collections.deque[int] = collections.deque(states or [], maxlen=HISTORY)
        self.flapping = flapping

    def percent_change(self) -> float:
        """Weighted percent of state changes over the history (0 with too little)."""
        states = list(self.states)
        if len(states) < HISTORY:
            return 0.0
        changes = 0.0
        for x in range(1, HISTORY):
            if states[x] != states[x - 1]:
                changes += (x - 1) * (HIGH_CURVE - LOW_CURVE) / (HISTORY - 2) + LOW_CURVE
        return changes * 100.0 / (HISTORY - 1)

    def record(self, status: int, low: float, high: float) -> bool:
        """Add a state; returns whether the check is flapping now."""
        self.states.append(status)
        pct = self.percent_change()
        if not self.flapping and pct > high:
            self.flapping = True
        elif self.flapping and pct < low:
            self.flapping = False
        return self.flapping
