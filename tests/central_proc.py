"""A real `python -m checkd central` process for tests: a generated config in a
temp dir, a free port on 127.0.0.1, wait until it answers, stop it by PID."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.helpers import REPO, free_port

POLLER_TOKENS = {"poller-ladc1": ("tok-ladc1", "ladc1"), "poller-nydc1": ("tok-nydc1", "nydc1")}
API_TOKEN = "ops-secret"

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: web2.nydc1, address: 127.0.0.1, site: nydc1}
services:
  - {hosts: [db1.ladc1, web1.ladc1, web2.nydc1], description: Disk /, command: "check_dummy!0!ok"}
  - {host: db1.ladc1, description: Mysql Health Slave Check, command: "check_dummy!0!ok"}
"""



def poller_node(directory: Path, central_url: str, name: str = "poller-ladc1", stem: str = "poller",
                extra: str = "") -> Path:
    """A poller's node file beside a CentralProc's objects: its token and site, its own
    state directory (state-<stem>), fast heartbeats, and `extra` lines of the poller section."""
    token, site = POLLER_TOKENS[name]
    node = directory / f"{stem}.yaml"
    node.write_text(f"poller:\n  name: {name}\n  site: {site}\n  central: {central_url}\n  token: {token}\n"
                    f"  state_dir: state-{stem}\n  objects: objects\n  heartbeat_interval: 0.3s\n{extra}")
    return node


def start_poller(directory: Path, central_url: str, name: str = "poller-ladc1", stem: str = "poller",
                 extra: str = "", env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A real `checkd poller` process (poller_node); its output goes to <stem>.log.
    The caller stops it (terminate, then wait)."""
    node = poller_node(directory, central_url, name, stem, extra)
    with open(directory / f"{stem}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "checkd", "poller", "-c", str(node)], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def write_config(directory: Path, port: int, objects: str = OBJECTS, max_body: int = 1 << 20,
                 extra: str = "") -> Path:
    (directory / "objects").mkdir(parents=True, exist_ok=True)
    (directory / "objects" / "objects.yaml").write_text(objects)
    pollers = "\n".join(f"    {n}: {{token: {t}, site: {s}}}" for n, (t, s) in POLLER_TOKENS.items())
    node = directory / "central.yaml"
    if "freshness:" not in extra:
        # Tests that post results by hand leave the sites silent: no takeover unless a test asks for it
        # (a site's own stale_after in the objects does), and then without the start grace.
        extra += "  freshness: {site_stale_after: 1h, start_grace: 0s}\n"
    node.write_text(f"central:\n  listen: 127.0.0.1:{port}\n  state_dir: state\n  objects: objects\n"
                    f"  max_body: {max_body}\n  pollers:\n{pollers}\n  api_tokens: {{ops: {API_TOKEN}}}\n{extra}")
    return node


class CentralProc:
    """`with CentralProc(tmp_path) as c:` runs central; `c.restart(kill=True)` kill -9s and starts again."""

    def __init__(self, directory: Path, **config: Any):
        self.dir = directory
        self.port = free_port()
        self.config = write_config(directory, self.port, **config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.ssl_context: Any = None   # set with an https url for a central with tls:
        self.log = directory / "central.log"

    def start(self, timeout: float = 20.0, standby: bool = False) -> None:
        """Start and wait until it answers: as the active central, or `standby` (503, naming
        the active one: two centrals on one PostgreSQL, docs/ha.md)."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "checkd", "central", "-c", str(self.config)],
                                         cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"central exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                urllib.request.urlopen(f"{self.url}/api/v1/problems", timeout=1, context=self.ssl_context).read()
                if not standby:
                    return
            except urllib.error.HTTPError as e:
                if (standby and e.code == 503) or (not standby and e.code == 401):
                    return          # 401: reads need a token (web: {read: login}); it answers

                time.sleep(0.05)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"central did not answer within {timeout}s:\n{self.log.read_text()}")

    def stop(self, kill: bool = False) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        rc, self.proc = self.proc.returncode, None
        return rc

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def __enter__(self) -> CentralProc:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- a small synchronous client (urllib: no extra test dependencies) ---

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ssl_context) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            payload = e.read()
            try:
                return e.code, json.loads(payload)
            except ValueError:
                return e.code, payload.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, doc = self.call("GET", path)
        assert status == 200, (status, doc)
        return doc

    def post_results(self, poller: str, batch: list[dict[str, Any]], token: str | None = None,
                     site: str | None = None) -> tuple[int, Any]:
        tok, psite = POLLER_TOKENS[poller]
        return self.call("POST", "/api/v1/results", {"poller": poller, "site": site or psite, "batch": batch},
                         token=token or tok)

    def write(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.call(method, path, body, token=API_TOKEN)


@contextlib.asynccontextmanager
async def running(c: CentralProc) -> AsyncIterator[CentralProc]:
    """`async with running(c)`: central started and stopped off the event loop, so the
    clients on that loop (a Jabber phone) are served while it starts and stops."""
    await asyncio.to_thread(c.start)
    try:
        yield c
    finally:
        await asyncio.to_thread(c.stop)


def result(seq: int, host: str, service: str | None, status: int, output: str = "out",
           state_type: str = "HARD", attempt: int = 1, finished: float | None = None, **extra: Any) -> dict[str, Any]:
    t = time.time() if finished is None else finished
    return {"seq": seq, "host": host, "service": service, "status": status, "state_type": state_type,
            "attempt": attempt, "output": output, "long_output": "", "perfdata": "", "scheduled": t - 1,
            "started": t - 0.5, "finished": t, **extra}
