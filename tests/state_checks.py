"""Objects whose checks read their state from a file the test writes (0-3 in
{dir}/repl and {dir}/backup): real processes, real plugin runs, states on demand.
Their perfdata is the state, so a central with `rrd:` graphs every result.
`Site` runs them: a central process, the ladc1 poller (alerting on its own by
email when central is gone), the state files and the mailbox."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.central_proc import CentralProc, start_poller, write_config
from tests.helpers import require_plugins
from tests.notify_env import MailSink, node_extra

OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/$ARG1$; echo \\"state $s at $(date +%s.%N) | state=$s\\"; exit $s'"
contacts:
  - {{name: ops, email: ops@example.com}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, contacts: [ops]}}
services:
  - {{host: db1.ladc1, description: Replication, command: "from_file!repl", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops]}}
  - {{host: db1.ladc1, description: Backup, command: "from_file!backup", interval: 0.5s, retry_interval: 2s,
     max_attempts: 3, contacts: [ops]}}
"""
STALE = 3.0                     # site_stale_after in these tests: above the poller's reconnect bound (1.3 s)
AUTONOMY = 1.0


class Site:
    """Central (its config rewritable between starts), the ladc1 poller alerting on its own
    by email, the state files its checks read (`files`, all OK at first), and the mailbox.
    `objects` is a template like OBJECTS ({dir}: the state files' directory)."""

    def __init__(self, tmp: Path, sink: MailSink, objects: str = OBJECTS, files: tuple[str, ...] = ("repl", "backup")):
        self.tmp, self.sink = tmp, sink
        self.states = tmp / "states"
        self.states.mkdir()
        for name in files:
            self.set(name, 0)
        self.objects = objects.format(dir=self.states)
        self.central = CentralProc(tmp, objects=self.objects, extra=self.extra())
        self.poller: subprocess.Popen[bytes] | None = None

    def extra(self, freshness: str = f"site_stale_after: {STALE:g}s, start_grace: 0s") -> str:
        return node_extra(self.sink.port) + f"  freshness: {{{freshness}, contacts: [ops]}}\n"

    def configure(self, freshness: str) -> None:
        write_config(self.tmp, self.central.port, objects=self.objects, extra=self.extra(freshness))

    def set(self, name: str, status: int) -> None:
        (self.states / name).write_text(f"{status}\n")

    def start_poller(self) -> None:
        self.poller = start_poller(self.tmp, self.central.url, extra=(
            f"  autonomy_after: {AUTONOMY:g}s\n"
            f"  email: {{smtp_host: 127.0.0.1, smtp_port: {self.sink.port}, from: checkd-ladc1@example.com}}\n"))

    def poller_log(self) -> str:
        return (self.tmp / "poller.log").read_text()

    def problems(self, service: str) -> list[int]:
        return [p["id"] for p in self.central.get("/api/v1/problems")["problems"] if p["service"] == service]

    def mails(self, kind: str, service: str = "Replication", start: int = 0) -> list[Any]:
        return [m for m in self.sink.messages[start:] if m["X-Checkd-Type"] == kind and service in m["Subject"]]

    def takeovers(self) -> int:
        return self.central.log.read_text().count("takeover: no word from")

    def stop(self) -> None:
        if self.poller is not None and self.poller.poll() is None:
            self.poller.terminate()
            self.poller.wait(timeout=30)
        self.central.stop()


def running_site(tmp: Path, **kw: Any) -> Iterator[Site]:
    """A fixture's body: the mailbox and a Site (not started), stopped after the test."""
    require_plugins()
    sink = MailSink()
    sink.start()
    s = Site(tmp, sink, **kw)
    try:
        yield s
    finally:
        s.stop()
        sink.stop()
