"""Email channel against a real SMTP server (aiosmtpd on 127.0.0.1) and a real Maildir."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
import email.message
import email.policy
import mailbox
import os
import re
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
from aiosmtpd.controller import Controller

from checkd.engine.notify.email import EmailChannel
from checkd.engine.notify.notification import Channel, DeliveryError, Kind, Notification
from tests.helpers import free_port

SINCE = 1_700_000_000.0
PROBLEM = Notification(
    event_id=367768, kind=Kind.PROBLEM, host="mysql17.ladc1", service="Mysql Health Slave Check",
    state="CRITICAL", site="ladc1", output="CRITICAL - slave lag 900s", contact="ops",
    channel=Channel.EMAIL, address="ops@example.com", since=SINCE, created=SINCE + 3 * 3600 + 5 * 60,
    long_output="Seconds_Behind_Master: 900", runbook="https://wiki.example.com/mysql-lag",
    notes="Page the DBA on call", via="ladc1 poller, central unreachable")


class Recorder:
    """aiosmtpd handler that keeps every envelope it accepts."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


class Counter(Recorder):
    """Recorder that also counts connections (one EHLO each) and QUITs."""

    def __init__(self) -> None:
        super().__init__()
        self.ehlos = 0
        self.quits = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_QUIT(self, server, session, envelope) -> str:
        self.quits += 1
        return "221 Bye"


class RefusesRecipients(Recorder):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        return "550 5.1.1 no such user"


class TryLater(Recorder):
    async def handle_DATA(self, server, session, envelope) -> str:
        return "451 4.3.0 queue full, try again later"


class CountedTryLater(Counter, TryLater):
    pass


class ClosesAfterOneMail(Counter):
    """Answers a connection's second MAIL with 421, as a server does that timed out an
    idle client (Postfix: `421 4.4.2 Error: timeout exceeded`)."""

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if getattr(session, "mails", 0):
            return "421 4.4.2 Error: timeout exceeded"
        session.mails = 1
        envelope.mail_from = address
        return "250 OK"


@contextlib.contextmanager
def smtp_server(handler: Recorder) -> Iterator[int]:
    """A real SMTP server on a free port for one test; stopped however the test ends."""
    port = free_port()
    # Generous ready_timeout: start() probes the server, which is slow under CPU load.
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=30)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def smtp_channel(port: int) -> EmailChannel:
    return EmailChannel({"smtp_host": "127.0.0.1", "smtp_port": port,
                         "from": "checkd@example.com", "timeout": "10s"})


def received(handler: Recorder) -> email.message.EmailMessage:
    assert len(handler.envelopes) == 1
    return email.message_from_bytes(handler.envelopes[0].content, policy=email.policy.default)


async def send_and_close(channel: EmailChannel, *notes: Notification) -> None:
    try:
        for n in notes:
            await channel.send(n)
    finally:
        await channel.close()


def deliver(n: Notification) -> tuple[email.message.EmailMessage, list[str]]:
    handler = Recorder()
    with smtp_server(handler) as port:
        asyncio.run(send_and_close(smtp_channel(port), n))
    return received(handler), handler.envelopes[0].rcpt_tos


def test_service_problem_has_the_subject_and_headers_filters_rely_on() -> None:
    msg, rcpts = deliver(PROBLEM)
    assert msg["Subject"] == "mysql17.ladc1/Mysql Health Slave Check CRITICAL [ID#:367768]"
    assert msg["From"] == "checkd@example.com"
    assert msg["To"] == "ops@example.com" and rcpts == ["ops@example.com"]
    assert msg["X-Checkd-Event-ID"] == "367768"
    assert msg["X-Checkd-State"] == "CRITICAL"
    assert msg["X-Checkd-Site"] == "ladc1"
    assert msg["X-Checkd-Type"] == "PROBLEM"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].startswith("<") and msg["Date"]


def test_a_logged_notification_has_a_stable_message_id() -> None:
    """A repeat after a crash carries the same Message-ID, so mail stores keep one copy."""
    channel = smtp_channel(25)
    logged = dataclasses.replace(PROBLEM, log_id=42)
    assert channel.build(logged)["Message-ID"] == channel.build(logged)["Message-ID"] == \
        "<checkd.367768.42.problem@example.com>"
    assert channel.build(PROBLEM)["Message-ID"] != channel.build(PROBLEM)["Message-ID"]


