"""What an import could not carry over, each with the file:line it came from."""

from __future__ import annotations

import dataclasses

from checkd.config.errors import Problem


@dataclasses.dataclass
class Report:
    items: list[Problem] = dataclasses.field(default_factory=list)

    def add(self, file: str, line: int, message: str) -> None:
        self.items.append(Problem(file, line, message))

    def text(self) -> str:
        lines = [str(i) for i in sorted(set(self.items))]
        head = f"{len(lines)} thing(s) not carried over:" if lines else "everything was carried over"
        return "\n".join([head, *lines]) + "\n"
