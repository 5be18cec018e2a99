"""Two centrals on one PostgreSQL (a throwaway cluster on 127.0.0.1): one holds the
lease and is active, the other answers as the standby and takes over when the active
one dies, stalls past its lease or loses the database. Real central and poller
processes, a shell check reading a state file, aiosmtpd for the mail, RRD files on
each central (the standby follows the active's results into its own)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rrdtool

from checkd.engine.lease import RENEW_EVERY, TTL
from checkd.spool import Spool
from tests.central_proc import CentralProc, start_poller
from tests.helpers import REPO, free_port, logged_at, require_plugins, wait_for
from tests.notify_env import MailSink, node_extra
from tests.postgres import require_postgres
from tests.state_checks import OBJECTS

FAILOVER_TARGET = 15.0          # seconds from losing the active central to the standby answering as active


class Pair:
    """Centrals a and b sharing one database, the ladc1 poller knowing both, the mailbox."""

    def __init__(self, tmp: Path, dsn: str, sink: MailSink):
        self.tmp, self.sink = tmp, sink
        self.states = tmp / "states"
        self.states.mkdir()
        for name in ("repl", "backup"):
            self.set(name, 0)
        objects = OBJECTS.format(dir=self.states)
        extra = (f'  store: postgresql\n  postgresql: {{dsn: "{dsn}"}}\n' + node_extra(sink.port)
                 + "  freshness: {site_stale_after: 30s, start_grace: 30s}\n  rrd: {dir: rrd}\n")
        self.a = CentralProc(tmp / "a", objects=objects, extra=extra)
        self.b = CentralProc(tmp / "b", objects=objects, extra=extra)
        self.poller: subprocess.Popen[bytes] | None = None

    def set(self, name: str, status: int) -> None:
        (self.states / name).write_text(f"{status}\n")

    def start_poller(self) -> None:
        self.poller = start_poller(self.tmp / "a", f"[{self.a.url}, {self.b.url}]",
                                   extra="  autonomy_after: 60s\n")

    def poller_log(self) -> str:
        return (self.tmp / "a" / "poller.log").read_text()

    def mails(self, kind: str, service: str) -> list[Any]:
        return [m for m in self.sink.messages if m["X-Checkd-Type"] == kind and service in m["Subject"]]

    def stop(self) -> None:
        if self.poller is not None and self.poller.poll() is None:
            self.poller.terminate()
            self.poller.wait(timeout=30)
        for c in (self.a, self.b):
            c.stop()


def active(c: CentralProc) -> bool:
    try:
        status, _ = c.call("GET", "/api/v1/problems")
    except OSError:             # between the standby's answers and the active's: not listening
        return False
    return status == 200


def standby_answer(c: CentralProc) -> Any:
    status, doc = c.call("GET", "/api/v1/problems")
    assert status == 503, (status, doc)
    return doc


def rrd_file(c: CentralProc, service: str) -> Path | None:
    """The central's own RRD file of `service`'s `state` metric, once it exists."""
    found = sorted((c.dir / "rrd").glob(f"db1.ladc1-*/{service}__state-*.rrd"))
    return found[0] if found else None


def rrd_last(c: CentralProc, service: str) -> float:
    path = rrd_file(c, service)
    return float(rrdtool.last(str(path))) if path is not None else 0.0


def last_check(c: CentralProc, service: str) -> float:
    status = c.get("/api/v1/status?host=db1.ladc1")
    return next(s["last_check"] or 0.0 for s in status["services"] if s["service"] == service)


@pytest.fixture
def pair(tmp_path: Path, postgres_dsn: str) -> Iterator[Pair]:
    require_plugins()
    sink = MailSink()
    sink.start()
    p = Pair(tmp_path, postgres_dsn, sink)
    try:
        p.a.start()
        p.b.start(standby=True)
        p.start_poller()
        yield p
    finally:
        p.stop()
        sink.stop()


def test_the_standby_says_which_central_is_active(pair: Pair):
    doc = standby_answer(pair.b)
    assert doc == {"error": "this central is the standby", "active": pair.a.url}
    status, page = pair.b.call("GET", "/")
    assert status == 503 and pair.a.url in page
    # Results go to the active one only, whichever URL the poller tried first.
    wait_for(lambda: last_check(pair.a, "Replication") > 0, 10, "results at the active central")
    # /metrics says which is which (the standby answers it: a scraper watches both).
    import urllib.request
    for c, active in ((pair.a, 1), (pair.b, 0)):
        text = urllib.request.urlopen(f"{c.url}/metrics", timeout=10).read().decode()
        assert f"checkd_central_active {active}.0" in text, text[-500:]
    assert "checkd_graph_feed_followed_total" in urllib.request.urlopen(f"{pair.b.url}/metrics").read().decode()


def test_killing_the_active_central_hands_over_within_seconds_and_tells_each_problem_once(pair: Pair):
    pair.set("repl", 2)
    pair.sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and "Replication" in m["Subject"])
    eid = next(p["id"] for p in pair.a.get("/api/v1/problems")["problems"] if p["service"] == "Replication")
    killed = time.monotonic()
    pair.a.stop(kill=True)
    wait_for(lambda: active(pair.b), FAILOVER_TARGET, "the standby to take over")
    took = time.monotonic() - killed
    assert took < FAILOVER_TARGET
    # The poller moved over and its results keep coming: newer than the kill.
    since = time.time()
    wait_for(lambda: last_check(pair.b, "Replication") > since, 10, "results at the new active central")
    assert [p["id"] for p in pair.b.get("/api/v1/problems")["problems"] if p["service"] == "Replication"] == [eid]
    # A new problem after the takeover: a new, higher ID; one mail each, nothing told twice.
    pair.set("backup", 2)
    pair.sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and "Backup" in m["Subject"])
    backup = next(p["id"] for p in pair.b.get("/api/v1/problems")["problems"] if p["service"] == "Backup")
    assert backup > eid
    pair.set("repl", 0)
    pair.sink.wait(lambda m: m["X-Checkd-Type"] == "RECOVERY" and "Replication" in m["Subject"])
    time.sleep(1.0)
    assert len(pair.mails("PROBLEM", "Replication")) == 1 and len(pair.mails("PROBLEM", "Backup")) == 1
    assert len(pair.mails("RECOVERY", "Replication")) == 1
    assert "alerts on its own" not in pair.poller_log()
    assert "lease taken" in pair.b.log.read_text()


def known(c: CentralProc, service: str, start: float, end: float) -> list[float | None]:
    """The central's own RRD values of `service` from `start` to `end`, a second apart."""
    path = rrd_file(c, service)
    assert path is not None
    _, _, rows = rrdtool.fetch(str(path), "AVERAGE", "--start", str(int(start)), "--end", str(int(end)))
    return [r[0] for r in rows]


