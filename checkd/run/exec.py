"""Run a plugin as a child process: posix_spawn, own process group, pidfd, capped pipes.

posix_spawn (vfork underneath) never copies a big parent, and the loop only
watches file descriptors, so this works on any event loop (uvloop included)
without its subprocess machinery, whose full fork() costs dearly. The child
leads its own process group; on timeout, and after it exits, the whole group is
killed so a plugin that forked a sleeper leaves nothing behind (an event handler may
leave what it started running: `keep_children`).
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
from collections.abc import Callable, Mapping, Sequence

from checkd.plugin_output import MAX_OUTPUT_BYTES, RawRun

# Nagios 4 (lib/runcmd.c) hands a command to /bin/sh when it contains one of these.
SHELL_CHARS = set("!$^&*()~[]\\|{};<>?`")
# Quotes, escapes, or whitespace shlex does not split on (str.split would): shlex's job.
_NEEDS_SHLEX = re.compile(r"['\"\\]|[^\S \t\r\n]")
# Plugins get a minimal environment, as under Nagios' core workers: PATH only, so the C
# locale (English text; and setlocale() with LANG set costs ~20% of a small plugin's run).
PLUGIN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
# How long output is still read after a `keep_children` run ended: what it started may hold
# the pipes open for as long as it lives.
KEPT_PIPE_GRACE = 0.2


def command_argv(line: str) -> list[str]:
    """argv for a command line: split like a shell, or /bin/sh -c when it needs one."""
    if any(c in SHELL_CHARS for c in line):
        return ["/bin/sh", "-c", line]
    if _NEEDS_SHLEX.search(line) is None:
        return line.split()         # what shlex.split gives, 30x faster (a first run prepares its line)
    try:
        return shlex.split(line)
    except ValueError:  # unbalanced quotes: let the shell report it
        return ["/bin/sh", "-c", line]


class _Capture:
    """Reads one pipe without blocking, keeping at most `limit` bytes."""

    def __init__(self, fd: int, limit: int, on_end: Callable[[], None]):
        self.fd, self.limit, self.on_end = fd, limit, on_end
        self.data = bytearray()
        self.truncated = False

    def on_readable(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.fd)
            self.on_end()
            return
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.data += chunk[:room]


def _spawn(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, int, int]:
    """Start argv with stdout/stderr on new pipes; returns (pid, out_fd, err_fd)."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
        spawn = os.posix_spawn if "/" in argv[0] else os.posix_spawnp
        pid = spawn(argv[0], list(argv), env, file_actions=actions, setpgroup=0,
                             setsigdef=(signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    os.set_blocking(out_r, False)
    os.set_blocking(err_r, False)
    return pid, out_r, err_r


def _kill_group(pid: int) -> None:
    # Only while `pid` is unreaped (running or zombie): its group id can't be reused yet.
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def run_exec(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None,
                   max_output: int = MAX_OUTPUT_BYTES, keep_children: bool = False) -> RawRun:
    """Run `argv` to completion or until `timeout`; never raises for plugin failures.
    `keep_children`: what it started stays running once it has exited in time (an event
    handler that restarts a daemon); only a timeout kills its process group."""
    loop = asyncio.get_running_loop()
    try:
        pid, out_fd, err_fd = _spawn(argv, PLUGIN_ENV if env is None else env)
    except OSError as e:
        return RawRun(error=f"cannot execute {argv[0]}: {e.strerror}")
    pidfd = os.pidfd_open(pid)
    # One future for the whole run, and plain callbacks: a worker runs a thousand of these a
    # second, and wait_for/shield/gather cost a third of its CPU per check (docs/benchmarks.md).
    run = _Run(loop, pid, pidfd, keep_children)
    out = _Capture(out_fd, max_output, run.part_done)
    err = _Capture(err_fd, max_output, run.part_done)
    loop.add_reader(out_fd, out.on_readable)
    loop.add_reader(err_fd, err.on_readable)
    loop.add_reader(pidfd, run.on_exit)
    run.timer = loop.call_later(timeout, run.on_timeout)
    try:
        await run.done
        if keep_children:
            # What it started may hold the pipes open for as long as it lives.
            await asyncio.wait([run.pipes], timeout=KEPT_PIPE_GRACE)
    finally:
        run.timer.cancel()
        for fd in (out_fd, err_fd, pidfd):
            loop.remove_reader(fd)
        # Cancelled before it exited: don't leave the plugin running.
        if not run.exited:
            _kill_group(pid)
        _, status = os.waitpid(pid, 0)
        for fd in (out_fd, err_fd, pidfd):
            os.close(fd)
    if run.timed_out:
        return RawRun(timed_out=True, timeout=timeout, stdout=bytes(out.data))
    return RawRun(exit_code=os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
                  signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                  stdout=bytes(out.data), stderr=bytes(err.data),
                  truncated=out.truncated or err.truncated)


class _Run:
    """The events of one run: its exit (pidfd), the end of both pipes, its timeout.

    `done` resolves when the plugin has exited and, unless `keep_children`, both pipes
    are at their end; `pipes` when both pipes are (a `keep_children` run waits for it a
    little). On timeout, and on exit unless `keep_children`, the process group is killed,
    while the plugin is unreaped so its group id cannot be reused."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pid: int, pidfd: int, keep_children: bool):
        self.loop, self.pid, self.pidfd, self.keep_children = loop, pid, pidfd, keep_children
        self.done: asyncio.Future[None] = loop.create_future()
        self.pipes: asyncio.Future[None] = loop.create_future()
        self.open_pipes = 2
        self.exited = self.timed_out = False
        self.timer: asyncio.TimerHandle | None = None

    def on_exit(self) -> None:
        self.loop.remove_reader(self.pidfd)
        self.exited = True
        if self.timer is not None:
            self.timer.cancel()
        # Leftovers of a plugin that exited but left a child behind would hold our pipes open.
        if not self.keep_children:
            _kill_group(self.pid)
        self._settle()

    def on_timeout(self) -> None:
        if not self.exited:
            self.timed_out = True
            _kill_group(self.pid)

    def part_done(self) -> None:
        self.open_pipes -= 1
        if self.open_pipes == 0 and not self.pipes.done():
            self.pipes.set_result(None)
        self._settle()

    def _settle(self) -> None:
        if self.exited and not self.done.done() and (self.open_pipes == 0 or self.keep_children):
            self.done.set_result(None)
