"""Passive results against a real central: NRDP submissions in XML (byte for byte as
send_nrdp.sh posts them) and JSON, a host outside the submitter's token refused with nothing
stored, `checkd submit` from the command line, hostile input, and a passive service going
stale into its freshness_state (docs/passive.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkd.config import ConfigError, load_node
from tests.central_proc import CentralProc
from tests.helpers import REPO, wait_for

TOKEN = "cron-secret"
OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
hostgroups:
  - {name: backup-hosts, members: [db1.ladc1]}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1}
  - {name: db2.ladc1, address: 127.0.0.1, hostgroups: [backup-hosts]}
  - {name: web1.ladc1, address: 127.0.0.1}
services:
  - {hosts: [db1.ladc1, db2.ladc1, web1.ladc1], description: Backup, command: "check_dummy!3!no report",
     active: false, max_attempts: 1}
  - {host: db2.ladc1, description: Replication, command: "check_dummy!3!no report", active: false, max_attempts: 2}
  - {host: db1.ladc1, description: Nightly, command: "check_dummy!0!the command is not run", active: false,
     max_attempts: 1, freshness_threshold: 1s, freshness_state: critical,
     freshness_output: "nightly backup did not report"}
"""
SUBMITTERS = f"  submitters:\n    backup-cron: {{token: {TOKEN}, hostgroups: [backup-hosts]}}\n"


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralProc]:
    with CentralProc(tmp_path_factory.mktemp("passive"), objects=OBJECTS, extra=SUBMITTERS) as c:
        yield c


def nrdp(central: CentralProc, body: bytes, path: str = "/nrdp/") -> tuple[int, str]:
    """POST a form body as it is, as curl -d does (no encoding of our own)."""
    req = urllib.request.Request(central.url + path, data=body, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def send_nrdp_sh(host: str, service: str, state: int, output: str) -> bytes:
    """The request body NagiosEnterprises' clients/send_nrdp.sh builds for -H -s -S -o (its
    single-check mode: XML with a CDATA output, the form not url-encoded, only & < > in the
    output escaped), posted by `curl -f --silent --insecure -d "$pdata" "$url/"`."""
    output = output.replace("&", "%26").replace("<", "%3C").replace(">", "%3E")
    xml = (f"<checkresult type='service' checktype='1'>\n        <servicename>{service}</servicename>"
           f"<hostname>{host}</hostname>\n    <state>{state}</state>\n    <output><![CDATA[{output}]]></output>\n"
           "    </checkresult>")
    xml = f"<?xml version='1.0'?>\n    <checkresults>\n    {xml}\n    </checkresults>"
    return f"token={TOKEN}&cmd=submitcheck&xml={xml}".encode()


def json_form(items: list[dict[str, Any]], token: str = TOKEN) -> bytes:
    """NRDP's JSON (its web form's example shape: the type under "checkresult", the state a string)."""
    doc = json.dumps({"checkresults": items})
    return urllib.parse.urlencode({"token": token, "cmd": "submitcheck", "JSONDATA": doc}).encode()


def service(host: str, name: str, state: int, output: str) -> dict[str, Any]:
    return {"checkresult": {"type": "service"}, "hostname": host, "servicename": name, "state": str(state),
            "output": output}


def check(central: CentralProc, host: str, name: str | None) -> dict[str, Any]:
    doc = central.get(f"/api/v1/status?host={host}")
    return next(c for c in doc["hosts"] + doc["services"] if c["service"] == name)


def test_an_xml_result_as_send_nrdp_sh_posts_it_is_stored_and_opens_an_event(central: CentralProc) -> None:
    status, text = nrdp(central, send_nrdp_sh("db1.ladc1", "Backup", 2, "tape <drive2> & robot stuck | t=5s;1;2\\nlog: x"),
                        path="/nrdp/")
    assert status == 200 and "<status>0</status>" in text and "<message>OK</message>" in text, text
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<result>\n    <status>0</status>'), text
    c = check(central, "db1.ladc1", "Backup")
    assert (c["state"], c["state_type"], c["output"]) == ("CRITICAL", "HARD", "tape <drive2> & robot stuck"), c
    assert (c["perfdata"], c["long_output"], c["polled_by"]) == ("t=5s;1;2", "log: x", "submitter:backup-cron")
    problems = central.get("/api/v1/problems")["problems"]
    assert any(p["host"] == "db1.ladc1" and p["service"] == "Backup" and p["id"] == c["event_id"] for p in problems)


def test_json_results_follow_the_soft_and_hard_rules_of_their_service(central: CentralProc) -> None:
    """A passive service result counts as an attempt, as Nagios does: max_attempts 2 needs two."""
    for attempt, (state_type, text) in enumerate((("SOFT", "lag 300s"), ("HARD", "lag 900s")), 1):
        status, body = nrdp(central, json_form([service("db2.ladc1", "Replication", 1, text)]), path="/nrdp")
        assert status == 200 and json.loads(body) == {
            "result": {"status": 0, "message": "OK", "meta": {"output": "1 checks processed"}}}, body
        c = check(central, "db2.ladc1", "Replication")
        assert (c["state"], c["state_type"], c["attempt"], c["output"]) == ("WARNING", state_type, attempt, text)


def test_a_host_outside_the_token_is_refused_and_nothing_of_the_request_stored(central: CentralProc) -> None:
    status, body = nrdp(central, json_form([service("db2.ladc1", "Backup", 2, "in scope"),
                                            service("web1.ladc1", "Backup", 2, "not this token's")]))
    answer = json.loads(body)["result"]
    assert status == 200 and (answer["status"], answer["message"]) == (-1, "DENIED TOKEN"), body
    assert "may not report host 'web1.ladc1'" in answer["information"]
    assert check(central, "db2.ladc1", "Backup")["last_check"] is None, "the whole request is refused"
    assert check(central, "web1.ladc1", "Backup")["last_check"] is None
    assert "submitter backup-cron refused, nothing stored (DENIED TOKEN)" in central.log.read_text()


def test_checkd_submit_from_a_cron_job(central: CentralProc) -> None:
    def submit(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "checkd", "submit", *args], capture_output=True, text=True,
                              timeout=60, cwd=REPO, env={**os.environ, **env})

    ok = submit("--url", central.url, "db2.ladc1", "Backup", "warning", "slow\nlong output", "--perfdata", "t=9s",
                CHECKD_SUBMIT_TOKEN=TOKEN)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", ""), "silent on success, as send_nrdp"
    c = check(central, "db2.ladc1", "Backup")
    assert (c["state"], c["output"], c["long_output"], c["perfdata"]) == ("WARNING", "slow", "long output", "t=9s")
    refused = submit("-c", str(central.config), "web1.ladc1", "down", "x")    # the node file's submitter token
    assert refused.returncode == 1 and "central refused it: DENIED TOKEN" in refused.stderr, refused.stderr


