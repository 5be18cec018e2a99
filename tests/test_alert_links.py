"""Alerts that tell the story, end to end: a real central process with real RRD files,
aiosmtpd and prosody (mod_http_file_share on a loopback http port). The mail and the
Jabber alert link to the event's page, which answers; the Jabber alert's graph
arrives as an out-of-band URL serving the PNG; without an upload service the text
still goes out. A poller alerting on its own links to central's page, which answers
once central is back."""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
from pathlib import Path

from checkd.engine.notify.email import EmailChannel
from checkd.engine.notify.links import Links, base_url
from checkd.config import load_node
from checkd.config.node import NodeConfig
from tests.central_proc import CentralProc, result, running, start_poller
from tests.helpers import require_plugins, wait_for
from tests.notify_env import MailSink, wait_logged
from tests.png import SIGNATURE, decode
from tests.prosody import Prosody, Recorder, require_prosody
from tests.rrdcached import require_rrd
from tests.test_email import PROBLEM
from tests.test_graphs import history, rrd_node

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
contacts:
  - {name: ops, email: ops@example.com, jabber: ops@localhost}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1}
services:
  - {host: db1.ladc1, description: Load, command: "check_dummy!0!ok", max_attempts: 1, contacts: [ops]}
  - {host: db1.ladc1, description: Swap, command: "check_dummy!0!ok", max_attempts: 1, contacts: [ops]}
