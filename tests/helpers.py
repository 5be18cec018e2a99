"""Small helpers shared by tests: where real components live, and the CI rule
that a missing component fails a test instead of skipping it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

PLUGINDIR = "/usr/lib/nagios/plugins"
REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Skip outside CI; in CI a missing real component is a failure."""
    if IN_CI:
        pytest.fail(f"{what} is missing (CI must install it: make test)")
    pytest.skip(f"{what} is missing")


def require_plugins() -> None:
    if not Path(PLUGINDIR, "check_dummy").exists():
        missing("monitoring-plugins-basic")


def require_binary(name: str) -> str:
    path = shutil.which(name) or (name if Path(name).exists() else None)
    if path is None:
        missing(name)
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(argv: list[str], name: str, port: int, log_path: str | Path, max_lifetime: float,
                 wait: float = 10.0) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """Start a throwaway server on 127.0.0.1:`port` and wait until it accepts.

    A detached watchdog kills exactly this PID after `max_lifetime` seconds, so the
    server's lifetime is bounded even if the test process dies before stopping it.
    Returns (server, watchdog); on failure the server is killed and RuntimeError raised.
    """
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    watchdog = subprocess.Popen(
        ["sh", "-c", f"sleep {max_lifetime:.0f}; kill -9 {proc.pid} 2>/dev/null"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    limit = time.monotonic() + wait
    while True:
        problem = None
        if proc.poll() is not None:
            problem = f"{name} exited with {proc.returncode}: {Path(log_path).read_text(errors='replace')[-2000:]}"
        else:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return proc, watchdog
            except OSError:
                if time.monotonic() > limit:
                    problem = f"{name} not listening on 127.0.0.1:{port} after {wait}s"
        if problem is not None:
            # Stop both by PID: a watchdog left behind could later kill a reused PID.
            proc.kill()
            proc.wait()
            os.killpg(watchdog.pid, signal.SIGKILL)
            watchdog.wait()
            raise RuntimeError(problem)
        time.sleep(0.02)


def wait_for(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `pred` until it returns something true (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def logged_at(log: str, needle: str) -> float:
    """time.time() of the first line of a checkd log containing `needle` (its asctime, ms)."""
    line = next(ln for ln in log.splitlines() if needle in ln)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "2m") -> Iterator[Path]:
    """A real, small file system mounted at `path` for the block (full-disk tests; needs root)."""
    if os.geteuid() != 0:
        missing("root (the test mounts a small tmpfs as a full disk)")
    path.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
