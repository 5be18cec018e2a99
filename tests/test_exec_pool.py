"""Exec workers (the poller's spawner processes) give the same results as spawning
in-process, and a worker that dies costs a clear UNKNOWN, never a lost or stuck check."""

from __future__ import annotations

import asyncio
import os
import signal

from checkd.plugin_output import interpret
from checkd.run.exec import command_argv, run_exec
from checkd.run.exec_pool import ExecPool
from checkd.states import Status
from tests.helpers import PLUGINDIR, require_plugins

CASES = [f"{PLUGINDIR}/check_dummy 2 'it broke'", "printf 'caf\\351|a=1s\\nlong\\n'; exit 1",
         "echo partial; kill -SEGV $$", "sh -c 'exit 127'", "/no/such/plugin", "/bin/true",
         "echo err >&2; exit 2", "head -c 3000000 /dev/zero | tr '\\0' x"]


def test_pool_results_equal_in_process_results() -> None:
    require_plugins()

    async def main() -> None:
        pool = ExecPool(2)
        pool.start()
        try:
            for line in CASES:
                inline = interpret(await run_exec(command_argv(line), 5))
                pooled = interpret(await pool.run(command_argv(line), 5))
                assert pooled == inline, line
            timed = interpret(await pool.run(["/bin/sleep", "10"], 0.3))
            assert timed.status is Status.UNKNOWN and timed.output == "(check timed out after 0.3s)"
        finally:
            await pool.close()
    asyncio.run(main())


def test_a_dying_worker_fails_its_checks_clearly_and_is_replaced() -> None:
    require_plugins()

    async def main() -> None:
        pool = ExecPool(1)
        pool.start()
        try:
            victim = pool.workers[0].pid
            slow = [asyncio.create_task(pool.run(["/bin/sleep", "5"], 10)) for _ in range(3)]
            await asyncio.sleep(0.5)
            os.kill(victim, signal.SIGKILL)
            results = [interpret(r) for r in await asyncio.wait_for(asyncio.gather(*slow), 5)]
            assert all(r.status is Status.UNKNOWN and "exec worker running this check died" in r.output
                       for r in results)
            assert pool.workers[0].pid != victim
            again = interpret(await pool.run([f"{PLUGINDIR}/check_dummy", "0", "back"], 5))
            assert again.output == "OK: back"
            many = await asyncio.gather(*(pool.run([f"{PLUGINDIR}/check_dummy", str(i % 4), f"n{i}"], 5)
                                          for i in range(300)))
            assert [interpret(r).output for r in many] == [f"{Status(i % 4).name}: n{i}" for i in range(300)]
        finally:
            await pool.close()
        assert all(not w.alive for w in pool.workers)
    asyncio.run(main())


def test_embedded_plugins_run_in_workers_like_in_process() -> None:
    from pathlib import Path

    from checkd.config.load import SHIPPED_PLUGINS
    from checkd.run.exec_frames import EMBEDDED
    from checkd.run.embedded import EmbeddedRunner
    dirs = [Path(__file__).parent / "plugins", *SHIPPED_PLUGINS]

    async def main() -> None:
        pool = ExecPool(2, dirs)
        pool.start()
        local = EmbeddedRunner(dirs)
        try:
            for plugin, args in [("check_dummy", ["1", "slow"]), ("check_raises", []),
                                 ("check_file_age", ["-f", "/etc/hostname", "-w", "1:", "-c", "0:"])]:
                assert interpret(await pool.run([plugin, *args], 5, EMBEDDED)) == \
                    interpret(await local.run(plugin, args, 5)), plugin
            loops = interpret(await pool.run(["check_loops"], 0.5, EMBEDDED))
            assert loops.status is Status.UNKNOWN and "timed out" in loops.output
            victim_pids = {w.pid for w in pool.workers}
            dead = interpret(await pool.run(["check_os_exit"], 5, EMBEDDED))
            assert dead.status is Status.UNKNOWN and "worker running this check died" in dead.output
            assert {w.pid for w in pool.workers} != victim_pids, "the worker was replaced"
            ok = await asyncio.gather(*(pool.run(["check_dummy", "0", f"n{i}"], 5, EMBEDDED) for i in range(500)))
            assert [interpret(r).output for r in ok] == [f"OK: n{i}" for i in range(500)]
        finally:
            await pool.close()
    asyncio.run(main())