def test_the_standby_keeps_its_graphs_current_and_both_go_on_after_a_takeover(pair: Pair):
    """The standby's RRD writer follows the results the active central commits. After a
    kill -9 of the active the new one's graph has no gap (the poller's results from the
    seconds of the takeover reach it), and the old one, back as the standby, fills its own."""
    wait_for(lambda: rrd_last(pair.b, "Replication") > time.time() - 3, 20, "the standby's own RRD file, current")
    assert "following the active central's results" in pair.b.log.read_text()
    time.sleep(5)
    killed = time.time()
    pair.a.stop(kill=True)
    wait_for(lambda: active(pair.b), FAILOVER_TARGET, "the standby to take over")
    wait_for(lambda: rrd_last(pair.b, "Replication") > killed + TTL + 4, 20, "values after the takeover")
    window = (killed - 4, killed + TTL + 2)
    values = known(pair.b, "Replication", *window)
    assert len(values) >= 8 and None not in values, [i for i, v in enumerate(values) if v is None]
    pair.a.start(standby=True)
    wait_for(lambda: rrd_last(pair.a, "Replication") > time.time() - 3, 20, "the old active's files, followed")
    values = known(pair.a, "Replication", *window)
    assert len(values) >= 8 and None not in values, [i for i, v in enumerate(values) if v is None]


