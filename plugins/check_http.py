#!/usr/bin/env python3
"""check_http: fetch a URL and judge the status, content and response time.

Mirrors monitoring-plugins' check_http: `-H host -I ip -p port -u URI -S -e
EXPECT -s STRING -t TIMEOUT -w SEC -c SEC`; text `HTTP OK: HTTP/1.1 200 OK -
N bytes in T second response time`, perfdata time and size. Async (aiohttp).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from checkd.pluginapi import ArgumentParser, CheckError, Outcome, Perf, Status, evaluate, run_script, worst


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="check_http")
    parser.add_argument("-H", "--hostname", help="virtual host name (Host header; connect to it without -I)")
    parser.add_argument("-I", "--IP-address", dest="address", help="address to connect to")
    parser.add_argument("-p", "--port", type=int)
    parser.add_argument("-u", "--url", default="/", help="URI to GET")
    parser.add_argument("-S", "--ssl", action="store_true", help="HTTPS (certificates not verified, as check_http)")
    parser.add_argument("-e", "--expect", help="comma-separated strings, one must be in the status line")
    parser.add_argument("-s", "--string", help="string the body must contain")
    parser.add_argument("-t", "--timeout", type=float, default=10.0)
    parser.add_argument("-w", "--warning", type=float, help="response time in seconds")
    parser.add_argument("-c", "--critical", type=float, help="response time in seconds")
    return parser


def _status_state(code: int) -> Status:
    """check_http's default: 1xx-3xx OK, 4xx WARNING, 5xx CRITICAL."""
    return Status.OK if code < 400 else Status.WARNING if code < 500 else Status.CRITICAL


async def check(args: list[str]) -> Outcome:
    opts = _parser().parse_args(args)
    if not opts.hostname and not opts.address:
        raise CheckError("check_http: You must specify a server address or host name")
    port = opts.port or (443 if opts.ssl else 80)
    scheme = "https" if opts.ssl else "http"
    url = f"{scheme}://{opts.address or opts.hostname}:{port}{opts.url}"
    headers = {"Host": opts.hostname if port in (80, 443) else f"{opts.hostname}:{port}"} if opts.hostname else {}

    started = time.monotonic()
    try:
        timeout = aiohttp.ClientTimeout(total=opts.timeout)
        # HTTP/1.0, as check_http asks: servers answer it in kind, so both report the same.
        session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False, version=aiohttp.HttpVersion10)
        async with session:
            async with session.get(url, headers=headers, ssl=False if opts.ssl else None,
                                   allow_redirects=False) as resp:
                body = await resp.read()
                status_line = f"HTTP/{resp.version.major}.{resp.version.minor} {resp.status} {resp.reason}"
                code = resp.status
                # check_http counts the whole response, headers included.
                size = len(status_line) + 2 + sum(len(k) + len(v) + 4 for k, v in resp.raw_headers) + 2 + len(body)
    except asyncio.TimeoutError:
        return Outcome(Status.CRITICAL, f"Socket timeout after {opts.timeout:g} seconds")
    except aiohttp.ClientConnectorError:
        return Outcome(Status.CRITICAL, "Unable to open TCP socket", label="HTTP", sep=" - ")
    except aiohttp.ClientError as e:
        return Outcome(Status.CRITICAL, f"HTTP request failed: {type(e).__name__}: {e}", label="HTTP", sep=" - ")
    elapsed = time.monotonic() - started

    if opts.expect and not any(e.strip() in status_line for e in opts.expect.split(",")):
        text = f"Invalid HTTP response received from host on port {port}: {status_line}"
        return Outcome(Status.CRITICAL, text, label="HTTP", sep=" - ")
    states = [Status.OK if opts.expect else _status_state(code)]
    text = f'Status line output matched "{opts.expect}"' if opts.expect else status_line
    if opts.string is not None and opts.string.encode() not in body:
        states.append(Status.CRITICAL)
        text += f" - string '{opts.string}' not found on '{url}'"
    warn = f"{opts.warning:f}" if opts.warning is not None else None
    crit = f"{opts.critical:f}" if opts.critical is not None else None
    states.append(evaluate(elapsed, warn, crit))
    text += f" - {size} bytes in {elapsed:.3f} second response time"
    perf = [Perf("time", round(elapsed, 6), "s", warn, crit, 0, opts.timeout),
            Perf("size", size, "B", min=0)]
    return Outcome(worst(states), text, perf, label="HTTP")


if __name__ == "__main__":
    run_script(check)
