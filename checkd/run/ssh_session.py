"""One check's remote command on one SSH channel, and the RawRun it becomes.

The ssh runner's pool opens the channel; this module collects what comes back
(output capped at MAX_OUTPUT_BYTES, exit status or signal) and says what it means.
"""

from __future__ import annotations

import asyncio
import signal as _signal

import asyncssh

from checkd.plugin_output import MAX_OUTPUT_BYTES, RawRun


class CheckSession(asyncssh.SSHClientSession):
    """Collects one remote command's output (capped) and how it ended."""

    def __init__(self) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.truncated = False
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        # Set when the channel is closed; the value is the connection's error, if any.
        self.closed: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: int | None) -> None:
        buf = self.stderr if datatype == asyncssh.EXTENDED_DATA_STDERR else self.stdout
        room = MAX_OUTPUT_BYTES - len(buf)
        if len(data) > room:
            # Keep draining (and discarding) so the command can finish and report its exit status.
            self.truncated = True
            data = data[:max(room, 0)]
        buf += data

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    def timed_out(self, timeout: float) -> RawRun:
        return RawRun(timed_out=True, timeout=timeout, stdout=bytes(self.stdout),
                      stderr=bytes(self.stderr), truncated=self.truncated)

    def raw_run(self, timeout: float, where: str, lost: bool) -> RawRun:
        """What the closed channel reported; `lost`: the connection died under it."""
        out, err = bytes(self.stdout), bytes(self.stderr)
        if self.exit_signal is not None:
            num = signal_number(self.exit_signal)
            if num is not None:
                return RawRun(signal=num, stdout=out, stderr=err, truncated=self.truncated, timeout=timeout)
            return RawRun(error=f"{where}: remote command died by unknown signal {self.exit_signal}",
                          stdout=out, stderr=err, timeout=timeout)
        if self.exit_status is not None:
            return RawRun(exit_code=self.exit_status, stdout=out, stderr=err,
                          truncated=self.truncated, timeout=timeout)
        reason = self.closed.result() if self.closed.done() else None
        if lost or reason is not None:
            return RawRun(error=f"{where}: connection lost during the check ({reason or 'closed'})",
                          stdout=out, stderr=err, timeout=timeout)
        return RawRun(error=f"{where}: session closed without an exit status", stdout=out,
                      stderr=err, timeout=timeout)


def signal_number(name: str) -> int | None:
    # SSH names signals without the SIG prefix ("KILL", "TERM").
    try:
        return int(_signal.Signals["SIG" + name.upper()])
    except KeyError:
        return None