"""


def fetch(url: str) -> tuple[int, str, str, bytes]:
    """(status, final URL after redirects, content type, body)."""
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.geturl(), r.headers.get_content_type(), r.read()


def body_of(mail) -> str:
    part = mail.get_body(preferencelist=("plain",)) if mail.is_multipart() else mail
    return part.get_content().replace("\r\n", "\n")


def setup(tmp: Path, prosody: Prosody) -> tuple[MailSink, CentralProc]:
    prosody.register("checkd", "botpw")
    prosody.register("ops", "opspw")
    rrd_dir = tmp / "rrd"
    now = int(time.time()) // 60 * 60 - 60
    for service, label in (("Load", "load1"), ("Swap", "used")):
        history(rrd_dir, "db1.ladc1", service, label, 60, now, lambda t: 1.0 + (t % 3600) / 900, days=1)
    sink = MailSink()
    sink.start()
    extra = (rrd_node(rrd_dir)
             + f"  email: {{smtp_host: 127.0.0.1, smtp_port: {sink.port}, from: checkd@example.com, timeout: 5s}}\n"
             + f"  jabber: {{jid: checkd@localhost, password: botpw, server: '127.0.0.1:{prosody.port}', "
               "tls: false}\n")
    return sink, CentralProc(tmp / "c", objects=OBJECTS, extra=extra)


def critical(c: CentralProc, seq: int, service: str, perfdata: str) -> None:
    st, _ = c.post_results("poller-ladc1", [result(seq, "db1.ladc1", service, 2, f"{service} CRITICAL",
                                                   perfdata=perfdata)])
    assert st == 200


def test_mail_and_jabber_link_to_the_event_and_jabber_shows_the_graph(tmp_path: Path) -> None:
    require_rrd()
    require_prosody()
    with Prosody(upload=True) as prosody:
        sink, central = setup(tmp_path, prosody)

        async def scenario() -> None:
            phone = Recorder("ops@localhost", "opspw", prosody.port)
            await phone.start()
            try:
                async with running(central) as c:
                    critical(c, 1, "Load", "load1=9;4;5;0")
                    [mail] = await asyncio.to_thread(sink.wait, lambda m: "Load CRITICAL" in m["Subject"])
                    eid = int(mail["X-Checkd-Event-ID"])
                    link = f"{c.url}/event/{eid}"
                    assert f"Details:  {link}\n" in body_of(mail)
                    _, text, _ = await phone.wait_for(lambda s, b, r: b.startswith(mail["Subject"]), 15)
                    assert f"Details: {link}" in text.split("\n")
                    sender, url, body = await phone.wait_oob(15)
                    assert sender == "checkd@localhost" and body == url and url.endswith(f"checkd-{eid}.png")
                    status, _, kind, png = await asyncio.to_thread(fetch, url)
                    assert (status, kind, png[:8]) == (200, "image/png", SIGNATURE)
                    width, height, _ = decode(png)
                    assert 600 < width < 800 and 200 < height < 400        # the alert's 600x200 graph
                    [attached] = list(mail.iter_attachments())
                    assert attached.get_content() == png                    # drawn once for both channels
                    # The link answers: the event page sends the reader on to the service's page.
                    status, final, kind, page = await asyncio.to_thread(fetch, link)
                    assert status == 200 and kind == "text/html"
                    assert final == f"{c.url}/service/db1.ladc1/Load" and b"Load" in page
                    rows = await asyncio.to_thread(wait_logged, c, eid)
                    assert sorted((r["channel"], r["status"]) for r in rows) == [("email", "sent"),
                                                                                 ("jabber", "sent")]
                    # The recovery links to the same event.
                    st, _ = c.post_results("poller-ladc1", [result(2, "db1.ladc1", "Load", 0, "LOAD OK",
                                                                   perfdata="load1=1;4;5;0")])
                    assert st == 200
                    [rec] = await asyncio.to_thread(sink.wait, lambda m: m["X-Checkd-Type"] == "RECOVERY")
                    assert f"Details:  {link}\n" in body_of(rec)
                    _, text, _ = await phone.wait_for(lambda s, b, r: b.startswith("RECOVERY"), 15)
                    assert f"Details: {link}" in text.split("\n")
            finally:
                await phone.stop()

        try:
            asyncio.run(scenario())
        finally:
            sink.stop()


def test_without_an_upload_service_the_jabber_alert_goes_out_with_one_log_line(tmp_path: Path) -> None:
    require_rrd()
    require_prosody()
    with Prosody() as prosody:
        sink, central = setup(tmp_path, prosody)

        async def scenario() -> None:
            phone = Recorder("ops@localhost", "opspw", prosody.port)
            await phone.start()
            try:
                async with running(central) as c:
                    for seq, (service, perf) in enumerate((("Load", "load1=9;4;5;0"), ("Swap", "used=9;4;5;0")), 1):
                        critical(c, seq, service, perf)
                        [mail] = await asyncio.to_thread(sink.wait, lambda m: f"{service} CRITICAL" in m["Subject"])
                        assert [p.get_content_type() for p in mail.iter_attachments()] == ["image/png"]
                        eid = int(mail["X-Checkd-Event-ID"])
                        _, text, _ = await phone.wait_for(lambda s, b, r: b.startswith(mail["Subject"]), 15)
                        assert f"Details: {c.url}/event/{eid}" in text.split("\n")
                        rows = await asyncio.to_thread(wait_logged, c, eid)
                        assert {r["status"] for r in rows} == {"sent"}
                    await asyncio.sleep(0.5)
                    assert phone.oob == []
                    assert central.log.read_text().count("the server has no upload service") == 1
            finally:
                await phone.stop()

        try:
            asyncio.run(scenario())
        finally:
            sink.stop()


POLLER_OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/repl; echo \\"state $s\\"; exit $s'"
contacts:
  - {{name: ops, email: ops@example.com}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, contacts: [ops]}}
services:
  - {{host: db1.ladc1, description: Replication, command: "from_file", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops]}}
"""


