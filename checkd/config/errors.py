"""The one exception of the configuration boundary, carrying every problem found."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(Exception):
    """The configuration is unusable; `problems` says where and how to fix it."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(map(str, self.problems)))


class Problems:
    """Collects problems so that one run reports all of them, not just the first."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, file: str, line: int, message: str) -> None:
        self.items.append(Problem(file, line, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a close match exists, else ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""
