"""What an import could not carry over, each with the file:line it came from."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Item:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclasses.dataclass
class Report:
    items: list[Item] = dataclasses.field(default_factory=list)

    def add(self, file: str, line: int, message: str) -> None:
        self.items.append(Item(file, line, message))

    def text(self) -> str:
        lines = [str(i) for i in sorted(dict.fromkeys(self.items), key=lambda i: (i.file, i.line, i.message))]
        head = f"{len(lines)} thing(s) not carried over:" if lines else "everything was carried over"
        return "\n".join([head, *lines]) + "\n"
