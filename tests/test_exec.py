"""Plugins run through exec behave as under Nagios, including when they misbehave."""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from checkd.plugin_output import MAX_OUTPUT_BYTES, PluginOutput, interpret
from checkd.run.exec import SHELL_CHARS, command_argv, run_exec
from checkd.states import Status
from tests.helpers import PLUGINDIR, require_plugins


def run(line: str, timeout: float = 10.0) -> PluginOutput:
    return interpret(asyncio.run(run_exec(command_argv(line), timeout)))


def forking_script(tmp: Path, name: str, rest: str) -> tuple[Path, str]:
    """A bash script that forks a sleeper (exec -a gives it a name, the marker, we can find),
    then runs `rest`; returns the script and the marker."""
    marker = f"checkd-test-{name}-{os.getpid()}"
    script = tmp / f"{name}.sh"
    script.write_text(f"#!/bin/bash\n(exec -a {marker} sleep 300) &\n{rest}")
    script.chmod(0o755)
    return script, marker


def pids_with_marker(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture(autouse=True)
def _plugins() -> None:
    require_plugins()


def test_real_plugins_give_their_state_text_and_perfdata() -> None:
    assert run(f"{PLUGINDIR}/check_dummy 0 'all fine'") == PluginOutput(Status.OK, "OK: all fine", "", "")
    assert run(f"{PLUGINDIR}/check_dummy 1 slow").status is Status.WARNING
    assert run(f"{PLUGINDIR}/check_dummy 2 broken").status is Status.CRITICAL
    assert run(f"{PLUGINDIR}/check_dummy 3 what").status is Status.UNKNOWN
    refused = run(f"{PLUGINDIR}/check_tcp -H 127.0.0.1 -p 1")
    assert refused.status is Status.CRITICAL and "Connection refused" in refused.output
    load = run(f"{PLUGINDIR}/check_load -w 1000,1000,1000 -c 2000,2000,2000")
    assert load.status is Status.OK and "load1=" in load.perfdata and "load15=" in load.perfdata
    disk = run(f"{PLUGINDIR}/check_disk -w 1% -c 1% -p /")
    assert disk.status in (Status.OK, Status.WARNING, Status.CRITICAL) and "/=" in disk.perfdata


def test_shell_is_used_only_when_the_command_needs_one() -> None:
    assert command_argv("/bin/echo 'a b' c") == ["/bin/echo", "a b", "c"]
    assert command_argv("/bin/echo a | tr a b") == ["/bin/sh", "-c", "/bin/echo a | tr a b"]
    assert run("/bin/echo a | tr a b").output == "b"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    script, marker = forking_script(tmp_path, "sleeper", "sleep 300\n")     # and then hangs itself
    started = time.monotonic()
    result = run(str(script), timeout=0.5)
    assert time.monotonic() - started < 5
    assert result.status is Status.UNKNOWN and "timed out after 0.5s" in result.output
    time.sleep(0.2)
    assert pids_with_marker(marker) == [], "a process of the timed-out plugin survived"


def test_a_child_left_behind_by_a_finished_plugin_is_reaped(tmp_path: Path) -> None:
    script, marker = forking_script(tmp_path, "orphan", "echo 'OK - done'\nexit 0\n")
    started = time.monotonic()
    result = run(str(script))
    assert result == PluginOutput(Status.OK, "OK - done", "", "")
    assert time.monotonic() - started < 5, "waited for the orphan to close our pipe"
    time.sleep(0.2)
    assert pids_with_marker(marker) == []


def test_an_event_handler_leaves_what_it_started_running_unless_it_times_out(tmp_path: Path) -> None:
    # The child keeps our stdout open, as a daemon started without redirecting its output would.
    script, marker = forking_script(tmp_path, "kept", "echo restarted\n${1:-true}\n")
    started = time.monotonic()
    # A deadline of its own: waiting for the pipe would hang, not fail.
    raw = asyncio.run(asyncio.wait_for(run_exec([str(script)], 10.0, keep_children=True), 5))
    assert (raw.exit_code, raw.stdout) == (0, b"restarted\n")
    assert time.monotonic() - started < 2, "waited for the child to close our pipe"
    [kept] = pids_with_marker(marker)
    os.kill(kept, 9)
    hung = asyncio.run(asyncio.wait_for(run_exec([str(script), "sleep 300"], 0.5, keep_children=True), 5))
    assert hung.timed_out
    time.sleep(0.2)
    assert pids_with_marker(marker) == [], "a handler past its timeout is killed with its process group"


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    result = run("printf 'caf\\351 \\377 ok|t=1s\\n'")
    assert result.status is Status.OK
    assert result.output == "caf\ufffd \ufffd ok" and result.perfdata == "t=1s"


def test_ten_megabytes_of_output_is_capped() -> None:
    result = run("head -c 10000000 /dev/urandom | base64 -w 0")
    assert result.status is Status.OK
    assert len(result.output) <= 4096
    assert "output truncated" in result.long_output
    assert len(result.long_output) <= MAX_OUTPUT_BYTES + 100


def test_no_output() -> None:
    assert run("/bin/true") == PluginOutput(Status.OK, "(no output returned from plugin)", "", "")
    failed = run("echo 'it broke' >&2; exit 2")
    assert failed.status is Status.CRITICAL and failed.output == "(no output on stdout) stderr: it broke"


def test_exit_code_127_missing_plugin_and_unknown_codes() -> None:
    missing = run("/no/such/plugin -w 1")
    assert missing.status is Status.UNKNOWN and "No such file or directory" in missing.output
    r127 = run("echo gone; exit 127")
    assert r127.status is Status.UNKNOWN and r127.output.startswith("(return code of 127 is out of bounds - plugin may be missing)")
    r42 = run("sh -c 'exit 42'")
    assert r42.status is Status.UNKNOWN and "return code of 42" in r42.output


def test_plugin_killed_by_a_signal() -> None:
    result = interpret(asyncio.run(run_exec(["/bin/sh", "-c", "echo partial; kill -SEGV $$"], 5)))
    assert result.status is Status.UNKNOWN
    assert result.output == "(plugin killed by SIGSEGV) partial"


def test_many_concurrent_checks_do_not_interfere() -> None:
    async def main() -> list[PluginOutput]:
        lines = [f"{PLUGINDIR}/check_dummy {i % 4} 'check {i}'" for i in range(200)]
        raws = await asyncio.gather(*(run_exec(command_argv(ln), 10) for ln in lines))
        return [interpret(r) for r in raws]
    results = asyncio.run(main())
    for i, r in enumerate(results):
        assert r.status == Status(i % 4) and r.output.endswith(f"check {i}")


def test_command_lines_split_exactly_like_shlex() -> None:
    """The fast path for plain lines must give what shlex gives, whitespace of every kind included."""
    rnd = random.Random(7)
    alphabet = "ab \t\r\n'\"\x0b\xa0\x1c-=%\u2003"
    lines = ["/usr/lib/nagios/plugins/check_dummy 0 ok", "check_disk -w '20%' -c 10%", "  a\tb  "]
    lines += ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(12))) for _ in range(20000)]
    for line in lines:
        if any(c in SHELL_CHARS for c in line):
            continue
        try:
            expect = shlex.split(line)
        except ValueError:
            expect = ["/bin/sh", "-c", line]
        assert command_argv(line) == expect, repr(line)
