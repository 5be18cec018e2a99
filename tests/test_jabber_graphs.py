"""Trend graphs in Jabber alerts, against a real prosody with mod_http_file_share on a
loopback http port: the text first, then the graph as an XEP-0066 out-of-band URL
that serves the PNG; without an upload service, or with one that hangs, the text
still arrives at once and one line is logged."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from checkd.engine.notify.jabber import JabberClient, format_message
from tests.png import SIGNATURE, decode, encode
from tests.prosody import UPLOAD, Prosody, Recorder, require_prosody
from tests.test_jabber import SUBJECT, first_line_is, notification

PNG = encode(60, 20, (200, 30, 30))


def server(upload: bool = True, **kw) -> Prosody:
    require_prosody()
    p = Prosody(upload=upload, **kw)
    p.register("checkd", "s3cret")
    p.register("oncall", "pw")
    p.register("second", "pw")
    p.start()
    return p


def client_for(p: Prosody, **extra) -> JabberClient:
    settings = {"jid": "checkd@localhost", "password": "s3cret", "server": f"127.0.0.1:{p.port}",
                "tls": False, **extra}
    return JabberClient(settings, send_timeout=2.0, backoff=(0.2, 1.0),
                        links=lambda n: f"https://noc.example.com/event/{n.event_id}")


@contextlib.asynccontextmanager
async def connected(p: Prosody, ca_file: str | None = None,
                    **client_kw: Any) -> AsyncIterator[tuple[Recorder, JabberClient]]:
    """oncall's phone and checkd's client, both connected to `p`; both stopped after."""
    tls = {"ca_file": ca_file} if ca_file else {}
    rec = Recorder("oncall@localhost", "pw", p.port, **tls)
    await rec.start()
    client = client_for(p, **client_kw, **tls)
    await client.start()
    try:
        assert await client.wait_connected(5), client.last_error
        yield rec, client
    finally:
        await client.stop()
        await rec.stop()


def with_graph(**kw):
    return dataclasses.replace(notification(**kw), graph_png=PNG)


def fetch(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.headers.get_content_type(), r.read()


def upload_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "checkd.engine.notify.upload" and r.levelno >= logging.WARNING]


def test_the_message_links_to_the_event_page():
    body = format_message(notification(), "https://noc.example.com/event/42").split("\n")
    assert body[0] == SUBJECT
    assert "Details: https://noc.example.com/event/42" in body and body[-1] == "Via: central"
    assert not any(line.startswith("Details:") for line in format_message(notification()).split("\n"))


def test_the_graph_arrives_as_an_out_of_band_url_that_serves_the_png():
    p = server()
    try:
        async def run():
            oncall = Recorder("oncall@localhost", "pw", p.port)
            second = Recorder("second@localhost", "pw", p.port, nick="second")
            await oncall.start()
            await second.start()
            client = client_for(p)
            await client.start()
            try:
                assert await client.wait_connected(5)
                # As the dispatcher's two Jabber workers would: at the same time.
                await asyncio.gather(client.send(with_graph()), client.send(with_graph(to="second@localhost")))
                _, text, _ = await oncall.wait_for(first_line_is(SUBJECT))
                assert "Details: https://noc.example.com/event/42" in text
                sender, url, body = await oncall.wait_oob()
                # Body and OOB URL the same: what Conversations & co. need to show it inline.
                assert sender == "checkd@localhost" and body == url
                assert url.startswith(f"http://127.0.0.1:{p.http_port}/") and url.endswith("checkd-42.png")
                kind, data = await asyncio.to_thread(fetch, url)
                assert kind == "image/png" and data[:8] == SIGNATURE and data == PNG
                assert decode(data)[:2] == (60, 20)
                # The text came first, the image after it.
                assert [b for _, b, _ in oncall.messages][-2:] == [text, url]
                _, url2, _ = await second.wait_oob()
                assert url2 == url                          # one problem, one upload
                await client.send(with_graph(event_id=42, to="oncall@localhost"))   # a re-notification
                await oncall.wait_oob(predicate=lambda *_: len(oncall.oob) == 2)
                assert oncall.oob[1][1] == url and p.log().count("Issuing upload slot") == 1
            finally:
                await client.stop()
                await oncall.stop()
                await second.stop()
        asyncio.run(run())
    finally:
        p.cleanup()


def test_without_an_upload_service_the_text_arrives_and_one_line_is_logged(caplog):
    caplog.set_level(logging.INFO)
    p = server(upload=False)
    try:
        async def run():
            async with connected(p) as (rec, client):
                for eid in (42, 43, 44):
                    started = time.monotonic()
                    await client.send(with_graph(event_id=eid))
                    assert time.monotonic() - started < 2.0
                    await rec.wait_for(first_line_is(f"web1.ladc1/Disk / CRITICAL [ID#:{eid}]"))
                await asyncio.sleep(0.5)
                assert rec.oob == []
        asyncio.run(run())
    finally:
        p.cleanup()
    [line] = upload_warnings(caplog)
    assert "no upload service" in line and "without graphs" in line


def test_an_upload_that_hangs_is_cut_off_and_paused(caplog):
    # The slot's URLs name a port that accepts connections and never answers.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(8)
    p = server(upload_base_url=f"http://127.0.0.1:{blackhole.getsockname()[1]}/share/")
    try:
        async def run():
            async with connected(p, upload_timeout="1s") as (rec, client):
                started = time.monotonic()
                sending = asyncio.ensure_future(client.send(with_graph()))
                # The text does not wait for the upload ...
                await rec.wait_for(first_line_is(SUBJECT), timeout=0.9)
                await sending
                assert time.monotonic() - started < 2.5      # ... and the upload is bounded
                # The next alerts do not try again (and wait again) while uploads are paused.
                started = time.monotonic()
                await client.send(with_graph(event_id=43))
                assert time.monotonic() - started < 0.5
                await rec.wait_for(first_line_is("web1.ladc1/Disk / CRITICAL [ID#:43]"))
                assert rec.oob == []
        asyncio.run(run())
    finally:
        p.cleanup()
        blackhole.close()
    [line] = upload_warnings(caplog)
    assert "no upload within 1s" in line and "without graphs for 300s" in line


def test_with_tls_an_http_upload_url_is_refused_and_the_text_arrives(caplog):
    p = server(tls=True)
    try:
        async def run():
            async with connected(p, tls=True, ca_file=p.cert) as (rec, client):
                await client.send(with_graph())
                await rec.wait_for(first_line_is(SUBJECT))
                await asyncio.sleep(0.5)
                assert rec.oob == []
        asyncio.run(run())
    finally:
        p.cleanup()
    [line] = upload_warnings(caplog)
    assert f"{UPLOAD} offered 'http://127.0.0.1:{p.http_port}/" in line and "only https://" in line


def test_graphs_false_sends_the_text_only():
    p = server()
    try:
        async def run():
            async with connected(p, graphs=False) as (rec, client):
                assert not client.carries_graphs
                await client.send(with_graph())
                await rec.wait_for(first_line_is(SUBJECT))
                await asyncio.sleep(0.5)
                assert rec.oob == [] and "Issuing upload slot" not in p.log()
        asyncio.run(run())
    finally:
        p.cleanup()


@pytest.mark.parametrize("service", [UPLOAD, "nothing.localhost"])
def test_a_configured_upload_service_is_used_without_discovery(service, caplog):
    p = server()
    try:
        async def run():
            async with connected(p, upload_service=service) as (rec, client):
                await client.send(with_graph())
                await rec.wait_for(first_line_is(SUBJECT))
                if service == UPLOAD:
                    await rec.wait_oob()
                else:
                    await asyncio.sleep(0.5)
                    assert rec.oob == []
        asyncio.run(run())
    finally:
        p.cleanup()
    lines = upload_warnings(caplog)
    if service == UPLOAD:
        assert lines == []
    else:
        [line] = lines
        assert "nothing.localhost refused a slot" in line
