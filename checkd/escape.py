"""Control characters out of what reaches a log file or a terminal.

Plugin output, comments and host names come from outside: a newline in them would
forge a log line, an ESC sequence would drive the reader's terminal (retitle it,
hide text, fake a prompt). Both are shown as visible escapes (`\\n`, `\\x1b`) instead.
"""

from __future__ import annotations

import io
import logging
import re
from typing import TextIO

# C0 controls but the tab, DEL, C1 controls (0x85 is a line break to some readers), and
# Unicode's line and paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_NOT_NEWLINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _visible(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def control_chars(text: str) -> str:
    """`text` on one line, every control character (newlines too) shown as an escape."""
    return _CONTROL.sub(_visible, text)


def control_chars_but_newlines(text: str) -> str:
    """Like control_chars, keeping the newlines (several lines meant for a terminal)."""
    return _CONTROL_NOT_NEWLINE.sub(_visible, text)


class OneLineFormatter(logging.Formatter):
    """Each record's message on its own line, so no message can begin a line of its own:
    control characters are escaped, and what follows it (a traceback, or lines given as
    `extra={"detail": text}`) is indented."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = control_chars(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        more = [detail] if (detail := getattr(record, "detail", None)) else []
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            more.append(record.exc_text)
        if record.stack_info:
            more.append(self.formatStack(record.stack_info))
        for block in more:
            text += "".join("\n    " + control_chars(line) for line in block.splitlines())
        return text


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_stderr(level: str) -> None:
    """The daemons' and commands' logging: one line a record on stderr (journald keeps it)."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])


class TerminalSafe(io.TextIOBase):
    """A text stream that shows control characters as escapes (newlines and tabs stay):
    what a command prints of plugin output cannot drive the terminal."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(control_chars_but_newlines(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