def test_hostile_input_gets_a_clear_error_and_central_stays_up(central: CentralProc) -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            '<checkresults><checkresult type="host"><hostname>db1.ladc1</hostname><state>0</state>'
            '<output>&b;</output></checkresult></checkresults>')
    cases = [
        (urllib.parse.urlencode({"token": TOKEN, "cmd": "submitcheck", "XMLDATA": bomb}), "BAD XML", "DOCTYPE"),
        (f"token={TOKEN}&cmd=submitcheck&xml=<checkresults><checkresult", "BAD XML", "line 1"),
        (json_form([service("db1.ladc1", "Backup", 7, "x")]).decode(), "BAD JSON", "state '7'"),
        (json_form([service("db1.ladc1", "Nope", 0, "x")]).decode(), "UNKNOWN CHECK", "no service 'Nope'"),
        (json_form([service("db1.ladc1", "Backup", 0, "x")], token="guess").decode(), "BAD TOKEN", ""),
        (f"token={TOKEN}&cmd=submitcheck", "NO DATA", ""),
    ]
    for body, message, information in cases:
        status, text = nrdp(central, body.encode())
        assert status == 200 and (f"<message>{message}</message>" in text or f'"message":"{message}"' in text), text
        assert information in text, text
    status, text = nrdp(central, f"token={TOKEN}&cmd=submitcheck&xml=".encode() + b"x" * (1 << 20))
    assert status == 413 and "<message>REQUEST TOO LARGE</message>" in text, text
    assert check(central, "db1.ladc1", None)["last_check"] is None, "nothing of it stored"
    log = central.log.read_text()
    assert "sent data that cannot be read (BAD XML): DOCTYPE" in log and "failed authentication from 127.0.0.1: POST /nrdp" in log


def test_a_passive_service_going_stale_gets_its_freshness_state(central: CentralProc) -> None:
    stale = wait_for(lambda: (c := check(central, "db1.ladc1", "Nightly"))["state"] == "CRITICAL" and c, 10,
                     "the stale state")
    assert stale["output"].startswith("nightly backup did not report: no result since central started "), stale
    assert stale["output"].endswith("(freshness threshold 1s)") and stale["polled_by"] == "central"
    nrdp(central, json_form([service("db1.ladc1", "Nightly", 0, "backup done")]))
    assert check(central, "db1.ladc1", "Nightly")["state"] == "OK"
    again = wait_for(lambda: (c := check(central, "db1.ladc1", "Nightly"))["state"] == "CRITICAL" and c, 10,
                     "stale again")
    assert again["output"] in {f"nightly backup did not report: no result for {n}s (freshness threshold 1s)"
                               for n in range(1, 6)}, again


def test_submitters_and_freshness_states_are_checked_at_load(tmp_path: Path) -> None:
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "o.yaml").write_text(
        "commands: {ok: /bin/true}\nhosts:\n  - {name: db1.ladc1}\nservices:\n"
        "  - {host: db1.ladc1, description: A, command: ok, freshness_state: critcal, freshness_threshold: 1m}\n"
        "  - {host: db1.ladc1, description: B, command: ok, freshness_state: warning}\n")
    node = tmp_path / "central.yaml"
    node.write_text("central:\n  state_dir: s\n  objects: objects\n  submitters:\n"
                    "    a: {token: t1, hosts: [db9.ladc1]}\n    b: {token: t2}\n")
    with pytest.raises(ConfigError) as e:
        load_node(node)
    assert f"{node}:6: submitters: b: give the hosts it may report" in str(e.value)
    node.write_text(node.read_text().replace("    b: {token: t2}\n", ""))
    with pytest.raises(ConfigError) as e:
        load_node(node)
    text, objects = str(e.value), tmp_path / "objects" / "o.yaml"
    assert f"{objects}:5: freshness_state: one of ok, warning, critical, unknown" in text and 'did you mean "critical"' in text
    assert f"{objects}:6: freshness_state: needs `freshness_threshold:`" in text
    objects.write_text(objects.read_text().replace("critcal", "critical").replace("warning", "warning, "
                                                                                  "freshness_threshold: 1m"))
    with pytest.raises(ConfigError) as e:
        load_node(node)
    assert str(e.value) == f"{node}:5: submitters: a: hosts: no host 'db9.ladc1' (did you mean \"db1.ladc1\"?)"
