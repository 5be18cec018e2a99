"""The Jabber channel against a real, throwaway prosody on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest

from checkd.engine.notify.jabber import JabberClient, format_message
from checkd.engine.notify.notification import Channel, DeliveryError, Kind, Notification
from tests.prosody import MUC, Prosody, Recorder, require_prosody

SUBJECT = "web1.ladc1/Disk / CRITICAL [ID#:42]"


def notification(kind: Kind = Kind.PROBLEM, state: str = "CRITICAL", to: str = "oncall@localhost",
                 event_id: int = 42) -> Notification:
    now = time.time()
    return Notification(
        event_id=event_id, kind=kind, host="web1.ladc1", service="Disk /", state=state,
        site="ladc1", output="DISK CRITICAL - free space: / 12 MiB (1%)", contact="oncall",
        channel=Channel.JABBER, address=to, since=now - 3900, created=now,
        runbook="https://wiki/runbooks/disk", author="alice" if kind is Kind.ACKNOWLEDGEMENT else "",
        comment="cleaning /var/log" if kind is Kind.ACKNOWLEDGEMENT else "")


@pytest.fixture
def prosody():
    require_prosody()
    server = Prosody()
    server.register("checkd", "s3cret")
    server.register("oncall", "pw")
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def client_for(server: Prosody, **extra) -> JabberClient:
    settings = {"jid": "checkd@localhost", "password": "s3cret",
                "server": f"127.0.0.1:{server.port}", "tls": False, **extra}
    return JabberClient(settings, send_timeout=2.0, backoff=(0.2, 1.0))


def first_line_is(subject: str):
    return lambda sender, body, is_room: body.split("\n", 1)[0] == subject


def test_message_format_starts_with_the_subject_and_carries_the_context():
    body = format_message(notification(Kind.ACKNOWLEDGEMENT))
    lines = body.split("\n")
    assert lines[0] == f"ACKNOWLEDGEMENT {SUBJECT}"
    assert lines[1].startswith("DISK CRITICAL")
    assert "Site: ladc1" in lines and "Duration: 1h05m" in lines
    assert "Runbook: https://wiki/runbooks/disk" in lines
    assert "Acknowledged by alice: cleaning /var/log" in lines
    assert lines[-1] == "Via: central"


def test_server_setting_defaults_to_the_jid_domain():
    c = JabberClient({"jid": "bot@example.org", "password": "x"})
    assert (c.host, c.port, c.tls, c.nick) == ("example.org", 5222, True, "bot")


def test_problem_and_recovery_arrive_with_the_subject_as_first_line(prosody):
    async def run():
        rec = Recorder("oncall@localhost", "pw", prosody.port)
        await rec.start()
        client = client_for(prosody)
        await client.start()
        try:
            assert await client.wait_connected(5)
            await client.send(notification())
            sender, body, is_room = await rec.wait_for(first_line_is(SUBJECT))
            assert sender == "checkd@localhost" and not is_room
            assert "Via: central" in body
            await client.send(notification(Kind.RECOVERY, "OK"))
            await rec.wait_for(first_line_is("RECOVERY web1.ladc1/Disk / OK [ID#:42]"))
        finally:
            await client.stop()
            await rec.stop()
    asyncio.run(run())


def test_client_reconnects_and_rejoins_the_room_after_a_server_restart(prosody):
    room = f"ops@{MUC}"

    async def run():
        client = client_for(prosody, room=room)
        await client.start()
        try:
            assert await client.wait_connected(5)
            prosody.restart()
            rec = Recorder("oncall@localhost", "pw", prosody.port, room=room, nick="oncall")
            await rec.start()
            try:
                # The drop is noticed, then the backoff brings the session back.
                assert await client.wait_connected(8), client.last_error
                await client.send(notification(event_id=43))
                await rec.wait_for(first_line_is("web1.ladc1/Disk / CRITICAL [ID#:43]"))
                await client.send_room("back")
                await rec.wait_for(lambda s, b, r: r and b == "back")
            finally:
                await rec.stop()
        finally:
            await client.stop()
    asyncio.run(run())


def test_send_while_the_server_is_down_raises_a_retryable_error(prosody):
    async def run():
        client = client_for(prosody)
        await client.start()
        try:
            assert await client.wait_connected(5)
            prosody.stop()
            await asyncio.sleep(0.3)          # let the client see the stream close
            started = time.monotonic()
            with pytest.raises(DeliveryError) as caught:
                await client.send(notification())
            assert time.monotonic() - started < client.send_timeout + 1
            assert caught.value.retryable
            message = str(caught.value)
            assert f"127.0.0.1:{prosody.port}" in message and "not connected" in message
        finally:
            await client.stop()
    asyncio.run(run())


def test_tls_required_refuses_a_server_without_starttls(prosody):
    async def run():
        client = client_for(prosody, tls=True)
        await client.start()
        try:
            assert not await client.wait_connected(2)
            with pytest.raises(DeliveryError, match="STARTTLS"):
                await client.send(notification())
        finally:
            await client.stop()
    asyncio.run(run())


def test_room_message_arrives_in_the_group_chat(prosody):
    room = f"ops@{MUC}"

    async def run():
        rec = Recorder("oncall@localhost", "pw", prosody.port, room=room, nick="oncall")
        await rec.start()
        client = client_for(prosody, room=room, nick="checkd")
        await client.start()
        try:
            assert await client.wait_connected(5)
            # connected means joined: the first room message must arrive.
            await client.send_room("checkd online")
            sender, body, is_room = await rec.wait_for(lambda s, b, r: r and b == "checkd online")
            assert sender == f"{room}/checkd"
        finally:
            await client.stop()
            await rec.stop()
    asyncio.run(run())


def test_starttls_refuses_an_untrusted_cert_and_delivers_with_its_ca():
    require_prosody()
    with Prosody(tls=True) as server:
        server.register("checkd", "s3cret")
        server.register("oncall", "pw")

        async def run():
            untrusting = client_for(server, tls=True)
            await untrusting.start()
            try:
                for _ in range(30):
                    if "CERTIFICATE_VERIFY_FAILED" in untrusting.last_error:
                        break
                    await asyncio.sleep(0.1)
                assert "CERTIFICATE_VERIFY_FAILED" in untrusting.last_error
                assert not untrusting.connected
            finally:
                await untrusting.stop()
            rec = Recorder("oncall@localhost", "pw", server.port, ca_file=server.cert)
            await rec.start()
            client = client_for(server, tls=True, ca_file=server.cert)
            await client.start()
            try:
                assert await client.wait_connected(5), client.last_error
                await client.send(notification())
                await rec.wait_for(first_line_is(SUBJECT))
            finally:
                await client.stop()
                await rec.stop()
        asyncio.run(run())
