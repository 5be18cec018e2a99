"""A throwaway PostgreSQL 15 cluster for tests: initdb in a temporary directory,
listening on 127.0.0.1 only (its unix socket in that directory too), a free port,
bounded in time by a watchdog, stopped by PID (SIGINT: fast shutdown), removed.

Run as root, initdb and postgres run as the `postgres` user (they refuse root);
the directory is then owned by it. One cluster serves a whole test session; each
test gets a database of its own (`new_database`).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers import free_port, missing

BIN = Path("/usr/lib/postgresql/15/bin")
MAX_LIFETIME = 1800.0           # a watchdog kills a forgotten postmaster after this long
USER = "checkd"                 # the cluster's superuser (trust authentication, loopback only)


def require_postgres() -> None:
    """PostgreSQL 15's server and psycopg 3; skip without them, fail in CI."""
    if not (BIN / "initdb").exists():
        missing("PostgreSQL 15 (postgresql-15: /usr/lib/postgresql/15/bin/initdb)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg 3 (pip install 'psycopg[binary]')")


class Postgres:
    """`with Postgres() as pg:` pg.dsn(dbname) connects to it."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="checkd-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.pid: int | None = None
        self.watchdog: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._as: list[str] = []
        if os.geteuid() == 0:
            os.chown(self.dir, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={USER}"

    def start(self, wait: float = 30.0) -> None:
        log = self.dir / "log"
        subprocess.run([*self._as, str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", USER,
                        "-E", "UTF8", "--locale=C", "--no-sync"], check=True, capture_output=True, timeout=120)
        subprocess.run([*self._as, str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w",
                        "-t", str(int(wait)), "-o",
                        f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=on "
                        "-c synchronous_commit=on -c max_connections=100",
                        "start"], check=True, capture_output=True, timeout=wait + 10)
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        self.watchdog = subprocess.Popen(
            ["sh", "-c", f"sleep {MAX_LIFETIME:.0f}; kill -9 {self.pid} 2>/dev/null"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"PostgreSQL not listening on 127.0.0.1:{self.port}: "
                                       f"{log.read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.05)

    def new_database(self) -> str:
        """A fresh, empty database; its DSN."""
        import psycopg
        name = f"t{next(self._names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def stop(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)          # fast shutdown
                deadline = time.monotonic() + 20
                while _alive(self.pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _alive(self.pid):
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        if self.watchdog is not None:
            os.killpg(self.watchdog.pid, signal.SIGKILL)
            self.watchdog.wait()
            self.watchdog = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not reaped by its exited parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
