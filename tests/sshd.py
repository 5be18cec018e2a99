"""A throwaway OpenSSH server on 127.0.0.1 for tests of the ssh runner.

Its own host key, client key, known_hosts and log in a temp dir; a dedicated
login user with /bin/sh (root's shell start-up is slow). Stopped by PID,
restartable on the same port with the same host key.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from tests.helpers import free_port, start_server

SSHD = "/usr/sbin/sshd"
TEST_USER = "checkd-sshtest"
MAX_LIFETIME = 600.0          # a watchdog kills a forgotten sshd after this long


def require_sshd() -> None:
    """Skip when sshd cannot run here; in CI (CI=true) fail instead, never skip."""
    problem = None
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        problem = f"{SSHD} or ssh-keygen not installed (apt-get install openssh-server)"
    elif os.geteuid() != 0:
        problem = "the throwaway sshd needs root (privilege separation, test user)"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


def ensure_test_user(name: str = TEST_USER) -> str:
    """A system user with /bin/sh whose password is '*' (with UsePAM no, '!' refuses keys)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-r", "-m", "-s", "/bin/sh", name], check=True)
    subprocess.run(["usermod", "-p", "*", name], check=True)
    return name


def make_keypair(directory: str, name: str) -> tuple[str, str]:
    """An ed25519 key pair; returns (private key path, public key line)."""
    path = os.path.join(directory, name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path], check=True)
    with open(path + ".pub", encoding="ascii") as f:
        return path, f.read().strip()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue           # exited while we looked
        # Field 4 is the parent pid; the command name (field 2) may contain spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def _descendants(pid: int) -> list[int]:
    todo, found = [pid], []
    while todo:
        kids = _children(todo.pop())
        found.extend(kids)
        todo.extend(kids)
    return found


class Sshd:
    """sshd -D -e on 127.0.0.1:port; use start()/stop()/restart(), or `with Sshd() as s:`."""

    def __init__(self, user: str = TEST_USER, port: int | None = None) -> None:
        self.user = user
        self.dir = tempfile.mkdtemp(prefix="checkd-sshd-")
        # sshd reads authorized_keys as the login user; private keys stay 0600.
        os.chmod(self.dir, 0o755)
        self.port = port or free_port()
        self.host_key, self.host_key_line = make_keypair(self.dir, "host_ed25519")
        self.client_key, client_pub = make_keypair(self.dir, "client_ed25519")
        self.log_path = os.path.join(self.dir, "sshd.log")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.config = os.path.join(self.dir, "sshd_config")
        self.proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        authorized = os.path.join(self.dir, f"authorized_keys.{user}")
        with open(authorized, "w", encoding="ascii") as f:
            f.write(client_pub + "\n")
        os.chmod(authorized, 0o644)
        key_type, key_b64 = self.host_key_line.split()[:2]
        with open(self.known_hosts, "w", encoding="ascii") as f:
            f.write(f"[127.0.0.1]:{self.port} {key_type} {key_b64}\n")
        with open(self.config, "w", encoding="ascii") as f:
            f.write(f"""\
ListenAddress 127.0.0.1
Port {self.port}
HostKey {self.host_key}
PidFile {self.dir}/sshd.pid
AuthorizedKeysFile {self.dir}/authorized_keys.%u
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers {user}
PrintMotd no
LogLevel INFO
""")

    def start(self, wait: float = 10.0) -> None:
        os.makedirs("/run/sshd", exist_ok=True)      # privilege separation directory
        self.proc, self._watchdog = start_server([SSHD, "-D", "-e", "-f", self.config], "sshd", self.port,
                                                 self.log_path, MAX_LIFETIME, wait)

    def stop(self, wait: float = 10.0) -> None:
        """Kill sshd and its per-connection children by PID, as if the host went down."""
        if self._watchdog is not None:
            # Its own session: the group is the watchdog's PID and holds only sh and sleep.
            os.killpg(self._watchdog.pid, signal.SIGKILL)
            self._watchdog.wait()
            self._watchdog = None
        if self.proc is None:
            return
        # Per-connection sshd processes call setsid(), so killing the listener (or
        # its process group) would leave established connections up.
        victims = _descendants(self.proc.pid)
        for pid in [self.proc.pid, *victims]:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue       # already gone
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        limit = time.monotonic() + wait
        for pid in victims:
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < limit:
                time.sleep(0.01)
        self.proc = None

    def restart(self) -> None:
        """Same port, same host key, same log file."""
        self.stop()
        self.start()

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def accepted_logins(self) -> int:
        """Handshakes that authenticated, counted from sshd's own log."""
        return self.log().count("Accepted publickey")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Sshd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
