"""A throwaway rrdcached for tests: listening only on a unix socket in the test's
temp dir, base directory = the RRD dir (-B: no writes outside it), started in the
foreground, bounded in time by a watchdog, stopped by PID (SIGTERM flushes, -F)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.helpers import missing, require_binary

MAX_LIFETIME = 300.0            # a watchdog kills a forgotten rrdcached after this long


def require_rrd() -> None:
    """The rrdtool binding and rrdcached; skip without them, fail in CI."""
    try:
        import rrdtool  # noqa: F401
    except ImportError:
        missing("the rrdtool Python binding (pip install rrdtool; needs librrd-dev)")
    require_binary("rrdcached")


class Rrdcached:
    """`with Rrdcached(tmp, rrd_dir) as d:` d.address is `unix:/.../rrdcached.sock`."""

    def __init__(self, directory: Path, rrd_dir: Path, write_every: int = 300):
        self.dir, self.rrd_dir, self.write_every = directory, rrd_dir, write_every
        self.socket = directory / "rrdcached.sock"
        self.address = f"unix:{self.socket}"
        self.log = directory / "rrdcached.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.watchdog: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 10.0) -> None:
        self.rrd_dir.mkdir(parents=True, exist_ok=True)
        argv = [require_binary("rrdcached"), "-g", "-F", "-B", "-b", str(self.rrd_dir), "-l", self.address,
                "-p", str(self.dir / "rrdcached.pid"), "-j", str(self.dir / "journal"),
                "-w", str(self.write_every), "-z", "1", "-t", "2"]
        (self.dir / "journal").mkdir(exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.watchdog = subprocess.Popen(
            ["sh", "-c", f"sleep {MAX_LIFETIME:.0f}; kill -9 {self.proc.pid} 2>/dev/null"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"rrdcached exited with {self.proc.returncode if self.proc else '?'}: "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.socket))
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"rrdcached not listening on {self.socket} after {wait}s") from None
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.watchdog is not None:
            os.killpg(self.watchdog.pid, signal.SIGKILL)
            self.watchdog.wait()
            self.watchdog = None

    def __enter__(self) -> Rrdcached:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