def test_a_central_stalled_past_its_lease_writes_and_sends_nothing_when_it_wakes(pair: Pair):
    assert pair.a.proc is not None
    os.kill(pair.a.proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: active(pair.b), FAILOVER_TARGET, "the standby to take over")
        pair.set("repl", 2)
        # The poller's post to the stalled central times out first (answer_timeout).
        pair.sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and "Replication" in m["Subject"], timeout=30)
    finally:
        os.kill(pair.a.proc.pid, signal.SIGCONT)
    # Awake, the old active finds its lease gone and stops: no write, no mail.
    pair.a.proc.wait(timeout=TTL)
    log = pair.a.log.read_text()
    assert "lost the central lease" in log
    pair.set("repl", 0)
    pair.sink.wait(lambda m: m["X-Checkd-Type"] == "RECOVERY" and "Replication" in m["Subject"])
    time.sleep(1.0)
    assert len(pair.mails("PROBLEM", "Replication")) == 1 and len(pair.mails("RECOVERY", "Replication")) == 1


def test_a_central_that_loses_the_database_steps_down_and_the_standby_takes_over(pair: Pair, postgres_dsn: str):
    import psycopg
    assert pair.a.proc is not None
    wait_for(lambda: last_check(pair.a, "Replication") > 0, 10, "results at the active central")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        # Every connection of central a (the standby's are its lease tries, one at a time).
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                     "AND application_name = %s", (f"checkd-central-{pair.a.proc.pid}",))
    pair.a.proc.wait(timeout=TTL + 5)
    wait_for(lambda: active(pair.b), FAILOVER_TARGET, "the standby to take over")
    since = time.time()
    wait_for(lambda: last_check(pair.b, "Replication") > since, 10, "results at the new active central")


def test_a_clean_stop_hands_the_lease_over_at_once(pair: Pair):
    stopped = time.monotonic()
    assert pair.a.stop() == 0
    wait_for(lambda: active(pair.b), TTL / 2, "the standby to take over before the lease would lapse")
    assert time.monotonic() - stopped < TTL / 2


def failover_round(pair: Pair, old: CentralProc, new: CentralProc, state: int) -> dict[str, float]:
    """Kill the active central `old` and at once set Replication to `state`; seconds from the
    kill until `new` took the lease, serves, has the poller's first newer result, and until
    the mail for the change was accepted. `old` comes back as the standby."""
    mails = len(pair.sink.messages)
    killed = time.time()
    old.stop(kill=True)
    pair.set("repl", state)
    row: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(row) < 2:
        if "ack" not in row and active(new) and last_check(new, "Replication") > killed:
            row["ack"] = time.time() - killed
        if "mail" not in row and len(pair.sink.messages) > mails:
            row["mail"] = pair.sink.arrival[mails] - killed
        time.sleep(0.02)
    assert len(row) == 2, f"no takeover within 60 s ({row}); see {new.log}"
    lines = new.log.read_text().splitlines()
    row["lease"] = logged_at([ln for ln in lines if "central lease taken" in ln][-1], "lease taken") - killed
    row["serving"] = logged_at([ln for ln in lines if "central listening on" in ln][-1], "listening on") - killed
    old.start(standby=True)
    return row


async def spooled(directory: Path) -> list[dict[str, Any]]:
    """Every result in a stopped poller's spool, with its seq."""
    spool = Spool(directory)
    await spool.open()
    try:
        return await asyncio.to_thread(spool.read, 0, 1 << 30)
    finally:
        await spool.close()


