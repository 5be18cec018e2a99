"""A worker: a small process that runs plugins for the poller (Nagios 4's core workers).

posix_spawn holds the interpreter lock and blocks its thread until the child
has exec'd; in a worker process that wait costs the poller's event loop
nothing, and the cores spawn in parallel. Embedded Python plugins run here
too, loaded once per worker, so they use every core and a plugin that kills
its process takes down one worker, not the poller. Jobs arrive on stdin,
results leave on stdout (checkd.run.exec_frames); the worker exits when stdin
closes. Usage: python -m checkd.run.exec_worker [PLUGIN_DIR ...]
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from checkd.plugin_output import RawRun
from checkd.run.exec import run_exec
from checkd.run.embedded import EmbeddedRunner
from checkd.run.exec_frames import EMBEDDED, HANDLER, FrameReader, FrameWriter, parse_job, result_frame


class Worker:
    def __init__(self, in_fd: int, out_fd: int, plugin_dirs: list[Path]):
        self.in_fd, self.out_fd = in_fd, out_fd
        self.embedded = EmbeddedRunner(plugin_dirs)
        self.reader = FrameReader()
        self.writer = FrameWriter(out_fd)
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.get_running_loop().create_future()

    def on_input(self) -> None:
        try:
            data = os.read(self.in_fd, 1 << 16)
        except BlockingIOError:
            return
        if not data:  # the poller went away: finish what runs, then exit
            asyncio.get_running_loop().remove_reader(self.in_fd)
            self.closed.set_result(None)
            return
        for body in self.reader.feed(data):
            job_id, kind, timeout, argv = parse_job(body)
            task = asyncio.get_running_loop().create_task(self.run(job_id, kind, timeout, argv))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def run(self, job_id: int, kind: int, timeout: float, argv: list[str]) -> None:
        try:
            if kind == EMBEDDED:
                raw = await self.embedded.run(argv[0], argv[1:], timeout)
            else:
                raw = await run_exec(argv, timeout, keep_children=kind == HANDLER)
        except Exception as e:  # never lose a job: the poller waits for an answer
            raw = RawRun(error=f"exec worker: {type(e).__name__}: {e}")
        self.writer.send(result_frame(job_id, raw, time.time()))


async def serve() -> None:
    os.set_blocking(0, False)
    os.set_blocking(1, False)
    worker = Worker(0, 1, [Path(p) for p in sys.argv[1:]])
    asyncio.get_running_loop().add_reader(0, worker.on_input)
    await worker.closed
    if worker.tasks:
        await asyncio.gather(*worker.tasks, return_exceptions=True)
    rest = worker.writer.close()
    if rest:
        os.set_blocking(1, True)
        os.write(1, rest)


def main() -> None:
    # The poller handles signals, and a worker ends when its stdin closes (the poller closed the
    # pool, or died). A Ctrl-C on the terminal, or `systemctl stop` (SIGTERM to every process
    # of the unit) must not kill workers mid-job: their checks would be sent as UNKNOWN.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    try:
        asyncio.run(serve())
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
