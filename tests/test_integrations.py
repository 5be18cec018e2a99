"""PagerDuty, Opsgenie, Slack and templated webhooks from a real central to local receivers
that answer as each API documents (tests/paging_receivers.py), and acknowledgements coming
back from PagerDuty, Opsgenie and Slack, signed. One central and one set of receivers for
the module; each case has its own service."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkd.config.errors import ConfigError
from checkd.config.load import load_node
from checkd.engine.notify import channels
from checkd.config.integrations import SAMPLE
from checkd.engine.notify.notification import Channel, Kind, Notification
from checkd.engine.notify.webhook import template_fields
from tests.central_proc import CentralProc, result
from tests.helpers import wait_for
from tests.notify_env import event_id, wait_logged
from tests.paging_receivers import SLACK_HOOK, SLACK_TOKEN, Receivers

LADC1 = "poller-ladc1"
MYSQL = "Mysql Health Slave Check"
PD_KEY = "pd0123456789abcdef0123456789abcd"     # 32 characters, as PagerDuty's integration keys
PD_SECRET, OG_TOKEN, SLACK_SECRET = "pd-webhook-secret", "og-webhook-token", "slack-signing-secret"

OBJECTS = """\
contacts:
  - {{name: pager, pagerduty: ops, opsgenie: ops}}
  - {{name: chat, slack: "#ops"}}
  - {{name: hookchat, slack: ops-hook}}
  - {{name: tmpl, webhook: "{url}/hook", webhook_template: chatops}}
  - {{name: flaky, pagerduty: flaky, opsgenie: flaky, slack: "#flaky"}}
  - {{name: refused, pagerduty: refused, opsgenie: refused, slack: "#gone"}}
  - {{name: refusedhook, slack: gone-hook}}
  - {{name: halftmpl, webhook: "{url}/hook", webhook_template: half}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, site: ladc1}}