def assert_each_result_stored_once(pair: Pair, dsn: str) -> None:
    """Stop the poller, then hold its spool against the database: every graphed result up
    to the seq central stored for the poller is in the shared graph feed (written in the
    transaction that stores the result) exactly once, none after it is, nothing else is,
    and the seq the poller saw acknowledged is not past what central stored."""
    import psycopg
    assert pair.poller is not None
    pair.poller.terminate()
    assert pair.poller.wait(timeout=30) == 0
    spool = pair.tmp / "a" / "state-poller" / "spool"
    records = asyncio.run(spooled(spool))
    assert records and records[0]["seq"] == 1, "the spool no longer holds every result: nothing to audit"
    acked = int((spool / "acked").read_text())
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT seq FROM pollers WHERE name = 'poller-ladc1'").fetchone()[0]
        feed = Counter((i[0], i[1], i[3]) for (text,) in conn.execute("SELECT items FROM graph_feed")
                       for i in json.loads(text))
    assert 0 < acked <= stored <= records[-1]["seq"]
    graphed = [r for r in records if r["service"] is not None and r["perfdata"]]
    keys = [(r["host"], r["service"], r["finished"]) for r in graphed if r["seq"] <= stored]
    assert len(keys) > 100, len(keys)
    twice = [k for k in keys if feed[k] > 1]
    lost = [k for k in keys if feed[k] == 0]
    early = [(r["seq"], r["service"]) for r in graphed if r["seq"] > stored and feed[(r["host"], r["service"],
                                                                                      r["finished"])]]
    assert not twice and not lost and not early, (twice[:5], lost[:5], early[:5])
    assert sum(feed.values()) == len(keys)


def test_ten_kills_of_the_active_lose_nothing_and_tell_each_change_once(pair: Pair, postgres_dsn: str):
    """Kill -9 of whichever central is active, ten times, each time with a state change
    in flight: the other takes over within the target, every change is mailed once, each
    problem has its own rising event ID, the poller never alerts on its own, and every
    result it had acknowledged is stored exactly once."""
    wait_for(lambda: last_check(pair.a, "Replication") > 0, 10, "results at the active central")
    old, new, state = pair.a, pair.b, 0
    for _ in range(10):
        time.sleep(RENEW_EVERY * random.random())       # anywhere in the renewal cycle
        state = 2 - state
        row = failover_round(pair, old, new, state)
        assert row["ack"] < FAILOVER_TARGET, row
        old, new = new, old
    time.sleep(1.0)
    told = [(m["X-Checkd-Type"], int(m["X-Checkd-Event-ID"])) for m in pair.sink.messages
            if "Replication" in m["Subject"]]
    assert [kind for kind, _ in told] == ["PROBLEM", "RECOVERY"] * 5
    problems = [eid for kind, eid in told if kind == "PROBLEM"]
    assert problems == sorted(set(problems))
    assert len({m["Message-ID"] for m in pair.sink.messages}) == len(pair.sink.messages)
    assert "alerts on its own" not in pair.poller_log()
    assert_each_result_stored_once(pair, postgres_dsn)


def test_a_kill_after_the_smtp_accept_repeats_that_mail_under_the_same_message_id(pair: Pair):
    """The one repeat there can be: the SMTP server accepted a message and the active central
    died before it marked it sent. The new active sends it again, recognisably."""
    assert pair.a.proc is not None
    victim = pair.a.proc.pid

    def kill_the_sender(_msg: Any) -> None:
        pair.sink.on_message = None
        os.kill(victim, signal.SIGKILL)         # before the 250 reply reaches it

    pair.sink.on_message = kill_the_sender
    pair.set("repl", 2)
    mails = pair.sink.wait(lambda m: m["X-Checkd-Type"] == "PROBLEM" and "Replication" in m["Subject"],
                           count=2, timeout=FAILOVER_TARGET + 10)
    assert mails[0]["Message-ID"] == mails[1]["Message-ID"]
    assert mails[0]["X-Checkd-Event-ID"] == mails[1]["X-Checkd-Event-ID"]
    time.sleep(1.0)
    assert len(pair.mails("PROBLEM", "Replication")) == 2


def test_make_demo_ha_runs_the_example_configuration_as_a_pair(tmp_path: Path):
    """contrib/demo_ha.py (make demo-ha) on free ports: one central active, the other standby."""
    require_plugins()
    require_postgres()
    ports = [free_port(), free_port()]
    out = subprocess.run([sys.executable, "contrib/demo_ha.py", "--ports", ",".join(map(str, ports)), "--for", "12",
                          "--state", str(tmp_path / "state")], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"active: http://127.0.0.1:{ports[0]}" in out.stdout
    assert "central lease taken" in out.stderr and "standby: central" in out.stderr