def test_a_poller_alerting_on_its_own_links_to_centrals_page(tmp_path: Path) -> None:
    require_plugins()
    state = tmp_path / "repl"
    state.write_text("0\n")
    sink = MailSink()
    sink.start()
    c = CentralProc(tmp_path, objects=POLLER_OBJECTS.format(dir=tmp_path),
                    extra=f"  email: {{smtp_host: 127.0.0.1, smtp_port: {sink.port}, from: checkd@example.com}}\n")
    poller: subprocess.Popen[bytes] | None = None
    log = tmp_path / "poller.log"
    try:
        c.start()
        poller = start_poller(tmp_path, c.url, extra=(
            f"  autonomy_after: 2s\n  email: {{smtp_host: 127.0.0.1, smtp_port: {sink.port}, "
            "from: checkd-ladc1@example.com}\n"))
        wait_for(lambda: "event IDs" in log.read_text(), 20, "an ID block")
        c.stop(kill=True)
        state.write_text("2\n")
        [mail] = sink.wait(lambda m: "Replication CRITICAL" in m["Subject"], timeout=20)
        assert mail["From"] == "checkd-ladc1@example.com"
        eid = int(mail["X-Checkd-Event-ID"])
        link = f"{c.url}/event/{eid}"
        assert f"Details:  {link}\n" in body_of(mail)
        # Unreachable while the poller alerts; once central is back and has the event, it answers.
        c.start()
        wait_for(lambda: any(p["id"] == eid for p in c.get("/api/v1/problems")["problems"]), 20,
                 "central to adopt the poller's event")
        status, final, _, _ = fetch(link)
        assert status == 200 and final == f"{c.url}/service/db1.ladc1/Replication"
    finally:
        if poller is not None and poller.poll() is None:
            poller.terminate()
            poller.wait(timeout=30)
        c.stop()
        sink.stop()


# --- where links point (no daemons) ---------------------------------------------------------

def node(role: str, **kw) -> NodeConfig:
    return NodeConfig(role=role, file="/etc/checkd/node.yaml", state_dir=Path("/x"), objects=Path("/x"), **kw)


def test_links_follow_public_url_else_the_listen_address_else_the_poller_s_central() -> None:
    import socket
    assert base_url(node("central", public_url="https://noc.example.com/")) == "https://noc.example.com"
    assert base_url(node("central", listen=("10.0.0.5", 8080))) == "http://10.0.0.5:8080"
    assert base_url(node("central", listen=("10.0.0.5", 0)), port=4711) == "http://10.0.0.5:4711"
    assert base_url(node("central", listen=("0.0.0.0", 8080))) == f"http://{socket.gethostname()}:8080"
    assert base_url(node("central", listen=("::1", 8080))) == "http://[::1]:8080"
    assert base_url(node("poller", central="https://central.example.com:8080/")) == "https://central.example.com:8080"
    assert base_url(node("poller", central="https://10.0.0.5:8080",
                         public_url="https://noc.example.com")) == "https://noc.example.com"


def test_a_poller_node_file_may_set_public_url(tmp_path: Path) -> None:
    (tmp_path / "objects").mkdir()
    f = tmp_path / "poller.yaml"
    f.write_text("poller:\n  name: p\n  site: ladc1\n  central: https://10.0.0.5:8080\n  token: t\n"
                 "  state_dir: s\n  objects: objects\n  public_url: https://noc.example.com\n")
    n, _ = load_node(str(f))
    assert n.public_url == "https://noc.example.com"


def test_a_summary_mail_links_to_the_overview(tmp_path: Path) -> None:
    import dataclasses

    from checkd.engine.notify.dispatch import summary
    channel = EmailChannel({"maildir": str(tmp_path / "mail")}, links=Links(lambda: "https://noc.example.com"))
    one = channel.render(PROBLEM)
    assert f"Details:  https://noc.example.com/event/{PROBLEM.event_id}\n" in one
    many = channel.render(summary([PROBLEM, dataclasses.replace(PROBLEM, event_id=PROBLEM.event_id + 1)],
                                  time.time()))
    assert "Details:   https://noc.example.com/\n" in many
    assert "Details" not in EmailChannel({"maildir": str(tmp_path / "mail")}).render(PROBLEM)