def test_problem_body_tells_the_story() -> None:
    body = deliver(PROBLEM)[0].get_content()
    for text in ("CRITICAL - slave lag 900s", "Seconds_Behind_Master: 900", "ladc1",
                 "3h05m", "https://wiki.example.com/mysql-lag", "Page the DBA on call",
                 "367768", "ladc1 poller, central unreachable", "2023-11-14 22:13 UTC"):
        assert text in body


def test_host_down() -> None:
    n = dataclasses.replace(PROBLEM, event_id=42, host="web01", service=None, state="DOWN",
                            output="PING CRITICAL - Packet loss = 100%")
    msg, _ = deliver(n)
    assert msg["Subject"] == "web01 DOWN [ID#:42]"
    assert (msg["X-Checkd-State"], msg["X-Checkd-Type"], msg["X-Checkd-Event-ID"]) == ("DOWN", "PROBLEM", "42")
    assert "Service:" not in msg.get_content()


def test_recovery() -> None:
    n = dataclasses.replace(PROBLEM, kind=Kind.RECOVERY, state="OK", output="OK - slave lag 0s")
    msg, _ = deliver(n)
    assert msg["Subject"] == "RECOVERY mysql17.ladc1/Mysql Health Slave Check OK [ID#:367768]"
    assert (msg["X-Checkd-State"], msg["X-Checkd-Type"]) == ("OK", "RECOVERY")
    assert "OK again after 3h05m" in msg.get_content()


def test_acknowledgement_names_author_and_comment() -> None:
    n = dataclasses.replace(PROBLEM, kind=Kind.ACKNOWLEDGEMENT, author="jdoe",
                            comment="rebuilding the replica, ETA 1h")
    msg, _ = deliver(n)
    assert msg["Subject"] == "ACKNOWLEDGEMENT mysql17.ladc1/Mysql Health Slave Check CRITICAL [ID#:367768]"
    assert msg["X-Checkd-Type"] == "ACKNOWLEDGEMENT"
    body = msg.get_content()
    assert "jdoe" in body and "rebuilding the replica, ETA 1h" in body


def test_escalation_shows_its_level() -> None:
    msg, _ = deliver(dataclasses.replace(PROBLEM, kind=Kind.ESCALATION, escalation_level=2))
    assert msg["Subject"] == "ESCALATION mysql17.ladc1/Mysql Health Slave Check CRITICAL [ID#:367768]"
    assert "level 2" in msg.get_content()


def test_graph_png_arrives_intact() -> None:
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)
    msg, _ = deliver(dataclasses.replace(PROBLEM, graph_png=png))
    parts = list(msg.iter_attachments())
    assert len(parts) == 1
    assert parts[0].get_content_type() == "image/png"
    assert parts[0].get_content() == png
    assert "slave lag 900s" in msg.get_body(("plain",)).get_content()


def test_plugin_output_cannot_inject_headers() -> None:
    evil = "CRITICAL\r\nBcc: evil@example.com\r\n\r\nX-Injected: yes"
    n = dataclasses.replace(PROBLEM, output=evil, site="ladc1\r\nBcc: evil@example.com",
                            service="Check\nBcc: evil@example.com")
    msg, rcpts = deliver(n)
    assert rcpts == ["ops@example.com"]
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert "\n" not in msg["Subject"] and "\n" not in msg["X-Checkd-Site"]
    assert "Bcc: evil@example.com" in msg.get_content()   # still shown, as body text


def test_stopped_server_is_a_retryable_failure_naming_host_and_port() -> None:
    with smtp_server(Recorder()) as port:
        pass   # started and stopped: nothing listens there any more
    with pytest.raises(DeliveryError) as info:
        asyncio.run(smtp_channel(port).send(PROBLEM))
    assert info.value.retryable is True
    assert f"127.0.0.1:{port}" in str(info.value)


def test_permanent_rejection_is_not_retried() -> None:
    handler = RefusesRecipients()
    with smtp_server(handler) as port:
        with pytest.raises(DeliveryError) as info:
            asyncio.run(smtp_channel(port).send(PROBLEM))
    assert info.value.retryable is False
    assert f"127.0.0.1:{port}" in str(info.value) and "550" in str(info.value)
    assert handler.envelopes == []


