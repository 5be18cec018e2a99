"""Hostile input, as an outsider holding a poller's or an operator's token would send it
(issue 27, items 1, 2, 3 and 7; docs/security-input.md): one real central with a real SMTP
server and a webhook receiver on loopback, and a real poller where the item needs one."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkd.forwarder import Forwarder
from checkd.spool import Spool
from tests.central_proc import POLLER_TOKENS, CentralProc, result, start_poller
from tests.helpers import free_port, wait_for
from tests.notify_env import MailSink, node_extra

LADC1 = "poller-ladc1"
DISK = ("db1.ladc1", "Disk /")


class Receiver(http.server.BaseHTTPRequestHandler):
    """Counts POSTs per path: the configured webhook (/hook) and the attacker's (/steal)."""

    posts: dict[str, int] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Receiver.posts[self.path] = Receiver.posts.get(self.path, 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def objects(hook: str) -> str:
    return f"""\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
contacts:
  - {{name: ops, email: ops@example.com}}
  - {{name: hook, webhook: "{hook}"}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, site: ladc1, contacts: [ops]}}
  - {{name: web2.nydc1, address: 127.0.0.1, site: nydc1, contacts: [ops]}}
services:
  - {{host: db1.ladc1, description: Disk /, command: "check_dummy!0!ok", interval: 0.5s, contacts: [ops]}}
  - {{host: db1.ladc1, description: Queue, command: "check_dummy!0!ok", interval: 0.5s, contacts: [hook]}}
  - {{host: web2.nydc1, description: Disk /, command: "check_dummy!0!ok", contacts: [ops]}}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CentralProc, MailSink, str]]:
    """Central (one for the module), its SMTP sink, and the webhook receiver's base URL."""
    sink = MailSink()
    sink.start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    c = CentralProc(tmp_path_factory.mktemp("sec"), objects=objects(base + "/hook"), extra=node_extra(sink.port))
    try:
        with c:
            yield c, sink, base
    finally:
        server.shutdown()
        server.server_close()
        sink.stop()


def log_row(n: int, eid: int, host: str, service: str | None, contact: str, channel: str, address: str,
            kind: str = "PROBLEM") -> dict[str, Any]:
    """A notification_log row as a poller hands it over, `pending`: central is to send it."""
    now = time.time()
    payload = {"event_id": eid, "kind": kind, "host": host, "service": service, "state": "CRITICAL",
               "site": "ladc1", "output": "disk full", "contact": contact, "channel": channel, "address": address,
               "since": now - 60, "created": now - 30, "long_output": "", "escalation_level": 1, "author": "",
               "comment": "", "runbook": "", "notes": "", "via": "ladc1 poller, central unreachable",
               "summary_ids": [], "log_id": n, "template": ""}
    return {"id": n, "event_id": eid, "kind": kind, "contact": contact, "channel": channel, "number": 1,
            "level": 1, "created": now - 30, "status": "pending", "done": None, "attempts": 0, "error": None,
            "payload": json.dumps(payload)}


def test_a_poller_token_cannot_make_central_send_mail_or_webhooks_anywhere(env) -> None:
    """Item 1: handed-over rows are limited to the poller's own site and ID blocks and to the
    contacts and channels configured here; the address is always central's own."""
    c, sink, base = env
    tok = POLLER_TOKENS[LADC1][0]
    _, block = c.call("POST", "/api/v1/ids/reserve", {"count": 10}, token=tok)
    eid = block["first"]
    adopt = "/api/v1/notifications/adopt"
    # Another site's host: the whole handover is refused, nothing sent.
    st, doc = c.call("POST", adopt, {"rows": [log_row(1, eid, "web2.nydc1", "Disk /", "ops", "email",
                                                      "mallory@evil.example")]}, token=tok)
    assert st == 403 and "belongs to site 'nydc1'" in doc["error"] and "nothing adopted" in doc["error"], doc
    # Its own check, a configured contact, a payload naming the attacker's mailbox and URL;
    # a contact central does not have; a channel the contact has not.
    rows = [log_row(2, eid, *DISK, "ops", "email", "mallory@evil.example"),
            log_row(3, eid, "db1.ladc1", "Queue", "hook", "webhook", base + "/steal"),
            log_row(4, eid, *DISK, "mallory", "email", "mallory@evil.example"),
            log_row(5, eid, *DISK, "ops", "webhook", base + "/steal")]
    st, doc = c.call("POST", adopt, {"rows": rows}, token=tok)
    assert (st, doc) == (200, {"adopted": 2, "events": 0, "actions": 0, "skipped": 2}), doc
    sink.wait(lambda m: f"[ID#:{eid}]" in m["Subject"])
    time.sleep(0.5)                 # anything else decided would be on its way by now
    to = [a for rcpts in sink.rcpts for a in rcpts]
    assert [a for a in to if a != "ops@example.com"] == []          # mails to unknown addresses: 0
    assert to == ["ops@example.com"]
    wait_for(lambda: Receiver.posts.get("/hook"), 10, "the webhook at the configured URL")
    assert Receiver.posts == {"/hook": 1}                           # the attacker's URL: never
    assert "not a configured contact and channel here: skipped" in c.log.read_text()


def test_a_poisoned_seq_is_refused_and_the_pollers_later_results_are_stored(env) -> None:
    """Item 2: one result with seq 2^63-1 posted with a poller's token is refused (409, nothing
    stored); the poller's own later results go on being stored, none counted as a duplicate.
    The poller's operator API takes the same bounded inputs as central's (item 3)."""
    c, sink, _ = env
    seq = lambda: next(p["seq"] for p in c.get("/api/v1/status")["pollers"] if p["name"] == LADC1)  # noqa: E731
    last_check = lambda: disk(c)["last_check"] or 0  # noqa: E731
    status_port = free_port()
    poller = start_poller(c.dir, c.url, extra=f"  status_listen: 127.0.0.1:{status_port}\n"
                                             f"  api_tokens: {{ops: op-secret}}\n  email: {{smtp_host: 127.0.0.1, "
                                             f"smtp_port: {sink.port}, from: checkd-ladc1@example.com}}\n")
    try:
        wait_for(lambda: seq() > 0 and last_check(), 20, "the poller's first results at central")
        st, doc = c.post_results(LADC1, [result(2**63 - 1, *DISK, 2, "poisoned")])
        assert st == 409 and "past the last seq stored from poller-ladc1" in doc["error"], (st, doc)
        before, checked = seq(), last_check()
        assert before < 2**62
        wait_for(lambda: seq() > before + 2 and last_check() > checked, 10, "the poller's later results stored")
        assert disk(c)["output"] != "poisoned"
        assert "batch refused, nothing stored" in c.log.read_text()
        # The poller's own operator calls take the same bounded durations: 400 naming the field.
        for raw in (b'{"host": "db1.ladc1", "enabled": false, "duration": NaN}',
                    b'{"host": "db1.ladc1", "enabled": false, "duration": 1e308}'):
            req = urllib.request.Request(f"http://127.0.0.1:{status_port}/api/v1/notifications", data=raw,
                                         headers={"Authorization": "Bearer op-secret"}, method="POST")
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            assert e.value.code == 400 and b"duration" in e.value.read()
    finally:
        poller.terminate()
        poller.wait(timeout=30)
    # A poller of its own whose seq jumped that far (a broken spool): central refuses its batch,
    # and the poller keeps it in its spool to send again.
    mark = seq()
    asyncio.run(_refused_batch_is_kept(c, c.dir / "far-spool", mark + 10**9))
    assert seq() == mark


def disk(c: CentralProc) -> dict[str, Any]:
    """Central's view of db1.ladc1/Disk /."""
    return next(s for s in c.get("/api/v1/status?host=db1.ladc1")["services"] if s["service"] == DISK[1])


async def _refused_batch_is_kept(c: CentralProc, directory: Path, last_seq: int) -> None:
    directory.mkdir()
    (directory / "last_seq").write_text(str(last_seq))
    spool = Spool(directory)
    await spool.open()
    await spool.append_many([{k: v for k, v in result(0, *DISK, 0, f"r{i}").items() if k != "seq"}
                             for i in range(3)])
    refusals = lambda: c.log.read_text().count("batch refused, nothing stored")  # noqa: E731
    before = refusals()
    forwarder = Forwarder(spool, c.url, POLLER_TOKENS[LADC1][0], LADC1, "ladc1", backoff_cap=0.3)
    await forwarder.start()
    try:
        deadline = time.monotonic() + 10
        while refusals() < before + 2 and time.monotonic() < deadline:      # refused, and again
            await asyncio.sleep(0.05)
        assert not forwarder.connected and forwarder.backlog == 3
        assert [r["output"] for r in spool.read(0, 10)] == ["r0", "r1", "r2"]
    finally:
        await forwarder.close()
        await spool.close()


HOSTILE = [     # (method, path, raw body, status, the error names)
    ("POST", "/api/v1/notifications", b'{"host": "db1.ladc1", "enabled": false, "duration": NaN}', 400, "duration"),
    ("POST", "/api/v1/notifications", b'{"host": "db1.ladc1", "enabled": false, "duration": Infinity}', 400,
     "duration"),
    ("POST", "/api/v1/notifications", b'{"host": "db1.ladc1", "enabled": false, "duration": 1e308}', 400,
     "duration"),
    ("POST", "/api/v1/deployments", b'{"action": "start", "hosts": ["db1.ladc1"], "module": "m", "revision": "1",'
     b' "mute_for": NaN}', 400, "mute_for"),
    ("POST", "/api/v1/deployments", b'{"action": "start", "hosts": ["db1.ladc1"], "module": "m", "revision": "2",'
     b' "mute_for": 1e308}', 400, "mute_for"),
    ("POST", "/api/v1/downtimes", b'{"host": "db1.ladc1", "end": NaN}', 400, "end"),
    ("POST", "/api/v1/downtimes", b'{"host": "db1.ladc1", "end": 1e308}', 400, "end"),
    ("POST", "/api/v1/downtimes", b'{"host": "db1.ladc1", "duration": Infinity}', 400, "duration"),
    ("POST", "/api/v1/downtimes", b'{"host": "db1.ladc1", "duration": "2h", "flexible": 1e308}', 400, "flexible"),
    ("POST", "/api/v1/ack", b'{"host": "db1.ladc1", "expires": NaN}', 400, "expires"),
]


def test_operator_numbers_that_are_not_finite_or_bounded_change_nothing_in_memory_or_on_disk(env) -> None:
    """Item 3: each hostile number is a 4xx naming its field; memory and disk agree (the same
    answers before and after a restart), no answer carries a bare NaN, every page renders."""
    c, _, _ = env
    assert c.write("POST", "/api/v1/downtimes", {"host": "web2.nydc1", "duration": "1h", "comment": "ok"})[0] == 201

    def state() -> tuple[Any, ...]:
        raw = {p: urllib.request.urlopen(c.url + p, timeout=10).read()
               for p in ("/api/v1/downtimes", "/api/v1/deployments", "/api/v1/status?host=db1.ladc1")}
        for p, body in raw.items():
            assert b"NaN" not in body and b"Infinity" not in body, p
        docs = {p: json.loads(b) for p, b in raw.items()}
        return (sorted(d["id"] for d in docs["/api/v1/downtimes"]["downtimes"]),
                sorted(d["id"] for d in docs["/api/v1/deployments"]["deployments"]),
                docs["/api/v1/status?host=db1.ladc1"]["hosts"][0]["muted"])

    before = state()
    for method, path, raw, status, field in HOSTILE:
        st, doc = c.call(method, path, raw=raw, token="ops-secret")
        assert st == status and field in doc["error"], (path, raw, st, doc)
    assert state() == before
    assert c.call("GET", "/api/v1/events/" + "9" * 23)[0] == 404       # beyond SQLite's INTEGER: no such event
    assert c.write("POST", "/api/v1/notifications", {"event_id": 2**63, "enabled": False})[0] == 400
    for page in ("/", "/host/db1.ladc1", "/service/db1.ladc1/Disk%20/"):
        assert urllib.request.urlopen(c.url + page, timeout=10).status == 200
    c.restart()
    assert state() == before


def test_text_over_its_cap_is_refused_naming_the_field_and_the_limit(env) -> None:
    """Item 7: comments, names and results' output are capped at the API as a poller caps a
    plugin's output: 413 (or 400 for a results batch) naming field and limit, nothing stored."""
    c, _, _ = env
    big = "x" * 300_000
    status = lambda: c.get("/api/v1/status?host=db1.ladc1")["hosts"]  # noqa: E731
    before = status()
    for path, body, field in (
            ("/api/v1/ack", {"host": "db1.ladc1", "comment": big}, "comment: at most 2,000 characters"),
            ("/api/v1/comments", {"host": "db1.ladc1", "text": big}, "text: at most 2,000 characters"),
            ("/api/v1/comments", {"host": "db1.ladc1", "text": "hi", "author": big}, "author: at most 200"),
            ("/api/v1/downtimes", {"host": "db1.ladc1", "duration": "1h", "comment": big},
             "comment: at most 2,000 characters"),
            ("/api/v1/deployments", {"action": "start", "hosts": ["db1.ladc1"], "module": big, "revision": "1"},
             "module: at most 200")):
        st, doc = c.write("POST", path, body)
        assert st == 413 and field in doc["error"], (path, st, doc)
    for key, size, limit in (("output", 5000, "4,096"), ("long_output", 70_000, "65,536"),
                             ("perfdata", 70_000, "65,536")):
        st, doc = c.post_results(LADC1, [result(10**9, *DISK, 2, **{key: "y" * size})])
        assert st == 400 and f"{key}: at most {limit} characters" in doc["items"][0]["reason"], doc
    assert status() == before
    assert not any(len(d["comment"]) > 2000 for d in c.get("/api/v1/downtimes")["downtimes"])
    page = urllib.request.urlopen(c.url + "/host/db1.ladc1", timeout=10).read()
    assert b"x" * 2001 not in page and b"y" * 4097 not in page and len(page) < 200_000
