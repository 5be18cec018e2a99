"""The poller's side of its workers: hand out jobs, collect results, replace the dead.

A job goes to the worker with the fewest jobs in flight. A worker that dies
fails its jobs as UNKNOWN with a clear text and is started again, so one
broken worker never loses a check or stops the others.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from checkd.plugin_output import RawRun
from checkd.run.exec_frames import EXEC, FrameReader, FrameWriter, job_frame, parse_result

log = logging.getLogger(__name__)
GRACE = 5.0   # a worker enforces timeouts; this is only the last line of defence


class _WorkerProc:
    def __init__(self, pool: ExecPool, index: int):
        self.pool, self.index = pool, index
        r_in, self.w_in = os.pipe2(os.O_CLOEXEC)
        self.r_out, w_out = os.pipe2(os.O_CLOEXEC)
        argv = [sys.executable, "-m", "checkd.run.exec_worker", *map(str, pool.plugin_dirs)]
        self.pid = os.posix_spawn(sys.executable, argv, dict(os.environ),
                                  file_actions=[(os.POSIX_SPAWN_DUP2, r_in, 0), (os.POSIX_SPAWN_DUP2, w_out, 1)])
        os.close(r_in)
        os.close(w_out)
        os.set_blocking(self.w_in, False)
        os.set_blocking(self.r_out, False)
        self.jobs: dict[int, asyncio.Future[RawRun]] = {}
        self.reader = FrameReader()
        self.writer = FrameWriter(self.w_in, self._send_failed)
        self.alive = True
        asyncio.get_running_loop().add_reader(self.r_out, self.on_output)

    def submit(self, job_id: int, frame: bytes) -> asyncio.Future[RawRun]:
        fut: asyncio.Future[RawRun] = asyncio.get_running_loop().create_future()
        self.jobs[job_id] = fut
        self.writer.send(frame)
        return fut

    def _send_failed(self, e: OSError) -> None:
        # The worker is gone; on_output sees EOF and fails its jobs.
        log.warning("exec worker %d: cannot send jobs: %s", self.pid, e.strerror)

    def on_output(self) -> None:
        try:
            data = os.read(self.r_out, 1 << 18)
        except BlockingIOError:
            return
        if not data:
            self.died()
            return
        for body in self.reader.feed(data):
            job_id, raw = parse_result(body)
            fut = self.jobs.pop(job_id, None)
            if fut is not None and not fut.done():
                fut.set_result(raw)

    def died(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.r_out)
        self.writer.close()
        self.alive = False
        _, status = os.waitpid(self.pid, 0)
        for fd in (self.r_out, self.w_in):
            os.close(fd)
        if not self.pool.closing:
            log.error("exec worker %d died (%s) with %d checks in flight; starting a new one",
                      self.pid, _describe(status), len(self.jobs))
        for fut in self.jobs.values():
            if not fut.done():
                fut.set_result(RawRun(error="the exec worker running this check died; it runs again next interval"))
        self.jobs.clear()
        self.pool.replace(self)

    def close(self) -> None:
        if self.alive:
            self.writer.close()
            os.close(self.w_in)   # EOF: the worker finishes its jobs and exits
            self.w_in = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)


def _no_answer(worker: _WorkerProc, job_id: int, waited: float) -> None:
    fut = worker.jobs.pop(job_id, None)
    if fut is not None and not fut.done():
        fut.set_result(RawRun(error=f"exec worker {worker.pid} did not answer within {waited:g}s"))


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


class ExecPool:
    def __init__(self, workers: int, plugin_dirs: Sequence[Path] = ()):
        self.size = workers
        self.plugin_dirs = list(plugin_dirs)
        self.workers: list[_WorkerProc] = []
        self.ids = itertools.count(1)
        self.closing = False

    def start(self) -> None:
        self.workers = [_WorkerProc(self, i) for i in range(self.size)]

    def replace(self, dead: _WorkerProc) -> None:
        if not self.closing and dead in self.workers:
            self.workers[dead.index] = _WorkerProc(self, dead.index)

    async def run(self, argv: Sequence[str], timeout: float, kind: int = EXEC) -> RawRun:
        """Run argv (kind EXEC, or HANDLER for an event handler) or the embedded plugin argv[0] with
        argv[1:] (kind EMBEDDED)."""
        if not self.workers:
            self.start()
        worker = min((w for w in self.workers if w.alive), key=lambda w: len(w.jobs))
        job_id = next(self.ids)
        fut = worker.submit(job_id, job_frame(job_id, timeout, argv, kind))
        # A plain timer rather than wait_for: this runs for every check, and wait_for adds a
        # future, a timer and callbacks of its own.
        timer = asyncio.get_running_loop().call_later(timeout + GRACE, _no_answer, worker, job_id, timeout + GRACE)
        try:
            return await fut
        finally:
            timer.cancel()

    async def close(self, timeout: float = 10.0) -> None:
        """Let workers finish their jobs and exit; kill those that don't in time."""
        self.closing = True
        for w in self.workers:
            w.close()
        deadline = asyncio.get_running_loop().time() + timeout
        while any(w.alive for w in self.workers) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for w in self.workers:
            if w.alive:
                os.kill(w.pid, 9)
        while any(w.alive for w in self.workers):
            await asyncio.sleep(0.01)
