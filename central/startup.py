"""How long each phase of central's start took, said in one INFO line once it answers
("start-up: 2.10 s in the process: config 0.90 s, ..."): an operator whose central
starts slowly sees where the time went, and bench/central_startup.py reads the line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StartupClock:
    """Phases in the order they ran; `mark(name)` ends the current one."""

    def __init__(self, now: float | None = None) -> None:
        self.began = time.perf_counter() if now is None else now
        self._last = self.began
        self.phases: dict[str, float] = {}
        self.notes: list[str] = []

    def mark(self, name: str) -> None:
        t = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + t - self._last
        self._last = t

    def add(self, timings: dict[str, float]) -> None:
        """Phases timed elsewhere (the store's load, in a thread) that just ended."""
        for name, secs in timings.items():
            self.phases[name] = self.phases.get(name, 0.0) + secs
        self._last = time.perf_counter()

    def note(self, text: str) -> None:
        """Said after the phases: work that ran alongside them."""
        self.notes.append(text)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._last = time.perf_counter()
        yield
        self.mark(name)

    def line(self) -> str:
        total = time.perf_counter() - self.began
        return (f"start-up: {total:.2f} s in the process: "
                + ", ".join(f"{name} {secs:.2f} s" for name, secs in self.phases.items())
                + "".join(f" ({n})" for n in self.notes))
