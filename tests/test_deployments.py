"""Deploy hooks end to end: a real central, a real SMTP server, the CLI and
contrib/deploy-hook from a plain shell."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from checkd.engine.db import SCHEMA_VERSION
from tests.central_proc import API_TOKEN, POLLER_TOKENS, CentralProc, result
from tests.helpers import REPO
from tests.notify_env import MailSink, node_extra, objects

DEPLOY_TOKEN = "deploy-secret"
DISK = ("db1.ladc1", "Disk /")
HOOK = str(REPO / "contrib" / "deploy-hook")


@pytest.fixture
def env(tmp_path):
    sink = MailSink()
    sink.start()
    c = CentralProc(tmp_path, objects=objects(escalate_after="1h"),
                    extra=node_extra(sink.port) + f"  deploy_tokens: {{ci: {DEPLOY_TOKEN}}}\n")
    c.start()
    try:
        yield c, sink
    finally:
        c.stop()
        sink.stop()


def deploy(c: CentralProc, body: dict, token: str = DEPLOY_TOKEN) -> tuple[int, dict]:
    return c.call("POST", "/api/v1/deployments", body, token=token)


def muted(c: CentralProc, host: str, service: str) -> bool:
    doc = c.get(f"/api/v1/status?host={host}")
    return next(s for s in doc["services"] if s["service"] == service)["muted"]


def test_a_rollout_mutes_then_one_notification_after_finish(env):
    c, sink = env
    st, d = deploy(c, {"action": "start", "hosts": ["db1.ladc1"], "module": "shop", "revision": "4711",
                       "engineer": "alice", "mute_for": "1h"})
    assert st == 201 and d["result"] == "running" and d["hosts"] == ["db1.ladc1"]
    # The hook retried a start whose answer it lost: the same deployment.
    st, again = deploy(c, {"action": "start", "hosts": ["db1.ladc1"], "module": "shop", "revision": "4711",
                           "engineer": "alice"})
    assert st == 200 and again["id"] == d["id"] and again["changed"] is False

    c.post_results("poller-ladc1", [result(1, *DISK, 2, "DISK CRITICAL - restarting")])
    assert muted(c, *DISK) is True
    assert [p["output"] for p in c.get("/api/v1/problems")["problems"]] == ["DISK CRITICAL - restarting"]
    time.sleep(2.5)
    assert sink.messages == []

    st, done = deploy(c, {"action": "finish", "id": d["id"]})
    assert st == 200 and done["result"] == "finished" and done["finished"] >= done["started"]
    [m] = sink.wait(lambda m: True)
    assert m["Subject"].startswith("db1.ladc1/Disk / CRITICAL [ID#:")
    assert deploy(c, {"action": "finish", "id": d["id"]})[1]["changed"] is False     # retried: no change
    time.sleep(2.0)
    assert len(sink.messages) == 1
    [entry] = c.get("/api/v1/deployments?host=db1.ladc1")["deployments"]
    assert (entry["module"], entry["revision"], entry["engineer"], entry["result"]) == \
        ("shop", "4711", "alice", "finished")
    assert c.get("/api/v1/deployments?host=web1.ladc1")["deployments"] == []
    assert c.get("/api/v1/deployments?since=1h&module=shop")["deployments"][0]["id"] == d["id"]
    history = c.get(f"/api/v1/events/{m['X-Checkd-Event-ID']}")["history"]
    assert ("deploy_finish", "alice") in [(h["kind"], h["author"]) for h in history]


def test_a_rollout_that_never_finishes_unmutes_at_expiry(env):
    c, sink = env
    st, d = deploy(c, {"action": "start", "hosts": "web1.ladc1", "module": "api", "revision": "9",
                       "mute_for": "3s"})
    assert st == 201 and d["engineer"] == "ci"          # the token's name when none is given
    c.post_results("poller-ladc1", [result(1, "web1.ladc1", "HTTP", 2, "HTTP CRITICAL - 503")])
    assert muted(c, "web1.ladc1", "HTTP")
    [m] = sink.wait(lambda m: True, timeout=15)
    assert sink.arrival[0] >= d["expires"]
    assert m["Subject"].startswith("web1.ladc1/HTTP CRITICAL")
    assert c.get("/api/v1/deployments")["deployments"][0]["result"] == "expired"
    assert not muted(c, "web1.ladc1", "HTTP")


def test_wrong_tokens_and_bad_calls_change_nothing(env):
    c, _ = env
    body = {"action": "start", "hosts": ["db1.ladc1"], "module": "shop", "revision": "1"}
    assert deploy(c, body, token="wrong")[0] == 401
    assert deploy(c, body, token=POLLER_TOKENS["poller-ladc1"][0])[0] == 401
    for bad, status, why in (({**body, "hosts": ["nope"]}, 404, "unknown host 'nope'"),
                             ({**body, "hosts": [], "hostgroups": ["nope"]}, 404, "unknown host group"),
                             ({**body, "action": "restart"}, 400, "action: one of"),
                             ({**body, "module": None}, 400, "module"),
                             ({**body, "mute_for": "forever"}, 400, "mute_for"),
                             ({"action": "finish", "id": "nope"}, 404, "no deployment 'nope'"),
                             ({"action": "finish"}, 400, "needs the id")):
        st, doc = deploy(c, bad)
        assert st == status and why in doc["error"], (bad, doc)
    assert c.get("/api/v1/deployments")["deployments"] == []
    assert not muted(c, *DISK)
    assert deploy(c, body, token=API_TOKEN)[0] == 201     # an operator's token works too


def test_cli_and_the_shell_hook(env):
    c, _ = env
    env_vars = {**os.environ, "PYTHONPATH": str(REPO), "CHECKD_URL": c.url, "CHECKD_DEPLOY_TOKEN": DEPLOY_TOKEN}
    out = subprocess.run(["sh", HOOK, "start", "--hosts", "db1.ladc1,web1.ladc1", "--module", 'sh"op',
                          "--revision", "r\\1", "--engineer", "bob", "--mute-for", "20m"],
                         capture_output=True, text=True, env=env_vars, timeout=60)
    assert out.returncode == 0, out.stderr
    did = out.stdout.strip()
    [d] = c.get("/api/v1/deployments")["deployments"]
    assert (d["id"], d["hosts"], d["module"], d["revision"]) == (did, ["db1.ladc1", "web1.ladc1"], 'sh"op', "r\\1")
    assert muted(c, *DISK)
    out = subprocess.run(["sh", HOOK, "finish", "--id", did], capture_output=True, text=True, env=env_vars,
                         timeout=60)
    assert out.returncode == 0 and '"result": "finished"' in out.stdout
    assert not muted(c, *DISK)
    bad = subprocess.run(["sh", HOOK, "finish", "--id", did], capture_output=True, text=True, timeout=60,
                         env={**env_vars, "CHECKD_DEPLOY_TOKEN": "wrong"})
    assert bad.returncode == 1 and "central answered 401" in bad.stderr
    down = subprocess.run(["sh", HOOK, "start", "--hosts", "db1.ladc1", "--module", "m", "--revision", "1"],
                          capture_output=True, text=True, timeout=60,
                          env={**env_vars, "CHECKD_URL": "http://127.0.0.1:9"})
    assert down.returncode == 1 and "cannot reach central at http://127.0.0.1:9" in down.stderr

    cli = [sys.executable, "-m", "checkd", "deploy"]
    out = subprocess.run([*cli, "start", "--hosts", "db1.ladc1", "--module", "shop", "--revision", "12",
                          "-c", str(c.config)], capture_output=True, text=True, env=env_vars, cwd=REPO, timeout=60)
    assert out.returncode == 0 and "notifications muted" in out.stderr
    did = out.stdout.strip()
    out = subprocess.run([*cli, "abort", "--id", did, "-c", str(c.config)], capture_output=True, text=True,
                         env=env_vars, cwd=REPO, timeout=60)
    assert out.returncode == 0 and f"deployment {did} aborted" in out.stdout
    out = subprocess.run([*cli, "start", "--hosts", "db1.ladc1", "--module", "m", "--revision", "1",
                          "--url", "http://127.0.0.1:9"], capture_output=True, text=True, env=env_vars, cwd=REPO,
                         timeout=60)
    assert out.returncode == 1 and "cannot reach central" in out.stderr


SUMMARY = 'Fix "cart" <b>rounding</b> \\ for EUR\n\nThe long body of the commit\twith a tab, ünïcode.'


def test_the_summary_round_trips_through_the_api_the_cli_and_the_hook(env):
    c, _ = env
    body = {"action": "start", "hosts": ["db1.ladc1"], "module": "shop", "revision": "4711", "engineer": "alice"}
    st, d = deploy(c, {**body, "summary": SUMMARY})
    assert st == 201 and d["summary"] == SUMMARY
    for bad, why in (({"action": "finish", "id": d["id"], "summary": "done"}, "summary: give it with start"),
                     ({**body, "revision": "2", "summary": 5}, "summary: expected a string")):
        st, doc = deploy(c, bad)
        assert st == 400 and why in doc["error"], doc
    assert deploy(c, {"action": "finish", "id": d["id"]})[0] == 200
    [entry] = c.get("/api/v1/deployments")["deployments"]
    assert entry["summary"] == SUMMARY and entry["result"] == "finished"
    # The host page's change log: the first line, escaped; the whole summary as its title.
    import urllib.request
    page = urllib.request.urlopen(f"{c.url}/host/db1.ladc1", timeout=30).read().decode()
    assert 'Fix &#34;cart&#34; &lt;b&gt;rounding&lt;/b&gt; \\ for EUR</span>' in page and "<b>rounding" not in page
    assert f"deployment {d['id']} start: shop r4711 by alice: Fix &#34;cart&#34;" in page      # its comment

    env_vars = {**os.environ, "PYTHONPATH": str(REPO), "CHECKD_URL": c.url, "CHECKD_DEPLOY_TOKEN": DEPLOY_TOKEN}
    out = subprocess.run(["sh", HOOK, "start", "--hosts", "web1.ladc1", "--module", "api", "--revision", "9",
                          "--summary", SUMMARY], capture_output=True, text=True, env=env_vars, timeout=60)
    assert out.returncode == 0, out.stderr
    hook_id = out.stdout.strip()
    out = subprocess.run([sys.executable, "-m", "checkd", "deploy", "start", "--hosts", "db1.ladc1", "--module", "m",
                          "--revision", "10", "--summary", SUMMARY], capture_output=True, text=True, env=env_vars,
                         cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    cli_id = out.stdout.strip()
    summaries = {e["id"]: e["summary"] for e in c.get("/api/v1/deployments")["deployments"]}
    assert summaries[hook_id] == SUMMARY and summaries[cli_id] == SUMMARY
    bad = subprocess.run(["sh", HOOK, "start", "--hosts", "web1.ladc1", "--module", "api", "--revision", "9",
                          "--summary", "bell\a"], capture_output=True, text=True, env=env_vars, timeout=60)
    assert bad.returncode == 2 and "control characters" in bad.stderr


# The deployments table as checkd with schema 2 made it: no summary column.
V2_DEPLOYMENTS = """CREATE TABLE deployments (id TEXT PRIMARY KEY, hosts TEXT NOT NULL,
    module TEXT NOT NULL, revision TEXT NOT NULL, engineer TEXT NOT NULL,
    started REAL NOT NULL, expires REAL NOT NULL, finished REAL, result TEXT NOT NULL)"""


def test_deployments_of_an_earlier_schema_are_kept(tmp_path):
    import sqlite3
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "central.sqlite")
    db.execute(V2_DEPLOYMENTS)
    t = time.time() - 3600
    db.execute("INSERT INTO deployments VALUES (?,?,?,?,?,?,?,?,?)",
               ("old1", '["db1.ladc1"]', "shop", "4700", "carol", t, t + 1800, t + 60, "finished"))
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    c = CentralProc(tmp_path, extra=f"  deploy_tokens: {{ci: {DEPLOY_TOKEN}}}\n")
    c.start()
    try:
        [old] = c.get("/api/v1/deployments")["deployments"]
        assert (old["id"], old["revision"], old["engineer"], old["finished"], old["summary"]) == \
            ("old1", "4700", "carol", t + 60, "")
        st, d = deploy(c, {"action": "start", "hosts": ["db1.ladc1"], "module": "shop", "revision": "4711",
                           "summary": "after the upgrade"})
        assert st == 201
        c.restart(kill=True)
        got = {e["id"]: e["summary"] for e in c.get("/api/v1/deployments")["deployments"]}
        assert got == {"old1": "", d["id"]: "after the upgrade"}
    finally:
        c.stop()
    db = sqlite3.connect(tmp_path / "state" / "central.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
