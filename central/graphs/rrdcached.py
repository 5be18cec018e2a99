"""A small client for rrdcached's text protocol (rrdcached(1)): the writer sends its
updates in BATCH mode, thousands per round trip, which librrd's one-update-per-call
client cannot. Blocking; used by the writer process and the benchmark.

Addresses as librrd takes them: `unix:/path`, `/path`, `host:port`, `host`
(port 42217).
"""

from __future__ import annotations

import socket

DEFAULT_PORT = 42217


class RrdcachedError(Exception):
    """The daemon is unreachable, or answered something unexpected."""


class Rrdcached:
    def __init__(self, address: str, timeout: float = 30.0):
        self.address, self.timeout = address, timeout
        self._sock: socket.socket | None = None
        self._rfile: socket.SocketIO | None = None
        self._buf = b""

    def _connect(self) -> socket.socket:
        a = self.address
        try:
            if a.startswith("unix:") or a.startswith("/"):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(self.timeout)
                s.connect(a[5:] if a.startswith("unix:") else a)
            else:
                host, sep, port = a.rpartition(":")
                if not sep or "]" in port:          # "host" or "[::1]": the default port
                    host, port = a, ""
                s = socket.create_connection((host.strip("[]"), int(port or DEFAULT_PORT)), timeout=self.timeout)
        except (OSError, ValueError) as e:
            raise RrdcachedError(f"cannot connect to rrdcached at {a}: {e}") from None
        return s

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buf = None, b""

    def _line(self) -> str:
        assert self._sock is not None
        while b"\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise RrdcachedError("rrdcached closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def _status(self) -> tuple[int, str]:
        line = self._line()
        code, _, message = line.partition(" ")
        try:
            return int(code), message
        except ValueError:
            raise RrdcachedError(f"unexpected answer from rrdcached: {line!r}") from None

    def _session(self) -> socket.socket:
        if self._sock is None:
            self._sock = self._connect()
        return self._sock

    def command(self, line: str) -> tuple[int, list[str]]:
        """One command; its status and, for a positive status, that many lines that follow."""
        try:
            self._session().sendall(line.encode() + b"\n")
            code, message = self._status()
            lines = [self._line() for _ in range(code)] if code > 0 else []
        except OSError as e:
            self.close()
            raise RrdcachedError(f"rrdcached at {self.address}: {e}") from None
        except RrdcachedError:
            self.close()
            raise
        if code < 0:
            raise RrdcachedError(f"rrdcached: {line.split(' ', 1)[0]}: {message}")
        return code, lines

    def batch(self, commands: list[str]) -> list[tuple[int, str]]:
        """Many commands (e.g. `UPDATE /path ts:v ts:v`) in one round trip; the errors as
        (command number from 1, message). Raises RrdcachedError if the batch itself failed,
        in which case none of it can be assumed stored."""
        if not commands:
            return []
        try:
            s = self._session()
            s.sendall(b"BATCH\n")
            code, message = self._status()
            if code != 0:
                raise RrdcachedError(f"rrdcached refused BATCH: {message}")
            s.sendall(("\n".join(commands) + "\n.\n").encode())
            n, _ = self._status()
            errors = []
            for _ in range(n):
                num, _, msg = self._line().partition(" ")
                errors.append((int(num) if num.isdigit() else 0, msg))
            return errors
        except OSError as e:
            self.close()
            raise RrdcachedError(f"rrdcached at {self.address}: {e}") from None
        except RrdcachedError:
            self.close()
            raise

    def stats(self) -> dict[str, int]:
        _, lines = self.command("STATS")
        out = {}
        for line in lines:
            key, _, value = line.partition(": ")
            out[key] = int(value) if value.strip().lstrip("-").isdigit() else 0
        return out
