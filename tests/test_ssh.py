"""The ssh runner against a real sshd on 127.0.0.1 with real monitoring-plugins."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import tempfile
import time
from pathlib import Path

from checkd.config.model import SSHSettings
from checkd.plugin_output import MAX_OUTPUT_BYTES, interpret
from checkd.run.ssh import SSHPool
from checkd.states import Status
from tests.sshd import Sshd, free_port, make_keypair

PLUGINS = "/usr/lib/nagios/plugins"
ADDR = "127.0.0.1"


def settings_for(server: Sshd, **changes: object) -> SSHSettings:
    values: dict[str, object] = dict(user=server.user, port=server.port, key=server.client_key,
                                     known_hosts=server.known_hosts, connect_timeout=5.0)
    values.update(changes)
    return SSHSettings(**values)  # type: ignore[arg-type]


def test_a_thousand_plugin_checks_share_one_connection(sshd: Sshd) -> None:
    settings = settings_for(sshd)
    dummy = f"{PLUGINS}/check_dummy 0 hello"
    load = f"{PLUGINS}/check_load -w 1000,1000,1000 -c 2000,2000,2000"
    commands = [load if i % 10 == 0 else dummy for i in range(1000)]

    async def main() -> tuple[list, float, float]:
        pool = SSHPool()
        try:
            started = time.monotonic()
            raws = await asyncio.gather(*(pool.run(ADDR, settings, c, 10.0) for c in commands))
            parallel = time.monotonic() - started
            started = time.monotonic()
            for _ in range(200):
                assert (await pool.run(ADDR, settings, dummy, 10.0)).exit_code == 0
            serial = time.monotonic() - started
            stats = pool.stats()
            assert stats.handshakes == 1 and stats.connections == 1
            assert stats.connect_failures == 0
            return raws, parallel, serial
        finally:
            await pool.close()

    raws, parallel, serial = asyncio.run(main())
    for command, raw in zip(commands, raws):
        out = interpret(raw)
        assert raw.error is None and not raw.timed_out
        assert out.status is Status.OK, (command, raw)
        if command == dummy:
            assert out.output == "OK: hello"
        else:
            assert out.output.startswith("LOAD OK") and "load1=" in out.perfdata
    assert sshd.accepted_logins() == 1
    print(f"\nssh pool: 1000 checks on 6 channels of one connection in {parallel:.2f}s "
          f"= {1000 / parallel:.0f} checks/s; 200 sequential checks (1 channel) "
          f"in {serial:.2f}s = {200 / serial:.0f} checks/s")


PERF_TEXT = ("DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
             "/ 15272 MB (77%);\n"
             "/boot 68 MB (69%); | /boot=68MB;88;93;0;98\n"
             "'home dir'=69357MB;253404;253409;0;253414\n")


def test_exit_codes_output_perfdata_and_huge_output(sshd: Sshd) -> None:
    settings = settings_for(sshd)
    print_perf = "printf '%s\\n' " + " ".join(shlex.quote(line) for line in PERF_TEXT.splitlines())
    big = "head -c 10000000 /dev/zero; head -c 10000000 /dev/zero >&2; exit 1"

    async def main() -> dict[str, object]:
        pool = SSHPool()
        try:
            runs = {}
            for code in range(4):
                runs[str(code)] = await pool.run(ADDR, settings, f"{PLUGINS}/check_dummy {code} text{code}", 10)
            runs["7"] = await pool.run(ADDR, settings, "echo weird; echo oops >&2; exit 7", 10)
            runs["perf"] = await pool.run(ADDR, settings, print_perf, 10)
            runs["signal"] = await pool.run(ADDR, settings, "echo dying; kill -9 $$", 10)
            runs["big"] = await pool.run(ADDR, settings, big, 30)
            runs["after"] = await pool.run(ADDR, settings, f"{PLUGINS}/check_dummy 0 still", 10)
            runs["handshakes"] = pool.stats().handshakes
            return runs
        finally:
            await pool.close()

    runs = asyncio.run(main())
    for code, word in enumerate(["OK", "WARNING", "CRITICAL", "UNKNOWN"]):
        raw = runs[str(code)]
        assert raw.exit_code == code and raw.stdout == f"{word}: text{code}\n".encode()
        assert interpret(raw).status == Status(code)
    weird = runs["7"]
    assert (weird.exit_code, weird.stdout, weird.stderr) == (7, b"weird\n", b"oops\n")
    assert interpret(weird).status is Status.UNKNOWN
    assert "out of bounds" in interpret(weird).output
    perf = runs["perf"]
    assert perf.stdout == PERF_TEXT.encode() and perf.exit_code == 0
    assert interpret(perf).perfdata == ("/=2643MB;5948;5958;0;5968 /boot=68MB;88;93;0;98 "
                                        "'home dir'=69357MB;253404;253409;0;253414")
    assert runs["signal"].signal == signal.SIGKILL and runs["signal"].exit_code is None
    big_run = runs["big"]
    assert big_run.truncated and big_run.exit_code == 1
    assert len(big_run.stdout) == MAX_OUTPUT_BYTES and len(big_run.stderr) == MAX_OUTPUT_BYTES
    assert runs["after"].stdout == b"OK: still\n"
    assert runs["handshakes"] == 1


def _running(marker: str) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    return True
        except OSError:
            continue          # exited while we looked
    return False


def test_timeout_closes_the_channel_and_the_connection_stays_usable(sshd: Sshd) -> None:
    settings = settings_for(sshd)

    async def main() -> None:
        pool = SSHPool()
        try:
            started = time.monotonic()
            raw = await pool.run(ADDR, settings, "echo started; sleep 31.5", 0.5)
            assert raw.timed_out and raw.timeout == 0.5
            assert time.monotonic() - started < 3.0
            assert "timed out after 0.5s" in interpret(raw).output
            after = await pool.run(ADDR, settings, f"{PLUGINS}/check_dummy 0 next", 5)
            assert after.exit_code == 0 and after.stdout == b"OK: next\n"
            assert pool.stats().handshakes == 1 and pool.stats().channels_busy == 0
        finally:
            await pool.close()

    asyncio.run(main())
    # The remote command was killed, not left behind.
    limit = time.monotonic() + 3
    while _running("31.5") and time.monotonic() < limit:
        time.sleep(0.05)
    assert not _running("31.5")


def test_sshd_restart_fails_clearly_then_reconnects(sshd: Sshd) -> None:
    settings = settings_for(sshd)
    ok = f"{PLUGINS}/check_dummy 0 up"
    where = f"ssh to 127.0.0.1:{sshd.port}: "

    async def main() -> None:
        pool = SSHPool(backoff=0.3)
        try:
            assert (await pool.run(ADDR, settings, ok, 5)).exit_code == 0
            sshd.stop()
            down = await pool.run(ADDR, settings, ok, 5)
            assert down.error is not None and down.error.startswith(where), down
            assert "connection failed" in down.error
            assert interpret(down).status is Status.UNKNOWN
            again = await pool.run(ADDR, settings, ok, 5)   # inside the backoff window
            assert again.error is not None and "not retrying" in again.error
            assert pool.stats().connect_failures == 1       # no handshake storm
            sshd.start()
            await asyncio.sleep(0.4)
            back = await pool.run(ADDR, settings, ok, 5)
            assert back.exit_code == 0 and back.stdout == b"OK: up\n", back
            stats = pool.stats()
            assert stats.handshakes == 2 and stats.connections == 1
        finally:
            await pool.close()

    asyncio.run(main())
    assert sshd.accepted_logins() == 2


def test_unknown_or_changed_host_key_is_refused_before_anything_runs(sshd: Sshd, tmp_path: Path) -> None:
    work = str(tmp_path)
    empty = os.path.join(work, "empty_known_hosts")
    open(empty, "w").close()
    _, other_key = make_keypair(work, "other_host_key")
    changed = os.path.join(work, "changed_known_hosts")
    with open(changed, "w") as f:
        f.write(f"[127.0.0.1]:{sshd.port} {' '.join(other_key.split()[:2])}\n")
    missing = os.path.join(work, "no_such_file")
    marker = os.path.join(tempfile.gettempdir(), f"checkd-ssh-ran-{os.getpid()}")
    touch = f"touch {marker}"
    where = f"ssh to 127.0.0.1:{sshd.port}: host key verification failed"

    async def attempt(known_hosts: str) -> str | None:
        # A pool each: one pool would answer the second attempt from its backoff.
        pool = SSHPool()
        try:
            raw = await pool.run(ADDR, settings_for(sshd, known_hosts=known_hosts), touch, 5)
            assert pool.stats().connections == 0 and pool.stats().connect_failures == 1
            return raw.error
        finally:
            await pool.close()

    async def main() -> dict[str, str | None]:
        return {name: await attempt(path)
                for name, path in [("empty", empty), ("changed", changed), ("missing", missing)]}

    errors = asyncio.run(main())
    assert errors["empty"] == f"{where} (not in {empty})"
    assert errors["changed"] == f"{where} (key differs from the one in {changed}; host key changed?)"
    assert errors["missing"] == f"{where} ({missing} does not exist)"
    assert not os.path.exists(marker)
    assert sshd.accepted_logins() == 0


def test_unauthorised_client_key_is_a_clear_error(sshd: Sshd, tmp_path: Path) -> None:
    stranger, _ = make_keypair(str(tmp_path), "stranger")

    async def main() -> str | None:
        pool = SSHPool()
        try:
            return (await pool.run(ADDR, settings_for(sshd, key=stranger), "true", 5)).error
        finally:
            await pool.close()

    error = asyncio.run(main())
    assert error is not None
    assert error.startswith(f"ssh to 127.0.0.1:{sshd.port}: authentication failed for user {sshd.user}")


def test_concurrent_checks_respect_the_channel_cap_on_one_connection(sshd: Sshd) -> None:
    settings = settings_for(sshd)
    # Seen from the remote side too: each command counts the commands running with it.
    running = tempfile.mkdtemp(prefix="checkd-running-")
    os.chmod(running, 0o777)
    count = f"touch {running}/$$; n=$(ls {running} | wc -l); sleep 0.1; rm {running}/$$; echo $n"

    async def main() -> None:
        pool = SSHPool(max_channels=4)
        try:
            raws = await asyncio.gather(*(pool.run(ADDR, settings, count, 20) for i in range(50)))
            assert all(raw.exit_code == 0 for raw in raws), raws
            seen = [int(raw.stdout) for raw in raws]
            assert 2 <= max(seen) <= 4, seen
            stats = pool.stats()
            assert stats.peak_channels == 4          # the cap was reached, never passed
            assert stats.handshakes == 1 and stats.connections == 1
        finally:
            await pool.close()

    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(running)
    assert sshd.accepted_logins() == 1


def test_reconnect_backoff_doubles_and_answers_from_the_last_failure() -> None:
    clock = [1000.0]
    settings = SSHSettings(user="nobody", port=free_port(), known_hosts="/dev/null", connect_timeout=2)

    async def main() -> None:
        pool = SSHPool(backoff=1.0, max_backoff=4.0, now=lambda: clock[0])
        try:
            async def failures_after(advance: float) -> int:
                clock[0] += advance
                raw = await pool.run(ADDR, settings, "true", 5)
                assert raw.error is not None and raw.error.startswith(f"ssh to 127.0.0.1:{settings.port}: ")
                return pool.stats().connect_failures
            # Nothing listens on the port: each real attempt is "connection refused".
            assert await failures_after(0) == 1
            assert await failures_after(0.9) == 1      # inside 1s: no new attempt
            assert await failures_after(0.2) == 2      # then 2s
            assert await failures_after(1.9) == 2
            assert await failures_after(0.2) == 3      # then 4s, the cap
            assert await failures_after(3.9) == 3
            assert await failures_after(0.2) == 4
            assert await failures_after(3.9) == 4
            assert pool.stats().handshakes == 0
        finally:
            await pool.close()

    asyncio.run(main())