def test_temporary_rejection_is_retried() -> None:
    with smtp_server(TryLater()) as port:
        with pytest.raises(DeliveryError) as info:
            asyncio.run(smtp_channel(port).send(PROBLEM))
    assert info.value.retryable is True
    assert f"127.0.0.1:{port}" in str(info.value) and "451" in str(info.value)


def test_one_connection_carries_many_messages() -> None:
    """Connections stay open between messages: 20 mails, 5 at a time, over 5 connections."""
    handler = Counter()

    async def run(channel: EmailChannel) -> None:
        for batch in range(4):
            await asyncio.gather(*(channel.send(dataclasses.replace(PROBLEM, event_id=batch * 5 + i))
                                   for i in range(5)))
        assert handler.quits == 0
        await channel.close()

    with smtp_server(handler) as port:
        asyncio.run(run(smtp_channel(port)))
    assert sorted(int(e.content.split(b"X-Checkd-Event-ID: ")[1].split(b"\r\n")[0])
                  for e in handler.envelopes) == list(range(20))
    assert handler.ehlos == 5
    assert handler.quits == 5   # close() says goodbye on each


def test_idle_connections_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("checkd.engine.notify.email.IDLE_CLOSE", 0.2)
    handler = Counter()

    async def run(channel: EmailChannel) -> None:
        await channel.send(PROBLEM)
        await asyncio.sleep(1.0)
        assert handler.quits == 1 and channel._idle == []
        await channel.send(PROBLEM)   # a new connection
        await channel.close()

    with smtp_server(handler) as port:
        asyncio.run(run(smtp_channel(port)))
    assert len(handler.envelopes) == 2 and handler.ehlos == 2 and handler.quits == 2


def test_a_server_restart_between_two_messages_costs_no_failure() -> None:
    """The kept connection died with the old server: the next message goes over a new one."""
    first, second = Counter(), Counter()
    port = free_port()

    async def run() -> None:
        old = Controller(first, hostname="127.0.0.1", port=port, ready_timeout=30)
        old.start()
        channel = smtp_channel(port)
        try:
            await channel.send(PROBLEM)
        finally:
            await asyncio.to_thread(old.stop)
        new = Controller(second, hostname="127.0.0.1", port=port, ready_timeout=30)
        await asyncio.to_thread(new.start)
        try:
            await channel.send(dataclasses.replace(PROBLEM, kind=Kind.RECOVERY, state="OK"))
            await channel.close()
        finally:
            await asyncio.to_thread(new.stop)

    asyncio.run(run())
    assert len(first.envelopes) == 1 and len(second.envelopes) == 1
    assert b"Subject: RECOVERY " in second.envelopes[0].content


def test_a_failure_on_a_fresh_connection_is_not_retried() -> None:
    """Only a reused connection gets a second try; a new one failing is the server's answer."""
    handler = CountedTryLater()

    async def run(channel: EmailChannel) -> None:
        with pytest.raises(DeliveryError) as info:
            await channel.send(PROBLEM)
        assert info.value.retryable is True and "451" in str(info.value)
        assert channel._idle == []   # the connection a send failed on is not kept
        await channel.close()

    with smtp_server(handler) as port:
        asyncio.run(run(smtp_channel(port)))
    assert handler.ehlos == 1


def test_421_on_a_kept_connection_is_retried_on_a_new_one() -> None:
    handler = ClosesAfterOneMail()
    with smtp_server(handler) as port:
        asyncio.run(send_and_close(smtp_channel(port), PROBLEM, dataclasses.replace(PROBLEM, event_id=2)))
    assert len(handler.envelopes) == 2 and handler.ehlos == 2


def read_maildir(path: Path) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(str(path), create=False)
    return [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in box.keys()]


def test_without_smtp_host_mail_goes_to_a_local_maildir(tmp_path: Path) -> None:
    spool = tmp_path / "spool"   # does not exist yet: the channel creates it
    channel = EmailChannel({"maildir": str(spool), "from": "checkd@example.com"})
    asyncio.run(channel.send(PROBLEM))
    asyncio.run(channel.send(dataclasses.replace(PROBLEM, kind=Kind.RECOVERY, state="OK")))
    subjects = sorted(m["Subject"] for m in read_maildir(spool))
    assert subjects == ["RECOVERY mysql17.ladc1/Mysql Health Slave Check OK [ID#:367768]",
                        "mysql17.ladc1/Mysql Health Slave Check CRITICAL [ID#:367768]"]


