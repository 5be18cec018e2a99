"""checkd's own plugins: run as scripts and embedded they give the same result,
and they judge like their monitoring-plugins namesakes (run side by side)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp.web
import pytest

from checkd.plugin_output import PluginOutput, RawRun, interpret
from checkd.run.embedded import EmbeddedRunner
from checkd.states import Status
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "plugins"
NAGIOS = Path("/usr/lib/nagios/plugins")
SHIPPED = ["check_load", "check_disk", "check_tcp", "check_http", "check_procs", "check_file_age"]


async def script_raw(name: str, *args: str) -> RawRun:
    """The plugin as a separate process, with the venv's python (as a poller's exec would)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, str(PLUGINS / f"{name}.py"), *args,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    return RawRun(exit_code=proc.returncode, stdout=out, stderr=err)


async def nagios(name: str, *args: str) -> PluginOutput:
    proc = await asyncio.create_subprocess_exec(str(NAGIOS / name), *args,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    return interpret(RawRun(exit_code=proc.returncode, stdout=out, stderr=err))


async def both(name: str, *args: str) -> tuple[RawRun, RawRun]:
    """(script, embedded) runs of one plugin with the same arguments."""
    embedded = await EmbeddedRunner([PLUGINS]).run(name, list(args), timeout=30)
    return await script_raw(name, *args), embedded


def shape(text: str) -> str:
    """Text with numbers blanked: for values that move between two runs (load, time)."""
    return re.sub(r"\d+(\.\d+)?", "N", text)


def labels(perfdata: str) -> list[str]:
    return [item.split("=")[0] for item in perfdata.split()]


def assert_same_shape(script: RawRun, embedded: RawRun) -> PluginOutput:
    a, b = interpret(script), interpret(embedded)
    assert script.exit_code == embedded.exit_code, (script, embedded)
    assert (a.status, shape(a.output), labels(a.perfdata)) == (b.status, shape(b.output), labels(b.perfdata))
    return a


@pytest.mark.parametrize("name", SHIPPED)
def test_every_plugin_is_an_executable_script_ending_with_run_script(name: str) -> None:
    path = PLUGINS / f"{name}.py"
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env python3\n")
    assert os.access(path, os.X_OK)
    assert text.rstrip().endswith('if __name__ == "__main__":\n    run_script(check)')


@pytest.mark.parametrize("name", SHIPPED)
def test_bad_arguments_are_unknown_and_identical_in_both_modes(name: str) -> None:
    script, embedded = asyncio.run(both(name, "--no-such-option"))
    assert script == embedded
    assert interpret(embedded).status is Status.UNKNOWN
    assert interpret(embedded).output.startswith(f"UNKNOWN: {name}: ")


def test_file_age_of_a_file_of_known_age(tmp_path: Path) -> None:
    path = tmp_path / "stamp"
    path.write_bytes(b"x" * 1234)
    past = time.time() - 1000
    os.utime(path, (past, past))
    for args, status in [(("-w", "2000", "-c", "3000"), Status.OK), (("-w", "500", "-c", "3000"), Status.WARNING),
                         (("-w", "100", "-c", "200"), Status.CRITICAL), (("-W", "2000"), Status.CRITICAL)]:
        script, embedded = asyncio.run(both("check_file_age", "-f", str(path), *args))
        out = assert_same_shape(script, embedded)
        assert out.status is status, out
        assert re.fullmatch(rf"FILE_AGE \w+: {path} is 10\d\d seconds old and 1234 bytes", out.output)
        assert labels(out.perfdata) == ["age", "size"]


def test_file_age_of_a_missing_file_is_critical_like_the_real_one(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    script, embedded = asyncio.run(both("check_file_age", "-f", missing))
    assert script == embedded
    real = asyncio.run(nagios("check_file_age", "-f", missing))
    assert interpret(embedded).output == real.output == f"FILE_AGE CRITICAL: File not found - {missing}"
    assert interpret(embedded).status is real.status is Status.CRITICAL


@pytest.mark.parametrize("args", [("-w", "500,400,300", "-c", "900,800,700"), ("-r", "-w", "500", "-c", "900")])
def test_load_matches_script_and_real_check_load(args: tuple[str, ...]) -> None:
    script, embedded = asyncio.run(both("check_load", *args))
    out = assert_same_shape(script, embedded)
    real = asyncio.run(nagios("check_load", *args))
    assert out.status is real.status is Status.OK
    assert shape(out.output) == shape(real.output)
    assert labels(out.perfdata) == labels(real.perfdata)


def test_disk_percent_and_absolute_thresholds_match_real_check_disk() -> None:
    for args in [("-w", "1%", "-c", "0%", "-p", "/"), ("-w", "999999", "-c", "999998", "-u", "TB", "-p", "/"),
                 ("-w", "100%", "-c", "0%", "-p", "/")]:
        script, embedded = asyncio.run(both("check_disk", *args))
        out = assert_same_shape(script, embedded)
        real = asyncio.run(nagios("check_disk", *args))
        assert out.status is real.status, (out, real)
        assert labels(out.perfdata) == labels(real.perfdata) == ["/"]
        assert shape(out.output) == shape(real.output)


def test_disk_on_a_missing_path_is_critical_like_the_real_one() -> None:
    args = ("-w", "10%", "-c", "5%", "-p", "/no/such/mount")
    script, embedded = asyncio.run(both("check_disk", *args))
    assert script == embedded
    real = asyncio.run(nagios("check_disk", *args))
    assert interpret(embedded).output == real.output
    assert real.status is Status.CRITICAL


def test_procs_counts_a_process_the_test_started_like_the_real_one() -> None:
    marker = "4242.123"  # sleep's argument, unique enough to find only our process
    sleeper = subprocess.Popen(["sleep", marker])
    try:
        for args in [("-a", marker), ("-C", "sleep", "-a", marker, "-w", "0", "-c", "5"),
                     ("-u", str(os.getuid()), "-a", marker, "-c", "0:0"), ("-s", "Z", "-a", marker)]:
            script, embedded = asyncio.run(both("check_procs", *args))
            assert script == embedded
            real = asyncio.run(nagios("check_procs", *args))
            out = interpret(embedded)
            assert (out.status, out.output) == (real.status, real.output)
            assert labels(out.perfdata) == ["procs"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_tcp_to_a_local_listener_is_ok_and_a_closed_port_critical_like_the_real_one() -> None:
    # The kernel completes the handshake for a listening socket; no accept loop needed.
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = str(server.getsockname()[1])
        script, embedded = asyncio.run(both("check_tcp", "-H", "127.0.0.1", "-p", port, "-w", "5", "-c", "9"))
        out = assert_same_shape(script, embedded)
        assert out.status is Status.OK
        assert re.fullmatch(rf"TCP OK - \d\.\d{{3}} second response time on 127\.0\.0\.1 port {port}", out.output)
        assert labels(out.perfdata) == ["time"]
        real = asyncio.run(nagios("check_tcp", "-H", "127.0.0.1", "-p", port))
        assert real.status is Status.OK and shape(real.output) == shape(out.output)

    closed = str(free_port())
    script, embedded = asyncio.run(both("check_tcp", "-H", "127.0.0.1", "-p", closed))
    assert script == embedded
    real = asyncio.run(nagios("check_tcp", "-H", "127.0.0.1", "-p", closed))
    assert interpret(embedded).status is real.status is Status.CRITICAL
    assert interpret(embedded).output.endswith(real.output)  # "connect to address ...: Connection refused"


async def _http_cases() -> list[tuple[tuple[str, ...], RawRun, RawRun, PluginOutput]]:
    async def page(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="hello checkd")

    async def missing(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(status=404, text="nope")

    async def broken(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(status=500, text="boom")

    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.get("/", page), aiohttp.web.get("/missing", missing),
                    aiohttp.web.get("/broken", broken)])
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = str(runner.addresses[0][1])
    results = []
    try:
        for args in [("-I", "127.0.0.1", "-p", port), ("-H", "127.0.0.1", "-p", port, "-u", "/missing"),
                     ("-I", "127.0.0.1", "-p", port, "-u", "/broken"),
                     ("-I", "127.0.0.1", "-p", port, "-s", "checkd"),
                     ("-I", "127.0.0.1", "-p", port, "-s", "absent"),
                     ("-I", "127.0.0.1", "-p", port, "-e", "200"), ("-I", "127.0.0.1", "-p", port, "-e", "404"),
                     ("-H", "127.0.0.1", "-p", str(free_port()))]:
            script, embedded = await both("check_http", *args)
            results.append((args, script, embedded, await nagios("check_http", *args)))
    finally:
        await runner.cleanup()
    return results


def test_http_against_a_local_server_matches_script_and_real_check_http() -> None:
    expected = [Status.OK, Status.WARNING, Status.CRITICAL, Status.OK, Status.CRITICAL, Status.OK,
                Status.CRITICAL, Status.CRITICAL]
    for (args, script, embedded, real), status in zip(asyncio.run(_http_cases()), expected, strict=True):
        out = assert_same_shape(script, embedded)
        assert out.status is real.status is status, (args, out, real)
        # A refused connection: check_http prints the socket error first, its verdict second.
        real_text = real.long_output if real.output.startswith("connect to") else real.output
        assert shape(out.output) == shape(real_text), (args, out, real)
        if out.perfdata:
            assert labels(out.perfdata) == labels(real.perfdata) == ["time", "size"]
