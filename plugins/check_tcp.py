#!/usr/bin/env python3
"""check_tcp: can a TCP connection be opened, and how fast.

Mirrors monitoring-plugins' check_tcp: `-H HOST -p PORT -t TIMEOUT -w SEC -c SEC`,
`TCP OK - 0.000 second response time on HOST port N`, perfdata time. Async, so
embedded it waits on the poller's loop and never holds a thread.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

from checkd.pluginapi import ArgumentParser, Outcome, Perf, Status, evaluate, run_script


async def check(args: list[str]) -> Outcome:
    parser = ArgumentParser(prog="check_tcp")
    parser.add_argument("-H", "--hostname", required=True)
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("-t", "--timeout", type=float, default=10.0, help="seconds before the connection fails")
    parser.add_argument("-w", "--warning", type=float, help="response time in seconds")
    parser.add_argument("-c", "--critical", type=float, help="response time in seconds")
    opts = parser.parse_args(args)

    started = time.monotonic()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(opts.hostname, opts.port), opts.timeout)
    except asyncio.TimeoutError:
        return Outcome(Status.CRITICAL, f"Socket timeout after {opts.timeout:g} seconds")
    except socket.gaierror:
        text = f"Invalid hostname, address or socket: {opts.hostname}"
        return Outcome(Status.CRITICAL, text, label="TCP", sep=" - ")
    except OSError as e:
        # asyncio words refusals as "Connect call failed (...)"; say it as check_tcp does.
        reason = os.strerror(e.errno) if e.errno else str(e)
        text = f"connect to address {opts.hostname} and port {opts.port}: {reason}"
        return Outcome(Status.CRITICAL, text, label="TCP", sep=" - ")
    elapsed = time.monotonic() - started
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass  # the peer reset the connection we were closing anyway; the check passed

    warn = f"{opts.warning:f}" if opts.warning is not None else None
    crit = f"{opts.critical:f}" if opts.critical is not None else None
    status = evaluate(elapsed, warn, crit)
    text = f"{elapsed:.3f} second response time on {opts.hostname} port {opts.port}"
    perf = [Perf("time", round(elapsed, 6), "s", warn, crit, 0, opts.timeout)]
    return Outcome(status, text, perf, label="TCP", sep=" - ")


if __name__ == "__main__":
    run_script(check)
