"""An SMTP server in a process of its own, for the notification benchmarks.

    python bench/smtp_sink.py PORT LOGFILE

aiosmtpd on 127.0.0.1:PORT accepting every message; for each one it appends
`ARRIVAL<TAB>X-Checkd-Type<TAB>Subject` to LOGFILE (flushed per line; ARRIVAL is
time.time() as the message is accepted, before the 250 goes out) and reads no
more of it than those two header lines. It prints "ready" once it listens and
runs until SIGTERM.

Why its own process: a real MTA does not share an interpreter with the contact's
chat client and the poller that posts results. In bench/notify_latency.py all
three used to share one Python process (one GIL): at 1,000 mails and 1,000
chats a second its CPU was as high as central's, and a mail's time to the 250
included the wait behind the chat client.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from typing import Any, TextIO

from aiosmtpd.controller import Controller

HEADER = re.compile(rb"^(Subject|X-Checkd-Type): ?(.*)$", re.MULTILINE | re.IGNORECASE)


class Handler:
    def __init__(self, out: TextIO):
        self.out = out

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        head = content.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")
        fields = {k.lower(): v.decode(errors="replace").strip() for k, v in HEADER.findall(head)}
        self.out.write(f"{time.time():.6f}\t{fields.get(b'x-checkd-type', '')}\t{fields.get(b'subject', '')}\n")
        self.out.flush()
        return "250 OK"


def main() -> int:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "a", encoding="utf-8") as out:
        controller = Controller(Handler(out), hostname="127.0.0.1", port=port, ready_timeout=30)
        controller.start()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print("ready", flush=True)
        stop.wait()
        controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