def test_operator_template_overrides_the_packaged_one(tmp_path: Path) -> None:
    overrides = tmp_path / "templates" / "email"
    overrides.mkdir(parents=True)
    (overrides / "notification.txt.j2").write_text("Custom: {{ n.target }} {{ n.state }} for {{ duration }}\n")
    channel = EmailChannel({"maildir": str(tmp_path / "spool")}, templates_dir=overrides)
    asyncio.run(channel.send(PROBLEM))
    [msg] = read_maildir(tmp_path / "spool")
    assert msg.get_content() == "Custom: mysql17.ladc1/Mysql Health Slave Check CRITICAL for 3h05m\n"


def test_summary_lists_its_events(tmp_path: Path) -> None:
    n = dataclasses.replace(PROBLEM, kind=Kind.SUMMARY, summary_ids=(11, 12, 13),
                            output="web01 DOWN\nweb02 DOWN\nweb03 DOWN")
    channel = EmailChannel({"maildir": str(tmp_path)})
    asyncio.run(channel.send(n))
    [msg] = read_maildir(tmp_path)
    assert msg["Subject"] == "SUMMARY 3 problems [ID#:11,12,13]"
    assert "web02 DOWN" in msg.get_content() and "11, 12, 13" in msg.get_content()


def test_broken_override_template_fails_at_startup(tmp_path: Path) -> None:
    (tmp_path / "notification.txt.j2").write_text("{% if %}\n")
    with pytest.raises(jinja2.TemplateSyntaxError):
        EmailChannel({"maildir": str(tmp_path / "spool")}, templates_dir=tmp_path)


def test_unknown_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="smtp_hots"):
        EmailChannel({"smtp_hots": "mail"})


# --- mail filters can sort: a subject tag and a sub-address per kind (docs/notifications.md) ---

TAGGED = "[checkd {label}] {subject}"


def tagged_channel(port: int, subject: str = TAGGED) -> EmailChannel:
    return EmailChannel({"smtp_host": "127.0.0.1", "smtp_port": port, "from": "checkd@example.com",
                         "timeout": "10s", "subject": subject})


def deliver_all(channel_for, *notes: Notification) -> list[tuple[str, str, list[str]]]:
    """(Subject, To, RCPT TO) of each note, as a real SMTP server received them."""
    handler = Recorder()
    with smtp_server(handler) as port:
        asyncio.run(send_and_close(channel_for(port), *notes))
    msgs = [email.message_from_bytes(e.content, policy=email.policy.default) for e in handler.envelopes]
    return [(m["Subject"], m["To"], e.rcpt_tos) for m, e in zip(msgs, handler.envelopes)]


def test_the_subject_tag_names_the_state_of_a_problem_and_the_kind_of_anything_else() -> None:
    esc = dataclasses.replace(PROBLEM, kind=Kind.ESCALATION, escalation_level=2, state="WARNING")
    rec = dataclasses.replace(PROBLEM, kind=Kind.RECOVERY, state="OK")
    ack = dataclasses.replace(PROBLEM, kind=Kind.ACKNOWLEDGEMENT, author="jdoe")
    summ = dataclasses.replace(PROBLEM, kind=Kind.SUMMARY, summary_ids=(11, 12), state="")
    subjects = [s for s, _, _ in deliver_all(tagged_channel, PROBLEM, esc, rec, ack, summ)]
    assert subjects == [
        "[checkd CRITICAL] mysql17.ladc1/Mysql Health Slave Check CRITICAL [ID#:367768]",
        "[checkd WARNING] ESCALATION mysql17.ladc1/Mysql Health Slave Check WARNING [ID#:367768]",
        "[checkd RECOVERY] RECOVERY mysql17.ladc1/Mysql Health Slave Check OK [ID#:367768]",
        "[checkd ACKNOWLEDGEMENT] ACKNOWLEDGEMENT mysql17.ladc1/Mysql Health Slave Check CRITICAL [ID#:367768]",
        "[checkd SUMMARY] SUMMARY 2 problems [ID#:11,12]"]
    [(other, _, _)] = deliver_all(lambda port: tagged_channel(port, "{subject} ({site} {type} {state})"), rec)
    assert other == "RECOVERY mysql17.ladc1/Mysql Health Slave Check OK [ID#:367768] (ladc1 RECOVERY OK)"


