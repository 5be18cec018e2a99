"""Small helpers shared by tests: where real components live, and the CI rule
that a missing component fails a test instead of skipping it."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

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
