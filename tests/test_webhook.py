"""Webhook channel against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from checkd.engine.notify.notification import Channel, DeliveryError, Kind, Notification
from checkd.engine.notify.webhook import WebhookChannel, redact
from tests.helpers import free_port

SINCE = 1_700_000_000.0
PROBLEM = Notification(
    event_id=367768, kind=Kind.PROBLEM, host="mysql17.ladc1", service="Mysql Health Slave Check",
    state="CRITICAL", site="ladc1", output="CRITICAL - slave lag 900s", contact="ops",
    channel=Channel.WEBHOOK, address="http://127.0.0.1:1/hook", since=SINCE,
    created=SINCE + 3 * 3600 + 5 * 60, long_output="Seconds_Behind_Master: 900",
    runbook="https://wiki.example.com/mysql-lag", notes="Page the DBA on call",
    via="ladc1 poller, central unreachable")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def http_server(handler: Handler) -> AsyncIterator[str]:
    """A real HTTP server on a free port; yields the base URL; stopped however the test ends."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def to(url: str, n: Notification = PROBLEM) -> Notification:
    return dataclasses.replace(n, address=url)


async def send(channel: WebhookChannel, n: Notification) -> None:
    try:
        await channel.send(n)
    finally:
        await channel.close()


def test_posts_json_body_and_headers() -> None:
    seen: list[tuple[web.Request, object, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        raw = await request.read()
        seen.append((request, await request.json(), raw))
        return web.Response(status=204)

    async def main() -> None:
        async with http_server(handler) as base:
            await send(WebhookChannel({"user_agent": "checkd-test/1"}), to(f"{base}/hook?token=abc"))

    asyncio.run(main())
    assert len(seen) == 1
    request, body, _ = seen[0]
    assert request.method == "POST"
    assert request.path == "/hook" and request.query_string == "token=abc"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Checkd-Event-ID"] == "367768"
    assert request.headers["User-Agent"] == "checkd-test/1"
    assert body == {
        "event_id": 367768,
        "notification_id": 0,
        "type": "PROBLEM",
        "subject": "mysql17.ladc1/Mysql Health Slave Check CRITICAL [ID#:367768]",
        "host": "mysql17.ladc1",
        "service": "Mysql Health Slave Check",
        "state": "CRITICAL",
        "site": "ladc1",
        "output": "CRITICAL - slave lag 900s",
        "long_output": "Seconds_Behind_Master: 900",
        "since": SINCE,
        "created": SINCE + 11100,
        "duration_s": 11100.0,
        "escalation_level": 1,
        "author": "",
        "comment": "",
        "runbook": "https://wiki.example.com/mysql-lag",
        "notes": "Page the DBA on call",
        "via": "ladc1 poller, central unreachable",
        "summary_ids": [],
    }


def test_host_summary_and_unicode() -> None:
    bodies: list[object] = []

    async def handler(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.Response(text="ok")

    n = dataclasses.replace(PROBLEM, kind=Kind.SUMMARY, service=None, state="DOWN",
                            output="Ping: 100% verlust — ✗", summary_ids=(11, 12, 13))

    async def main() -> None:
        async with http_server(handler) as base:
            await send(WebhookChannel(), to(f"{base}/", n))

    asyncio.run(main())
    [body] = bodies
    assert body["type"] == "SUMMARY" and body["service"] is None
    assert body["summary_ids"] == [11, 12, 13]
    assert body["subject"] == "SUMMARY 3 problems [ID#:11,12,13]"
    assert body["output"] == "Ping: 100% verlust — ✗"


def test_extra_headers_from_settings_arrive() -> None:
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(status=200)

    channel = WebhookChannel({"headers": {"Authorization": "Bearer s3cret", "X-Team": "dba"},
                              "timeout": "5s"})

    async def main() -> None:
        async with http_server(handler) as base:
            await send(channel, to(f"{base}/hook"))

    asyncio.run(main())
    [request] = seen
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["X-Team"] == "dba"
    assert request.headers["Content-Type"] == "application/json"


def deliver_expecting_error(handler: Handler, path: str = "/hook",
                            settings: dict | None = None) -> tuple[DeliveryError, str]:
    async def main() -> tuple[DeliveryError, str]:
        async with http_server(handler) as base:
            with pytest.raises(DeliveryError) as info:
                await send(WebhookChannel(settings), to(f"{base}{path}"))
            return info.value, base

    return asyncio.run(main())


def test_500_then_200_is_retryable_then_delivered() -> None:
    calls: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) == 1:
            return web.Response(status=500, text="boom")
        return web.Response(status=200)

    async def main() -> tuple[DeliveryError, str]:
        async with http_server(handler) as base:
            channel = WebhookChannel()
            try:
                with pytest.raises(DeliveryError) as info:
                    await channel.send(to(f"{base}/hook?token=abc"))
                await channel.send(to(f"{base}/hook?token=abc"))   # same session, retried
            finally:
                await channel.close()
            return info.value, base

    err, base = asyncio.run(main())
    assert err.retryable is True
    assert "500" in str(err)
    assert f"{base}/hook" in str(err) and "token" not in str(err)
    assert len(calls) == 2


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_retryable_statuses(status: int) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status)

    err, _ = deliver_expecting_error(handler)
    assert err.retryable is True and str(status) in str(err)


def test_404_is_not_retryable_and_shows_body_excerpt() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such channel: #dba\n" + "x" * 500)

    err, base = deliver_expecting_error(handler)
    assert err.retryable is False
    message = str(err)
    assert "404" in message and f"{base}/hook" in message
    assert "no such channel: #dba x" in message   # newline collapsed
    excerpt = message.split("no such channel", 1)[1]
    assert len("no such channel" + excerpt) == 200


def test_3xx_is_not_followed_and_not_retryable() -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/hook":
            return web.Response(status=302, headers={"Location": "http://other.example:8080/x?key=k"})
        return web.Response(status=200)

    err, _ = deliver_expecting_error(handler)
    assert err.retryable is False
    assert "302" in str(err) and "http://other.example:8080/x" in str(err)
    assert "key=k" not in str(err)
    assert hits == ["/hook"]


def test_server_down_is_retryable_and_names_url() -> None:
    port = free_port()   # nothing listens there
    channel = WebhookChannel()
    with pytest.raises(DeliveryError) as info:
        asyncio.run(send(channel, to(f"http://user:pw@127.0.0.1:{port}/hook?token=abc")))
    assert info.value.retryable is True
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/hook" in message
    assert "pw" not in message and "token" not in message


def test_timeout_is_retryable() -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(2)   # short: aiohttp 3.8's cleanup waits for running handlers
        return web.Response(status=200)

    err, base = deliver_expecting_error(handler, settings={"timeout": "0.3s"})
    assert err.retryable is True
    assert "timed out" in str(err) and f"{base}/hook" in str(err)


def test_bad_address_is_not_retryable() -> None:
    for address in ("ops@example.com", "ftp://example.com/x", "http:///nohost"):
        with pytest.raises(DeliveryError) as info:
            asyncio.run(send(WebhookChannel(), to(address)))
        assert info.value.retryable is False


@pytest.mark.parametrize("settings", [
    {"url": "http://x"},
    {"timeout": "soon"},
    {"timeout": 0},
    {"headers": ["Authorization: x"]},
    {"headers": {"X-Evil": "a\r\nBcc: b"}},
    {"headers": {"Content-Type": "text/plain"}},
    {"headers": {"Bad Name": "x"}},
])
def test_bad_settings_rejected(settings: dict) -> None:
    with pytest.raises(ValueError, match="webhook"):
        WebhookChannel(settings)


def test_redact() -> None:
    assert redact("https://u:p@hooks.example.com:8443/a/b?token=x#f") == "https://hooks.example.com:8443/a/b"
    assert redact("http://[::1]:80/x") == "http://[::1]:80/x"
