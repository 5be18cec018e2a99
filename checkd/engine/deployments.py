"""Deployments: the deploy hook mutes a rollout's hosts, and every deployment is a
marker on every graph (its own hosts' set apart) and a line in the change log.

`start` mutes notifications for the hosts and their services (checks still run
and are recorded) until `finish`, `abort` or expiry (`mute_for`, default 30 m,
so a rollout that dies never leaves hosts muted for ever). When the mute ends,
a problem that began during it and is still there is notified once (the
notifier's held-problem rule). Calls are idempotent: a retried `start` returns
the running deployment, a retried `finish` the finished one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from typing import Any

from checkd.engine.db import Op

log = logging.getLogger(__name__)

DEFAULT_MUTE = 1800.0
MAX_MUTE = 7 * 86400.0
SUMMARY_MAX = 4000              # characters of a commit message kept (the graphs show its first line)
UPSERT = "INSERT OR REPLACE INTO deployments VALUES (?,?,?,?,?,?,?,?,?,?)"
RUNNING, FINISHED, ABORTED, EXPIRED = "running", "finished", "aborted", "expired"


def headline(summary: str, limit: int = 72) -> str:
    """A summary's first line, printable characters only, at most `limit` of them (`…` where
    cut): what graph legends, comments and lists show of a commit message."""
    line = "".join(ch for ch in summary.strip().split("\n", 1)[0] if ch.isprintable()).strip()
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"


class DeployError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(slots=True)
class Deployment:
    id: str
    hosts: tuple[str, ...]
    module: str
    revision: str
    engineer: str
    started: float
    expires: float
    finished: float | None = None
    result: str = RUNNING
    summary: str = ""               # what the rollout brings: the commit message, as the hook sent it

    def row(self) -> tuple[Any, ...]:
        return (self.id, json.dumps(list(self.hosts)), self.module, self.revision, self.engineer, self.started,
                self.expires, self.finished, self.result, self.summary)

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> Deployment:
        return cls(r[0], tuple(json.loads(r[1])), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])

    def mutes(self, host: str, now: float) -> bool:
        return self.result == RUNNING and now < self.expires and host in self.hosts

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "hosts": list(self.hosts), "module": self.module, "revision": self.revision,
                "engineer": self.engineer, "summary": self.summary, "started": self.started,
                "expires": self.expires, "finished": self.finished, "result": self.result}


@dataclasses.dataclass(frozen=True, slots=True)
class Marker:
    """One deployment as a vertical line on the graphs: `r{revision} @{engineer}`."""

    ts: float                       # when it finished (or started, for one that did not finish)
    hosts: tuple[str, ...]
    module: str
    revision: str
    engineer: str
    result: str = FINISHED
    summary: str = ""


class Deployments:
    def __init__(self) -> None:
        self.all: dict[str, Deployment] = {}
        self.running: dict[str, Deployment] = {}

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        for r in rows:
            d = Deployment.from_row(r)
            self.all[d.id] = d
            if d.result == RUNNING:
                self.running[d.id] = d

    def muted(self, host: str, now: float) -> Deployment | None:
        """The rollout muting `host` now, if any."""
        for d in self.running.values():
            if d.mutes(host, now):
                return d
        return None

    # --- the hook's three calls ---------------------------------------------------------

    def start(self, hosts: tuple[str, ...], module: str, revision: str, engineer: str, mute_for: float,
              did: str | None, now: float, summary: str = "") -> tuple[Deployment, list[Op], bool]:
        """The deployment (new or, for a retried call, the running one), its ops, and whether it is
        new; a new one mutes only once `add`ed, after its commit."""
        if did is not None and did in self.all:
            d = self.all[did]
            if (d.hosts, d.module, d.revision) != (hosts, module, revision):
                raise DeployError(f"deployment {did!r} exists with other hosts, module or revision", 409)
            return d, [], False
        for d in self.running.values():
            if (d.hosts, d.module, d.revision, d.engineer) == (hosts, module, revision, engineer):
                return d, [], False             # the hook retried a start whose answer it lost
        d = Deployment(did or uuid.uuid4().hex[:12], hosts, module, revision, engineer, now,
                       now + min(mute_for, MAX_MUTE), summary=summary[:SUMMARY_MAX])
        return d, [(UPSERT, [d.row()])], True

    def add(self, d: Deployment) -> None:
        """A started deployment, stored: it mutes its hosts from now on."""
        self.all[d.id] = self.running[d.id] = d
        log.info("deployment %s started: %s r%s by %s on %s, notifications muted until %s", d.id, d.module,
                 d.revision, d.engineer, ", ".join(d.hosts), time.strftime("%H:%M:%S", time.localtime(d.expires)))

    def end(self, did: str, result: str, now: float) -> tuple[Deployment, list[Op]]:
        d = self.all.get(did)
        if d is None:
            raise DeployError(f"no deployment {did!r}", 404)
        if d.result != RUNNING:
            if d.result == result:
                return d, []                    # a retried finish/abort
            raise DeployError(f"deployment {did!r} is already {d.result}", 409)
        d.result, d.finished = result, now
        self.running.pop(did, None)
        log.info("deployment %s %s: %s r%s by %s on %s", did, result, d.module, d.revision, d.engineer,
                 ", ".join(d.hosts))
        return d, [(UPSERT, [d.row()])]

    def expire(self, now: float) -> list[Op]:
        """Rollouts past their mute: unmuted, recorded as unfinished."""
        ops: list[Op] = []
        for d in [d for d in self.running.values() if now >= d.expires]:
            d.result = EXPIRED
            del self.running[d.id]
            ops.append((UPSERT, [d.row()]))
            log.warning("deployment %s (%s r%s by %s on %s) never finished: its mute expired, notifications "
                        "are on again", d.id, d.module, d.revision, d.engineer, ", ".join(d.hosts))
        return ops

    # --- reading ------------------------------------------------------------------------

    def log(self, host: str | None = None, since: float | None = None,
            module: str | None = None, until: float | None = None) -> list[Deployment]:
        """The change log, newest first: deployments started within [since, until]."""
        out = [d for d in self.all.values()
               if (host is None or host in d.hosts) and (since is None or d.started >= since)
               and (until is None or d.started <= until) and (module is None or d.module == module)]
        return sorted(out, key=lambda d: d.started, reverse=True)

    def markers(self, start: float, end: float, host: str | None = None) -> list[Marker]:
        """Deployments within [start, end] (only those touching `host`, if given), oldest
        first: the graphs' vertical lines."""
        out = []
        for d in self.all.values():
            ts = d.finished if d.finished is not None and d.result == FINISHED else d.started
            if (host is None or host in d.hosts) and start <= ts <= end:
                out.append(Marker(ts, d.hosts, d.module, d.revision, d.engineer, d.result, d.summary))
        return sorted(out, key=lambda m: m.ts)