def test_without_a_subject_setting_the_subject_is_exactly_the_contract() -> None:
    notes = [PROBLEM, dataclasses.replace(PROBLEM, kind=Kind.RECOVERY, state="OK"),
             dataclasses.replace(PROBLEM, address="ops+{label}@example.com")]
    assert [s for s, _, _ in deliver_all(smtp_channel, *notes)] == [n.subject for n in notes] == [
        "mysql17.ladc1/Mysql Health Slave Check CRITICAL [ID#:367768]",
        "RECOVERY mysql17.ladc1/Mysql Health Slave Check OK [ID#:367768]",
        "mysql17.ladc1/Mysql Health Slave Check CRITICAL [ID#:367768]"]


def test_a_label_sub_address_goes_to_the_envelope_and_the_to_header() -> None:
    plus = dataclasses.replace(PROBLEM, address="ops+{label}@example.com")
    got = deliver_all(smtp_channel, plus, dataclasses.replace(plus, kind=Kind.RECOVERY, state="OK"),
                      dataclasses.replace(plus, host="web01", service=None, state="DOWN"),
                      dataclasses.replace(plus, kind=Kind.SUMMARY, summary_ids=(1, 2), state=""), PROBLEM)
    assert [(to, rcpts) for _, to, rcpts in got] == [
        ("ops+critical@example.com", ["ops+critical@example.com"]),
        ("ops+recovery@example.com", ["ops+recovery@example.com"]),
        ("ops+down@example.com", ["ops+down@example.com"]),
        ("ops+summary@example.com", ["ops+summary@example.com"]),
        ("ops@example.com", ["ops@example.com"])]         # a plain address stays as it is


def test_a_subject_template_that_would_lose_the_id_or_names_an_unknown_field_is_refused() -> None:
    for bad, why in (("[checkd {label}]", "must contain {subject}"),
                     ("{subject} {lable}", 'unknown placeholder {lable} (did you mean "label"?)'),
                     ("{subject.__class__}", "unknown placeholder"), ("{subject} {", "a literal brace")):
        with pytest.raises(ValueError, match=re.escape(why)):
            tagged_channel(25, bad)


# The storm fast path (set_text, the repeating headers' cache) writes the very bytes the
# email package writes: mail filters and stores see no difference.
@pytest.mark.parametrize("body", ["", "one line", "ends\n", "crlf\r\nand cr\rand lf\n", "vt\x0b ff\x0c fs\x1c\n",
                                  "non-ASCII é\n", "a" * 998 + "\n", "a" * 999 + "\n", "=?utf-8?q?x?=\n", ".\n"])
def test_a_fast_built_body_is_byte_for_byte_what_set_content_writes(body: str) -> None:
    from checkd.engine.notify.email import _POLICY, _WIRE_POLICY, set_text
    slow = email.message.EmailMessage(policy=_POLICY)
    slow["Subject"] = "s"
    slow.set_content(body)
    fast = email.message.EmailMessage(policy=_POLICY)
    fast["Subject"] = "s"
    set_text(fast, body)
    assert fast.as_bytes(policy=_WIRE_POLICY) == slow.as_bytes(policy=_WIRE_POLICY)


@pytest.mark.parametrize("name,value", [("From", "checkd@example.com"), ("From", "Checkd Bot <checkd@example.com>"),
                                        ("To", "ops+critical@example.com"), ("To", "Öps Tëam <ops@example.com>"),
                                        ("To", "a.b <x@example.com>"), ("X-Checkd-Site", "läb"),
                                        ("X-Checkd-Site", "x" * 1200)])
def test_a_repeating_header_is_folded_as_the_default_policy_folds_it(name: str, value: str) -> None:
    from checkd.engine.notify.email import _POLICY, _WIRE_POLICY, _header
    for policy in (_POLICY, _WIRE_POLICY):
        std = email.policy.default.clone(max_line_length=998, cte_type="7bit", linesep=policy.linesep)
        want = std.fold_binary(name, std.header_factory(name, value))
        assert policy.fold_binary(name, _header(name, value)) == want
        assert policy.fold_binary(name, _header(name, value)) == want      # the cached one too
