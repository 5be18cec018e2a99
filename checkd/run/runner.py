"""Run a PreparedCheck with the right runner and interpret what it did.

The single entry point the scheduler uses; it owns the embedded runner and the
SSH connection pool so their state (loaded plugins, open connections) lives
as long as the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from checkd.config.model import CommandKind
from checkd.plugin_output import PluginOutput, RawRun, interpret
from checkd.run.embedded import EmbeddedRunner
from checkd.run.exec import run_exec
from checkd.run.exec_frames import EMBEDDED, HANDLER
from checkd.run.exec_pool import ExecPool
from checkd.run.prepare import PreparedCheck

if TYPE_CHECKING:
    from checkd.run.ssh import SSHPool


class Runner:
    def __init__(self, plugin_dirs: Sequence[Path], exec_workers: int = 0):
        """`exec_workers` > 0: run exec and embedded plugins in that many worker processes
        (the daemons); 0: run them in this process (one-off runs, tests)."""
        self.embedded = EmbeddedRunner(plugin_dirs)
        self.exec_pool = ExecPool(exec_workers, plugin_dirs) if exec_workers > 0 else None
        self._ssh: SSHPool | None = None

    @property
    def ssh(self) -> SSHPool:
        # asyncssh is imported only by nodes that have ssh checks.
        if self._ssh is None:
            from checkd.run.ssh import SSHPool
            self._ssh = SSHPool()
        return self._ssh

    async def run_raw(self, check: PreparedCheck) -> RawRun:
        if check.kind is CommandKind.EXEC:
            if self.exec_pool is not None:
                return await self.exec_pool.run(check.argv, check.timeout)
            return await run_exec(check.argv, check.timeout)
        if check.kind is CommandKind.EMBEDDED:
            if self.exec_pool is not None:
                return await self.exec_pool.run([check.plugin, *check.args], check.timeout, EMBEDDED)
            return await self.embedded.run(check.plugin, list(check.args), check.timeout)
        assert check.ssh is not None
        return await self.ssh.run(check.address, check.ssh, check.line, check.timeout)

    async def run_handler(self, check: PreparedCheck) -> RawRun:
        """An event handler: like a check, but what an exec handler starts (a daemon it
        restarts) is left running once it exits in time; at its timeout its group is killed."""
        if check.kind is not CommandKind.EXEC:
            return await self.run_raw(check)
        if self.exec_pool is not None:
            return await self.exec_pool.run(check.argv, check.timeout, HANDLER)
        return await run_exec(check.argv, check.timeout, keep_children=True)

    async def run(self, check: PreparedCheck) -> PluginOutput:
        return interpret(await self.run_raw(check))

    async def close(self) -> None:
        if self.exec_pool is not None:
            await self.exec_pool.close()
        if self._ssh is not None:
            await self._ssh.close()