services:
  - {{host: db1.ladc1, description: {mysql}, command: "check_dummy!0!ok", contacts: [pager, chat, hookchat, tmpl],
     runbook: "https://wiki.example.com/mysql-lag"}}
  - {{host: db1.ladc1, description: Disk /, command: "check_dummy!0!ok", contacts: [flaky]}}
  - {{host: db1.ladc1, description: Queue, command: "check_dummy!0!ok", contacts: [refused, refusedhook]}}
  - {{host: db1.ladc1, description: Swap, command: "check_dummy!0!ok", contacts: [pager]}}
  - {{host: db1.ladc1, description: Load, command: "check_dummy!0!ok", contacts: [pager]}}
  - {{host: db1.ladc1, description: HTTP, command: "check_dummy!0!ok", contacts: [chat]}}
  - {{host: db1.ladc1, description: Ping, command: "check_dummy!0!ok", contacts: [chat, halftmpl]}}
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
"""
TEMPLATE = ('{"text": {{ (label ~ ": " ~ subject) | tojson }}, "event": {{ event_id }}, '
            '"link": {{ url | tojson }}, "who": {{ author | tojson }}, "key": {{ dedup_key | tojson }}}\n')


def node_extra(url: str) -> str:
    return (f"  public_url: https://checkd.example.com\n"
            f"  notify: {{retry_after: 0.3s}}\n"
            f"  pagerduty:\n    url: {url}\n    webhook_secret: {PD_SECRET}\n    services:\n"
            f"      ops: {{routing_key_file: pd-ops.key}}\n      flaky: {{routing_key: flaky-key}}\n"
            f"      refused: {{routing_key: refused-key}}\n"
            f"  opsgenie: {{url: {url}, webhook_token: {OG_TOKEN}, teams: {{ops: {{api_key: og-key}}, "
            f"flaky: {{api_key: og-flaky}}, refused: {{api_key: og-refused}}}}}}\n"
            f"  slack:\n    url: {url}/api\n    token: {SLACK_TOKEN}\n    signing_secret: {SLACK_SECRET}\n"
            f"    webhooks: {{ops-hook: {{url: \"{url}{SLACK_HOOK}\"}}, "
            f"gone-hook: {{url: \"{url}/services/T000/B000/gonesecret\"}}}}\n"
            f"  webhook: {{templates: {{chatops: chatops.json.j2, half: half.json.j2}}}}\n")


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CentralProc, Receivers]]:
    tmp = tmp_path_factory.mktemp("integrations")
    rx = Receivers()
    rx.start()
    (tmp / "pd-ops.key").write_text(PD_KEY + "\n")
    (tmp / "chatops.json.j2").write_text(TEMPLATE)
    # JSON for a problem (the sample tried at load), not for a recovery: refused at send time.
    (tmp / "half.json.j2").write_text('{% if type == "RECOVERY" %}recovered{% else %}{"text": {{ subject | tojson }}}'
                                      '{% endif %}')
    c = CentralProc(tmp, objects=OBJECTS.format(url=rx.url, mysql=MYSQL), extra=node_extra(rx.url))
    try:
        with c:
            yield c, rx
    finally:
        rx.stop()


seq = itertools.count(1)


def post(c: CentralProc, service: str, status: int, output: str) -> None:
    code, answer = c.post_results(LADC1, [result(next(seq), "db1.ladc1", service, status, output)])
    assert code == 200 and answer["accepted"] == 1, answer


def wait_count(rx: Receivers, api: str, n: int, status: int | None = 202) -> list[Any]:
    return wait_for(lambda: (lambda got: got if len(got) >= n else None)(rx.of(api, status)), 10,
                    f"{n} {api} requests; have {[(s.path, s.status) for s in rx.seen if s.api == api]}")


def test_problem_ack_recovery_reach_pagerduty_opsgenie_slack_and_template(desk) -> None:
    c, rx = desk
    post(c, MYSQL, 2, "CRITICAL - slave lag 900s")
    eid = event_id(c, "db1.ladc1", MYSQL)
    key = f"checkd-{eid}"
    link = f"https://checkd.example.com/event/{eid}"
    mine = lambda api: [s for s in rx.of(api, None) if f'"{key}"' in json.dumps(s.body) or f"/{key}/" in s.path
                        or f"[ID#:{eid}]" in s.body.get("text", "")]
    wait_for(lambda: len(mine("pagerduty")) == 1 and len(mine("opsgenie")) == 1 and len(mine("slack")) == 1
             and len(rx.of("slack-hook", None)) == 1 and len(mine("webhook")) == 1, 10, "the problem everywhere")

    trigger = mine("pagerduty")[0].body
    assert trigger["routing_key"] == PD_KEY
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == key
    p = trigger["payload"]
    assert p["summary"] == f"db1.ladc1/{MYSQL} CRITICAL [ID#:{eid}] CRITICAL - slave lag 900s"
    assert p["source"] == "db1.ladc1"
    assert p["severity"] == "critical"
    assert p["timestamp"].endswith("+00:00") and p["timestamp"][:4].isdigit()
    assert p["component"] == MYSQL
    assert p["group"] == "ladc1"
    assert p["class"] == "service check"
    assert p["custom_details"]["event_id"] == eid and p["custom_details"]["output"] == "CRITICAL - slave lag 900s"
    assert trigger["client_url"] == link
    assert trigger["links"] == [{"href": link, "text": f"checkd event {eid}"},
                                {"href": "https://wiki.example.com/mysql-lag", "text": "runbook"}]

    create = mine("opsgenie")[0]
    assert create.path == "/v2/alerts" and create.headers["Authorization"] == "GenieKey og-key"
    assert create.body["alias"] == key
    assert create.body["message"] == f"db1.ladc1/{MYSQL} CRITICAL [ID#:{eid}]"
    assert create.body["priority"] == "P1"
    assert create.body["description"].startswith("CRITICAL - slave lag 900s") and link in create.body["description"]
    assert create.body["tags"] == ["checkd", "critical", "site:ladc1"]
    assert create.body["details"]["event_id"] == str(eid) and create.body["details"]["url"] == link
    assert all(isinstance(v, str) for v in create.body["details"].values())   # Opsgenie: string values only

    parent = mine("slack")[0]
    assert parent.path == "/api/chat.postMessage" and parent.body["channel"] == "#ops"
    assert "thread_ts" not in parent.body
    assert parent.body["text"].startswith(f"*db1.ladc1/{MYSQL} CRITICAL [ID#:{eid}]*")
    button = parent.body["blocks"][1]["elements"][0]
    assert (button["action_id"], button["value"]) == ("checkd_ack", str(eid))
    parent_ts = parent.body["_answer"]["ts"]
    assert rx.of("slack-hook", None)[0].body["text"].startswith(f"*db1.ladc1/{MYSQL} CRITICAL")
    hook = mine("webhook")[0]
    assert hook.body == {"text": f"CRITICAL: db1.ladc1/{MYSQL} CRITICAL [ID#:{eid}]", "event": eid, "link": link,
                         "who": "", "key": key}

    status, _ = c.write("POST", "/api/v1/ack", {"event_id": eid, "author": "alice", "comment": "on it"})
    assert status == 200
    post(c, MYSQL, 0, "OK - slave lag 0s")
    wait_for(lambda: len(mine("pagerduty")) == 3 and len(mine("opsgenie")) == 3 and len(mine("slack")) >= 5
             and len(mine("webhook")) == 3, 10, "ack and recovery everywhere")
    assert [(s.body["event_action"], s.body["dedup_key"]) for s in mine("pagerduty")] == \
        [("trigger", key), ("acknowledge", key), ("resolve", key)]
    assert all(s.status == 202 for s in mine("pagerduty") + mine("opsgenie"))
    ack, close = mine("opsgenie")[1:]
    assert (ack.path, ack.query) == (f"/v2/alerts/{key}/acknowledge", {"identifierType": "alias"})
    assert ack.body["user"] == "alice" and "on it" in ack.body["note"]
    assert (close.path, close.query) == (f"/v2/alerts/{key}/close", {"identifierType": "alias"})
    replies = [s for s in mine("slack") if s.path == "/api/chat.postMessage"][1:]
    assert [r.body["thread_ts"] for r in replies] == [parent_ts, parent_ts]
    assert [r.body["channel"] for r in replies] == ["C0OPS", "C0OPS"]     # the ID Slack answered with
    assert "acknowledged by alice: on it" in replies[0].body["text"]
    updates = [s for s in mine("slack") if s.path == "/api/chat.update"]
    assert [u.body["ts"] for u in updates] == [parent_ts, parent_ts]
    assert updates[0].body["text"].startswith("ACKNOWLEDGED by alice\n*db1.ladc1")
    assert updates[-1].body["text"].startswith("RECOVERED (OK)")
    assert all(len(u.body["blocks"]) == 1 for u in updates)         # the Acknowledge button is gone
    assert [h.body["text"].split(":")[0] for h in mine("webhook")] == ["CRITICAL", "ACKNOWLEDGEMENT",
                                                                             "RECOVERY"]
    assert mine("webhook")[1].body["who"] == "alice"
    rows = wait_logged(c, eid)
    assert {(r["channel"], r["status"], r["attempts"]) for r in rows} >= {
        ("pagerduty", "sent", 1), ("opsgenie", "sent", 1), ("slack", "sent", 1), ("webhook", "sent", 1)}
    assert PD_KEY not in c.log.read_text() and "og-key" not in c.log.read_text()


# Each channel of one event: what the receiver answers first, then the row and the answers it gave.
RETRIES = {
    "Disk /": {"pagerduty": ("flaky-key", [503, 503], ("sent", 3), [503, 503, 202]),
               "opsgenie": ("og-flaky", [502, 503], ("sent", 3), [502, 503, 202]),
               "slack": ("#flaky", [429, "internal_error"], ("sent", 3), [429, 200, 200])},
    "Queue": {"pagerduty": ("refused-key", [400], ("failed", 1), [400]),           # refused for good
              "opsgenie": ("og-refused", [422], ("failed", 1), [422]),
              "slack": ("#gone", ["channel_not_found"], ("failed", 1), [200])},
}


@pytest.mark.parametrize("service", RETRIES)
def test_5xx_is_retried_until_one_is_accepted_and_a_refusal_is_not(desk, service) -> None:
    c, rx = desk
    cases = RETRIES[service]
    for key, answers, _, _ in cases.values():
        rx.fail[key] = list(answers)
    post(c, service, 2, f"{service} CRITICAL")
    eid = event_id(c, "db1.ladc1", service)
    rows = {r["channel"]: r for r in wait_logged(c, eid) if r["contact"] != "refusedhook"}
    log = c.log.read_text()
    for api, (key, _, row, statuses) in cases.items():
        assert (rows[api]["status"], rows[api]["attempts"]) == row, (api, rows[api])
        tried = [s for s in rx.of(api, None) if key in (s.body.get("routing_key"), s.body.get("channel"))
                 or s.headers.get("Authorization") == f"GenieKey {key}"]
        assert [s.status for s in tried] == statuses, api
        if api == "slack":
            assert [s.body.get("_answer", {}).get("ok", False) for s in tried].count(True) == (row[0] == "sent")
        if not key.startswith("#"):         # a key, not a channel: never shown
            assert key not in log and key not in (rows[api]["error"] or ""), api
        assert bool(rows[api]["error"]) == (row[0] == "failed"), rows[api]
    if service == "Queue":
        assert "(pagerduty) failed for good after 1 attempt(s): pagerduty refused" in log
        assert "HTTP 400 Bad Request" in log and "integration not found" in log
        assert "(slack) failed for good after 1 attempt(s): slack #gone chat.postMessage: channel_not_found" in log
        # An incoming webhook that is gone (Slack: 404): refused, and its URL's secret path is never shown.
        [hook] = [r for r in wait_logged(c, eid) if r["contact"] == "refusedhook"]
        assert (hook["status"], hook["attempts"]) == ("failed", 1)
        assert hook["error"].startswith(f"slack gone-hook {rx.url}: HTTP 404"), hook["error"]
        assert "gonesecret" not in log and "gonesecret" not in hook["error"]


def test_a_restart_still_replies_in_the_events_slack_thread(desk) -> None:
    c, rx = desk
    post(c, "Ping", 2, "PING CRITICAL")
    eid = event_id(c, "db1.ladc1", "Ping")
    ours = lambda: [s for s in rx.of("slack", None) if s.path == "/api/chat.postMessage"
                    and f"[ID#:{eid}]" in s.body["text"]]
    [parent] = wait_for(ours, 10, "the thread's first message")
    wait_logged(c, eid)
    c.restart()
    post(c, "Ping", 0, "PING OK")
    wait_for(lambda: len(ours()) == 2, 10, "the recovery")
    assert ours()[1].body["thread_ts"] == parent.body["_answer"]["ts"]
    assert ours()[1].body["channel"] == "C0OPS"
    # The half-valid template: the problem went out, the recovery failed once, with a clear line.
    rows = {r["type"]: r for r in wait_logged(c, eid) if r["contact"] == "halftmpl"}
    assert (rows["PROBLEM"]["status"], rows["RECOVERY"]["status"], rows["RECOVERY"]["attempts"]) == \
        ("sent", "failed", 1)
    assert (f"webhook {rx.url}/hook: template half did not render valid JSON for "
            f"RECOVERY db1.ladc1/Ping OK [ID#:{eid}]") in c.log.read_text()


def sign_pd(body: bytes, secret: str = PD_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pd_ack(key: str, who: str = "Jane Doe") -> bytes:
    return json.dumps({"event": {
        "id": "01DEN4HPBQAAAG05V5QQYBRZMF", "event_type": "incident.acknowledged", "resource_type": "incident",
        "occurred_at": "2026-12-07T12:00:00.000Z",
        "agent": {"html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV", "summary": who,
                  "type": "user_reference"},
        "data": {"id": "PGR0VU2", "type": "incident", "number": 2, "status": "acknowledged", "incident_key": key,
                 "title": "db1.ladc1/Swap CRITICAL"}}}).encode()


def call(c: CentralProc, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(c.url + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def slack_headers(body: bytes, secret: str = SLACK_SECRET, stamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if stamp is None else stamp)
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded"}


def slack_click(eid: int) -> bytes:
    payload = {"type": "block_actions", "user": {"id": "U0BOB", "username": "bob", "name": "bob"},
               "actions": [{"action_id": "checkd_ack", "value": str(eid), "type": "button"}]}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def og_ack(key: str) -> bytes:
    return json.dumps({"action": "Acknowledge", "alert": {"alertId": "a1", "alias": key,
                                                          "username": "carol@example.com",
                                                          "message": "db1.ladc1/Load CRITICAL"},
                       "source": {"name": "carol@example.com", "type": "web"}}).encode()


# (service, tool path, bad request, good request) -> the author the history shows
INBOUND = [
    ("Swap", "pagerduty", lambda eid: (pd_ack(f"checkd-{eid}"), {"X-PagerDuty-Signature": sign_pd(b"x")}),
     lambda eid: (pd_ack(f"checkd-{eid}"), {"X-PagerDuty-Signature": f"v1=00,{sign_pd(pd_ack(f'checkd-{eid}'))}"}),
     "Jane Doe via PagerDuty"),
    ("Load", "opsgenie", lambda eid: (og_ack(f"checkd-{eid}"), {"X-Checkd-Token": "guess"}),
     lambda eid: (og_ack(f"checkd-{eid}"), {"X-Checkd-Token": OG_TOKEN}), "carol@example.com via Opsgenie"),
    ("HTTP", "slack", lambda eid: (slack_click(eid), slack_headers(slack_click(eid), stamp=int(time.time()) - 600)),
     lambda eid: (slack_click(eid), slack_headers(slack_click(eid))), "bob via Slack"),
]


@pytest.mark.parametrize("service,tool,bad,good,author", INBOUND, ids=[i[1] for i in INBOUND])
def test_inbound_ack_needs_the_signature_and_shows_who(desk, service, tool, bad, good, author) -> None:
    c, _ = desk
    post(c, service, 2, f"{service} CRITICAL")
    eid = event_id(c, "db1.ladc1", service)
    path = f"/api/v1/integrations/{tool}"
    status, answer = call(c, path, *bad(eid))
    assert status == 401, answer
    assert c.get(f"/api/v1/events/{eid}")["acknowledged"] is False
    assert f"{tool} webhook from 127.0.0.1 refused" in c.log.read_text()
    status, answer = call(c, path, *good(eid))
    assert (status, answer.get("author")) == (200, author), answer
    ev = c.get(f"/api/v1/events/{eid}")
    assert ev["acknowledged"] is True
    rows = c.get(f"/api/v1/history?kind=ack&author={urllib.parse.quote(author)}")["history"]
    assert [r["event_id"] for r in rows] == [eid]
    status, answer = call(c, path, *good(eid))          # the tool says it again (or echoes our own ack)
    assert (status, answer.get("already")) == (200, True)


def test_inbound_ack_of_an_unknown_event_is_404(desk) -> None:
    c, _ = desk
    for key in ("checkd-999999", "nagios-12"):
        body = pd_ack(key)
        status, answer = call(c, "/api/v1/integrations/pagerduty", body, {"X-PagerDuty-Signature": sign_pd(body)})
        assert status == 404 and "error" in answer, answer


@pytest.mark.parametrize("node,objects,message", [
    ("  webhook: {templates: {t: t.j2}}\n", "", "does not render valid JSON"),
    ("  webhook: {templates: {u: u.j2}}\n", "", 'unknown field subjct (did you mean "subject"?)'),
    ("  pagerduty: {services: {ops: {routing_key_file: missing.key}}}\n", "", "cannot read"),
    ("  pagerduty: {services: {ops: {routing_key: k}}}\n", "  - {name: p, pagerduty: opz}\n",
     "no pagerduty: services: 'opz'"),
    ("  slack: {webhooks: {}}\n", "  - {name: s, slack: \"#ops\"}\n", "token_file"),
])
def test_config_errors_name_file_and_line(tmp_path: Path, node: str, objects: str, message: str) -> None:
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "o.yaml").write_text(f"contacts:\n{objects}" if objects else "contacts: []\n")
    (tmp_path / "t.j2").write_text('{"text": {{ subject }}}')       # unquoted: not JSON
    (tmp_path / "u.j2").write_text('{"text": {{ subjct | tojson }}}')
    path = tmp_path / "central.yaml"
    path.write_text(f"central:\n  state_dir: state\n  objects: objects\n{node}")
    with pytest.raises(ConfigError) as info:
        load_node(path)
    text = str(info.value)
    assert message in text and (f"{path}:" in text or "o.yaml:2" in text), text


def test_a_poller_alerting_on_its_own_pages_too(tmp_path: Path) -> None:
    """A poller's node file takes the same sections; its engine gets the same channels."""
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "o.yaml").write_text("contacts:\n  - {name: p, pagerduty: ops, slack: '#ops'}\n")
    path = tmp_path / "poller.yaml"
    path.write_text("poller:\n  name: poller-ladc1\n  site: ladc1\n  central: http://127.0.0.1:1\n  token: t\n"
                    "  state_dir: state\n  objects: objects\n"
                    "  pagerduty: {url: 'https://events.eu.pagerduty.com', services: {ops: {routing_key: k}}}\n"
                    f"  slack: {{token: {SLACK_TOKEN}}}\n")
    node, objs = load_node(path)
    built = channels.build(node, objs)
    assert {Channel.PAGERDUTY, Channel.SLACK} <= set(built.senders)
    assert built.senders[Channel.PAGERDUTY].base == "https://events.eu.pagerduty.com"


def test_templates_are_tried_at_load_on_every_field_a_send_gives_them() -> None:
    """The load-time sample (checkd/config) and a real send's fields (webhook.py) are the same set:
    a template valid at load never meets an unknown field at send time."""
    n = Notification(event_id=7, kind=Kind.PROBLEM, host="h", service=None, state="DOWN", site="s", output="o",
                     contact="c", channel=Channel.WEBHOOK, address="http://127.0.0.1/", since=0.0, created=1.0)
    assert set(SAMPLE) == set(template_fields(n, "http://x/event/7"))
