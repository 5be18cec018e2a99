"""Graphs with real rrdtool and a real rrdcached (unix socket in the test's temp dir):
results posted to a real central land in RRD files; a week of history and a
deployment render into a PNG whose pixels show the red week-over-week line, the
deployment line and the thresholds; hostile host/service/metric names never reach
a path; the writer never blocks ingest and never loses values silently."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from central.graphs.catalog import Catalog, Entry
from central.graphs.naming import Layout, ds_name, file_name, safe_name
from central.graphs.request import BadRequest, window
from central.graphs.rra import create_args, kind_of
from central.graphs.settings import RrdSettings
from tests.central_proc import CentralProc, result
from tests.helpers import small_tmpfs, wait_for
from tests.notify_env import MailSink
from tests.png import decode
from tests.rrdcached import Rrdcached, require_rrd

try:
    import rrdtool
except ImportError:             # every test that needs it calls require_rrd(): a skip here, a failure in CI
    rrdtool = None

DEPLOY_TOKEN = "deploy-secret"
OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
contacts:
  - {name: ops, email: ops@example.com}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1}
services:
  - {host: db1.ladc1, description: Disk /, command: "check_dummy!0!ok", interval: 10s}
  - {host: db1.ladc1, description: Load, command: "check_dummy!0!ok", interval: 60s, max_attempts: 1,
     contacts: [ops]}
  - {host: db1.ladc1, description: Quiet, command: "check_dummy!0!ok", graph: false}
"""
RED, VIOLET, AMBER, LILAC = (255, 0, 0), (148, 0, 211), (232, 160, 0), (200, 144, 240)


def near(px: tuple[int, int, int], color: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px, color))


def rrd_node(rrd_dir: Path, rrdcached: str = "", more: str = "") -> str:
    cached = f", rrdcached: '{rrdcached}'" if rrdcached else ""
    return f"  rrd: {{dir: '{rrd_dir}'{cached}{more}}}\n  deploy_tokens: {{ci: {DEPLOY_TOKEN}}}\n"


def graph_counters(c: CentralProc, until: Callable[[dict], bool], timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        doc = c.get("/api/v1/graphs")
        if until(doc):
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)


def history(rrd_dir: Path, host: str, service: str, label: str, step: int, now: int,
            value: Callable[[int], float], days: int = 8, uom: str = "") -> Path:
    """A label's file as the writer would create it, filled with `days` of values up to `now`."""
    layout, s = Layout(rrd_dir), RrdSettings(dir=rrd_dir)
    path = layout.path(host, file_name(service, label))
    path.parent.mkdir(parents=True, exist_ok=True)
    first = (now - days * 86400) // step * step
    rrdtool.create(str(path), "--start", str(first - 1), *create_args(step, kind_of(uom), ds_name(label), s))
    times = list(range(first, now + 1, step))
    for i in range(0, len(times), 2000):
        rrdtool.update(str(path), *[f"{t}:{value(t)}" for t in times[i:i + 2000]])
    Catalog(layout).add(host, [Entry(service, label, path.name, ds_name(label), uom, kind_of(uom), step, time.time())])
    return path


@pytest.fixture
def cached(tmp_path: Path) -> Iterator[Rrdcached]:
    require_rrd()
    with Rrdcached(tmp_path, tmp_path / "rrd") as daemon:
        yield daemon


# --- names, layout, requests (no daemons) -------------------------------------------------

def test_names_are_safe_and_distinct() -> None:
    labels = ["/", "Disk /", "Disk _", "Disk__", "..", ".", "../../etc/passwd", "a:b", "-rf", "x" * 300,
              "über", "in bytes", "in_bytes", "/var/log", "_var_log", ""]
    names = [safe_name(x) for x in labels] + [file_name(s, x) for s in ("Disk /", "Disk _", "a", "a_") for x in labels]
    names += [file_name("ab", "c"), file_name("a", "bc")]
    assert len(set(names)) == len(names)
    for n in names:
        assert n and "/" not in n and ":" not in n and not n.startswith((".", "-")) and len(n) <= 110, n
        assert all(ch.isascii() and (ch.isalnum() or ch in "_.-") for ch in n), n
    for label in labels:
        ds = ds_name(label)
        assert 1 <= len(ds) <= 19 and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in ds), ds
    layout = Layout(Path("/srv/rrd"))
    assert layout.host_dir("../../x").parent == Path("/srv/rrd")
    assert layout.path("..", file_name("../..", "../../etc/passwd")).parent.parent == Path("/srv/rrd")
    for bad in ("../x.rrd", "/etc/passwd", ".hidden.rrd", "x.txt", "a/b.rrd", "..rrd"):
        with pytest.raises(ValueError):
            layout.path("db1", bad)


def test_files_keep_every_value_for_8_days_then_30_min_and_daily(tmp_path: Path) -> None:
    require_rrd()
    s = RrdSettings(dir=tmp_path)
    for step, uom in ((60, "ms"), (10, "c"), (300, "B")):
        path = tmp_path / f"{step}.rrd"
        rrdtool.create(str(path), "--start", "now-10s", *create_args(step, kind_of(uom), "v", s))
        info = rrdtool.info(str(path))
        assert info["step"] == step
        assert info["ds[v].type"] == ("DERIVE" if uom == "c" else "GAUGE")
        assert info["ds[v].minimal_heartbeat"] >= 2 * step + 1         # one missed check still joins
        rras = [(info[f"rra[{i}].cf"], info[f"rra[{i}].pdp_per_row"] * step, info[f"rra[{i}].rows"])
                for i in range(7)]
        assert rras[0][:2] == ("AVERAGE", step) and rras[0][1] * rras[0][2] >= 8 * 86400
        assert {cf for cf, _, _ in rras[1:4]} == {"AVERAGE", "MIN", "MAX"}
        assert all(res == 1800 and res * rows >= 60 * 86400 for _, res, rows in rras[1:4])
        assert all(res == 86400 and res * rows >= 730 * 86400 for _, res, rows in rras[4:7])
    size = (tmp_path / "10.rrd").stat().st_size
    start = int(time.time())
    rrdtool.update(str(tmp_path / "10.rrd"), *[f"{start + 10 * i}:{i}" for i in range(1, 2000)])
    assert (tmp_path / "10.rrd").stat().st_size == size             # a fixed size, however long it runs


def test_time_ranges_and_sizes_are_checked() -> None:
    now = 1_800_000_000.0
    assert window({}, now) == window({"start": "-1d", "end": "now"}, now)
    w = window({"period": "4h", "width": "400", "height": "100"}, now)
    assert (w.end - w.start, w.width, w.height) == (4 * 3600, 400, 100)
    assert window({"start": "now-2h", "end": str(int(now - 3600))}, now).start == int(now - 7200)
    for q, words in [({"width": "99999"}, "width"), ({"height": "0"}, "height"), ({"width": "1e3"}, "width"),
                     ({"start": "now", "end": "-1d"}, "at least"), ({"start": "-3650d"}, "at most"),
                     ({"period": "decade"}, "period"), ({"start": "yesterday"}, "start"),
                     ({"end": str(int(now + 3 * 86400))}, "future"), ({"start": "nan"}, "start"),
                     ({"period": "day", "start": "-1d"}, "not both")]:
        with pytest.raises(BadRequest, match=words):
            window(q, now)


def test_rrd_settings_are_checked_at_load(tmp_path: Path) -> None:
    from tests.test_config import BASE, check_config, write_tree
    node = ("central:\n  listen: 127.0.0.1:8080\n  state_dir: s\n  objects: objects\n"
            "  rrd: {dir: rrd, keep_full: 2d, mid_step: 1d, long_step: 1h, keep_mid: 10s, colour: red}\n")
    result = check_config(write_tree(tmp_path, {"a.yaml": BASE}, node=node))
    assert result.returncode == 1
    for words in ("keep_full must be at least 8d", "mid_step must be shorter than long_step",
                  "keep_mid must be at least one step", "unknown key 'colour'"):
        assert words in result.stderr, result.stderr


# --- storage, end to end ----------------------------------------------------------------

@pytest.mark.parametrize("through", ["rrdcached", "direct"])
def test_posted_results_land_in_rrd_files(tmp_path: Path, through: str) -> None:
    require_rrd()
    rrd_dir = tmp_path / "rrd"
    daemon = Rrdcached(tmp_path, rrd_dir) if through == "rrdcached" else None
    if daemon:
        daemon.start()
    try:
        with CentralProc(tmp_path / "c", objects=OBJECTS, extra=rrd_node(rrd_dir, daemon.address if daemon else "")) as c:
            t0 = int(time.time()) // 10 * 10 - 100
            batch = [result(k + 1, "db1.ladc1", "Disk /", 0, finished=float(t0 + 10 * k),
                            perfdata=f"/={1000 + k}MB;5000;5500;0;6000 'in bytes'={100 * k}c "
                                     f"'../../etc/passwd'={k}")
                     for k in range(6)]
            batch.append(result(7, "db1.ladc1", "Quiet", 0, perfdata="x=1"))
            st, ans = c.post_results("poller-ladc1", batch)
            assert st == 200 and ans["accepted"] == 7
            doc = graph_counters(c, lambda d: d["writer"].get("written", 0) >= 18)
            assert doc["writer"]["created"] == 3 and doc["dropped"] == 0 and doc["writer"]["rejected"] == 0
            assert doc["rrdcached"] == (daemon.address if daemon else None)

            labels = Catalog(Layout(rrd_dir)).labels("db1.ladc1", "Disk /")
            assert set(labels) == {"/", "in bytes", "../../etc/passwd"}
            files = sorted(p for p in rrd_dir.rglob("*.rrd"))
            assert len(files) == 3 and all(p.resolve().is_relative_to(rrd_dir) for p in files)
            assert Catalog(Layout(rrd_dir)).labels("db1.ladc1", "Quiet") == {}       # graph: false

            def fetch(label: str) -> list[float | None]:
                e = labels[label]
                path = str(Layout(rrd_dir).path("db1.ladc1", e.file))
                flush = ["--daemon", daemon.address] if daemon else []
                _, names, rows = rrdtool.fetch(*flush, path, "AVERAGE", "--start", str(t0), "--end", str(t0 + 50))
                assert names == (e.ds,)
                return [r[0] for r in rows[:5]]

            assert fetch("/") == [1001.0, 1002.0, 1003.0, 1004.0, 1005.0]
            assert fetch("in bytes") == [10.0] * 5          # a counter is stored as its rate per second
            assert fetch("../../etc/passwd") == [1.0, 2.0, 3.0, 4.0, 5.0]
            assert labels["in bytes"].kind == "DERIVE" and labels["/"].uom == "MB" and labels["/"].step == 10

            # An older result than the check holds is stale for the store: it never reaches a file.
            st, ans = c.post_results("poller-ladc1", [result(8, "db1.ladc1", "Disk /", 0, finished=float(t0 - 5),
                                                             perfdata="/=1MB")])
            assert ans["stale"] == 1 and c.get("/api/v1/graphs")["sent"] == 6
            series = c.get(f"/graph/db1.ladc1/Disk%20%2F.json?metric=%2F&start={t0 - 60}&end={t0 + 120}")
            assert [v for v in series["value"] if v is not None] == [1001.0, 1002.0, 1003.0, 1004.0, 1005.0]
            assert series["uom"] == "MB" and series["thresholds"] == {"warn": [5000.0], "crit": [5500.0]}
    finally:
        if daemon:
            daemon.stop()


def test_values_posted_just_before_a_stop_are_stored(tmp_path: Path) -> None:
    require_rrd()
    rrd_dir = tmp_path / "rrd"
    c = CentralProc(tmp_path / "c", objects=OBJECTS, extra=rrd_node(rrd_dir))
    c.start()
    t0 = int(time.time()) // 10 * 10 - 100
    try:
        st, _ = c.post_results("poller-ladc1", [result(k + 1, "db1.ladc1", "Disk /", 0, finished=float(t0 + 10 * k),
                                                       perfdata=f"used={k}B") for k in range(6)])
        assert st == 200
    finally:
        assert c.stop() == 0                    # SIGTERM at once: central hands over, the writer stores
    [entry] = Catalog(Layout(rrd_dir)).labels("db1.ladc1", "Disk /").values()
    path = Layout(rrd_dir).path("db1.ladc1", entry.file)
    assert rrdtool.last(str(path)) == t0 + 50
    log = (tmp_path / "c" / "central.log").read_text()
    assert "did not finish" not in log and "exited with" not in log
    assert "went away" not in log and "Traceback" not in log     # a stop, not a death: the writer is quiet


def test_a_slow_writer_never_blocks_ingest_and_drops_are_counted(tmp_path: Path) -> None:
    require_rrd()
    with CentralProc(tmp_path / "c", objects=OBJECTS, extra=rrd_node(tmp_path / "rrd", more=", queue: 50")) as c:
        pid = graph_counters(c, lambda d: d["writer_pid"] is not None)["writer_pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.time() - 3000
            seq = 0
            for b in range(4):          # more than the pipe and the queue hold
                batch = []
                for _ in range(500):
                    seq += 1
                    batch.append(result(seq, "db1.ladc1", "Disk /", 0, finished=t0 + seq,
                                        perfdata=f"'a long label to fill the pipe {seq % 7}'={seq}B"))
                started = time.monotonic()
                st, _ = c.post_results("poller-ladc1", batch)
                assert st == 200 and time.monotonic() - started < 2.0    # ingest does not wait for the writer
            doc = c.get("/api/v1/graphs")
            assert doc["dropped"] > 0 and doc["queued"] <= 50
            assert doc["sent"] + doc["dropped"] + doc["queued"] == 2000
        finally:
            os.kill(pid, signal.SIGCONT)
        doc = graph_counters(c, lambda d: d["writer"].get("received", 0) == d["sent"] and not d["queued"])
        assert doc["writer"]["values"] == doc["sent"]
        assert "RRD writer is behind" in c.log.read_text()

        # A writer that dies is restarted, and what it may have lost is counted.
        os.kill(pid, signal.SIGKILL)
        doc = graph_counters(c, lambda d: d["restarts"] == 1 and d["writer_pid"] not in (None, pid))
        c.post_results("poller-ladc1", [result(seq + 1, "db1.ladc1", "Disk /", 0, perfdata="'new label'=5B")])
        graph_counters(c, lambda d: d["writer"].get("created", 0) >= 8)
        assert "RRD writer (pid" in c.log.read_text()


def ended(pid: int) -> bool:
    """Exited: gone, or a zombie nobody reaped yet (a killed central's child goes to init)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_killed_central_leaves_its_writer_to_end_quietly(tmp_path: Path) -> None:
    """kill -9 of central closes the writer's pipes: it stores what it got, says so in one
    line, and exits, with no traceback (it used to die writing its counters: BrokenPipeError)."""
    require_rrd()
    c = CentralProc(tmp_path / "c", objects=OBJECTS, extra=rrd_node(tmp_path / "rrd"))
    c.start()
    try:
        t0 = int(time.time()) // 10 * 10 - 100
        st, _ = c.post_results("poller-ladc1", [result(k + 1, "db1.ladc1", "Disk /", 0, finished=float(t0 + 10 * k),
                                                       perfdata=f"used={k}B") for k in range(6)])
        assert st == 200
        pid = graph_counters(c, lambda d: d["writer"].get("written", 0) == 6)["writer_pid"]
        before = c.log.stat().st_size
    finally:
        c.stop(kill=True)
    wait_for(lambda: ended(pid), 10, f"the writer (pid {pid}) to exit after central was killed")
    said = c.log.read_bytes()[before:].decode()
    lines = said.splitlines()
    assert len(lines) == 1 and "Traceback" not in said and "Error" not in said, said
    assert "central.graphs.writer: central (pid" in lines[0] and "went away without stopping the feed" in lines[0]


def test_an_rrd_dir_that_cannot_be_made_costs_graphs_not_central(tmp_path: Path) -> None:
    require_rrd()
    (tmp_path / "afile").write_text("a file where the rrd dir's parent should be\n")
    rrd_dir = tmp_path / "afile" / "rrd"
    with CentralProc(tmp_path / "c", objects=OBJECTS, extra=rrd_node(rrd_dir)) as c:
        st, ans = c.post_results("poller-ladc1", [result(1, "db1.ladc1", "Load", 2, "LOAD CRITICAL",
                                                         perfdata="load1=9;4;5;0")])
        assert st == 200 and ans["accepted"] == 1
        assert [p["output"] for p in c.get("/api/v1/problems")["problems"]] == ["LOAD CRITICAL"]
        doc = graph_counters(c, lambda d: d["writer"].get("errors", 0) >= 1)
        assert "Not a directory" in doc["writer"]["last_error"] and doc["restarts"] == 0
        assert fetch_raw(c, "/graph/db1.ladc1/Load.png")[0] == 404       # no file: "no metrics stored yet"
    log = c.log.read_text()
    assert f"rrd: cannot create the directory {rrd_dir} (Not a directory)" in log
    assert "cannot create" in log and "Traceback" not in log and "exited with" not in log


def test_a_full_disk_is_a_clear_error_and_heals_when_space_is_freed(tmp_path: Path) -> None:
    """A real full file system: a 2 MB tmpfs, nearly filled."""
    require_rrd()
    with small_tmpfs(tmp_path / "rrd") as rrd_dir:
        filler = rrd_dir / "filler"
        with open(filler, "wb") as f:          # leave less than one 60 s file (~180 KB)
            f.write(b"x" * (2048 - 100) * 1024)
        with CentralProc(tmp_path / "c", objects=OBJECTS, extra=rrd_node(rrd_dir)) as c:
            t0 = int(time.time()) - 600
            st, _ = c.post_results("poller-ladc1", [result(1, "db1.ladc1", "Load", 0, finished=t0,
                                                           perfdata="load1=1;4;5;0")])
            assert st == 200
            doc = graph_counters(c, lambda d: d["writer"].get("errors", 0) >= 1)
            assert "full?" in doc["writer"]["last_error"] and doc["writer"]["written"] == 0
            assert "KiB and" in c.log.read_text()

            filler.unlink()
            st, _ = c.post_results("poller-ladc1", [result(2, "db1.ladc1", "Load", 0, finished=t0 + 60,
                                                           perfdata="load1=2;4;5;0")])
            doc = graph_counters(c, lambda d: d["writer"].get("written", 0) == 1)
            assert doc["restarts"] == 0 and doc["writer"]["created"] == 1
            assert c.get("/api/v1/problems")["problems"] == []
        log = c.log.read_text()
        assert "Traceback" not in log and "exited with" not in log
        assert log.count("cannot create") == 1            # the writer says it once, not per value


# --- rendering ---------------------------------------------------------------------------

def test_week_line_thresholds_and_deployment_are_in_the_pixels(tmp_path: Path) -> None:
    """Rendered in-process, so rrdtool tells where the graph area and the times are."""
    require_rrd()
    from central.graphs.render import Deploy, Graph, png

    now = int(time.time()) // 60 * 60
    week_ago = now - 7 * 86400
    # This week is 1.5 higher than last week: the two lines never overlap.
    path = history(tmp_path, "db1.ladc1", "Load", "load1", 60, now,
                   lambda t: 2 + math.sin(2 * math.pi * t / 86400) + (1.5 if t > week_ago else 0))

    def draw(start: int, end: int, deploys: tuple[Deploy, ...]) -> tuple[list, dict]:
        g = Graph("db1.ladc1", "Load", "load1", path, "load1", "", "GAUGE", start, end, 600, 200,
                  warn=(4.0,), crit=(5.0,), deploys=deploys)
        image, info = png(g)
        width, height, rows = decode(image)
        assert (width, height) == (info["image_width"], info["image_height"])
        return rows, info

    deploy = Deploy(now - 6 * 3600, "shop", "4711", "alice")
    rows, info = draw(now - 86400, now, (deploy,))
    left, top, gw, gh = info["graph_left"], info["graph_top"], info["graph_width"], info["graph_height"]
    area = [row[left:left + gw] for row in rows[top:top + gh]]

    red = sum(near(px, RED, 60) for row in area for px in row)
    assert red >= gw // 2, f"{red} red pixels: the week-over-week line is missing"
    x = left + round((deploy.ts - info["graph_start"]) * gw / (info["graph_end"] - info["graph_start"]))
    column = max(sum(near(rows[y][xx], VIOLET) for y in range(top, top + gh)) for xx in (x - 1, x, x + 1))
    assert column >= gh * 0.8, f"deployment line: {column} of {gh} pixels at x={x}"
    amber_rows = [sum(near(px, AMBER) for px in row) for row in area]
    assert max(amber_rows) >= gw // 3, "the warning threshold line is missing"
    assert any("warning 4" in str(v) for k, v in info.items() if k.startswith("legend"))
    assert any("r4711 @alice" in str(v) for k, v in info.items() if k.startswith("legend"))

    # Control: 8.5 days back there is no week before, and no deployment: no red, no violet.
    rows, info = draw(now - 8 * 86400 - 43200, now - 7 * 86400 - 43200, ())
    area = [row[left:left + gw] for row in rows[top:top + gh]]
    assert sum(near(px, RED, 60) for row in area for px in row) < 5
    assert sum(near(px, VIOLET) for row in area for px in row) == 0


def test_graph_over_http_with_a_deployment_through_rrdcached(tmp_path: Path, cached: Rrdcached) -> None:
    now = int(time.time()) // 60 * 60 - 60
    week_ago = now - 7 * 86400
    history(cached.rrd_dir, "db1.ladc1", "Load", "load1", 60, now,
            lambda t: 2 + math.sin(2 * math.pi * t / 86400) + (1.5 if t > week_ago else 0))
    with CentralProc(tmp_path / "c", objects=OBJECTS, extra=rrd_node(cached.rrd_dir, cached.address)) as c:
        st, ans = c.post_results("poller-ladc1", [result(1, "db1.ladc1", "Load", 0, perfdata="load1=2.5;4;5;0")])
        assert st == 200
        st, d = c.call("POST", "/api/v1/deployments", {"action": "start", "hosts": ["db1.ladc1"], "module": "shop",
                                                       "revision": "4711", "engineer": "alice"}, token=DEPLOY_TOKEN)
        assert st == 201
        assert c.call("POST", "/api/v1/deployments", {"action": "finish", "id": d["id"]}, token=DEPLOY_TOKEN)[0] == 200
        graph_counters(c, lambda doc: doc["writer"].get("written", 0) >= 1)

        end = int(time.time()) + 4 * 3600          # the deployment (now) sits at 5/6 of the width
        query = f"metric=load1&start={end - 86400}&end={end}&width=600&height=200"
        status, body = fetch_raw(c, f"/graph/db1.ladc1/Load.png?{query}")
        assert status == 200
        width, height, rows = decode(body)
        violet_columns = [x for x in range(width) if sum(near(rows[y][x], VIOLET) for y in range(height)) >= 160]
        assert violet_columns, "no deployment line"
        assert sum(near(px, RED, 60) for row in rows for px in row) >= 300

        series = c.get(f"/graph/db1.ladc1/Load.json?{query}")
        assert [d["label"] for d in series["deployments"]] == ["r4711 @alice"]
        assert series["thresholds"] == {"warn": [4.0], "crit": [5.0]}
        known = [(v, w) for v, w in zip(series["value"], series["week_before"]) if v is not None and w is not None]
        assert len(known) > 100 and all(abs(v - w - 1.5) < 0.2 for v, w in known[5:-5])

        for period in ("4h", "day", "week", "month", "year"):
            status, body = fetch_raw(c, f"/graph/db1.ladc1/Load.png?period={period}")
            assert status == 200 and body[:4] == b"\x89PNG", period

        metrics = c.get("/api/v1/metrics/db1.ladc1/Load?window=1h")["metrics"]
        [m] = metrics
        assert m["label"] == "load1" and m["value"] == 2.5 and m["crit"] == "5"
        # The last hour's mean holds the live value (2.5, below the history's curve) for as many
        # minutes as the test took since the history ended: 0.2, as for the series above.
        assert abs(m["delta"] - 1.5) < 0.2 and m["week_before"] is not None
        assert (cached.rrd_dir / m["file"]).is_file()


def fetch_raw(c: CentralProc, path: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(c.url + path, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def columns(rows: list, color: tuple[int, int, int], at_least: int) -> list[int]:
    """The x of every column with at least `at_least` pixels of `color`."""
    return [x for x in range(len(rows[0])) if sum(near(row[x], color) for row in rows) >= at_least]


def test_every_deployment_is_on_every_graph_and_the_own_host_s_stand_out(tmp_path: Path) -> None:
    """The seed: each deployment is a vertical line on each graph, so a problem can be put
    next to the deployment nearest it, whichever host it touched. The graph's own host's are
    solid violet, 2 px; other hosts' dashed lilac; `?deploys=` narrows."""
    require_rrd()
    rrd_dir = tmp_path / "rrd"
    now = int(time.time()) // 60 * 60
    history(rrd_dir, "db1.ladc1", "Load", "load1", 60, now, lambda t: 1.0, days=1)
    with CentralProc(tmp_path / "c", objects=OBJECTS, extra=rrd_node(rrd_dir)) as c:
        c.post_results("poller-ladc1", [result(1, "db1.ladc1", "Load", 0, perfdata="load1=1;4;5;0")])

        def deployed(host: str, module: str, revision: str, engineer: str, summary: str) -> float:
            st, d = c.call("POST", "/api/v1/deployments", {"action": "start", "hosts": [host], "module": module,
                                                           "revision": revision, "engineer": engineer,
                                                           "summary": summary}, token=DEPLOY_TOKEN)
            assert st == 201, d
            st, d = c.call("POST", "/api/v1/deployments", {"action": "finish", "id": d["id"]}, token=DEPLOY_TOKEN)
            assert st == 200, d
            return d["finished"]

        own = deployed("db1.ladc1", "shop", "4711", "alice", "Fix the cart rounding\n\nLong body")
        time.sleep(3.5)                 # 3 px or more on this 600 px wide, 10 minute graph
        other = deployed("web1.ladc1", "api", "815", "bob", "Pool of 64 connections")
        start = int(own) - 300
        query = f"metric=load1&start={start}&end={start + 600}&width=600&height=200"

        def draw(extra: str = "") -> list:
            status, body = fetch_raw(c, f"/graph/db1.ladc1/Load.png?{query}{extra}")
            assert status == 200, body[:300]
            return decode(body)[2]

        rows = draw()
        violet, lilac = columns(rows, VIOLET, 180), columns(rows, LILAC, 100)
        assert len(violet) == 2 and violet[1] == violet[0] + 1, f"own host's line: columns {violet}"
        assert lilac, "another host's deployment is not on this host's graph"
        assert all(x - violet[1] >= 2 for x in lilac), (violet, lilac)       # drawn where it happened: later
        assert all(sum(near(row[x], LILAC) for row in rows) < 180 for x in lilac)      # dashed, not solid
        assert not any(sum(near(row[x], VIOLET) for row in rows) for x in lilac)

        series = c.get(f"/graph/db1.ladc1/Load.json?{query}")
        assert series["deploys"] == "all" and series["deployments_not_drawn"] == 0
        assert [(d["label"], d["own"], d["hosts"], d["summary"]) for d in series["deployments"]] == [
            ("r4711 @alice", True, ["db1.ladc1"], "Fix the cart rounding"),
            ("r815 @bob", False, ["web1.ladc1"], "Pool of 64 connections")]
        assert abs(series["deployments"][1]["ts"] - other) < 0.01

        rows = draw("&deploys=host")
        assert len(columns(rows, VIOLET, 180)) == 2 and columns(rows, LILAC, 100) == []
        assert [d["own"] for d in c.get(f"/graph/db1.ladc1/Load.json?{query}&deploys=host")["deployments"]] == [True]
        rows = draw("&deploys=none")
        assert columns(rows, VIOLET, 50) == [] and columns(rows, LILAC, 50) == []
        assert c.get(f"/graph/db1.ladc1/Load.json?{query}&deploys=none")["deployments"] == []
        status, body = fetch_raw(c, f"/graph/db1.ladc1/Load.png?{query}&deploys=mine")
        assert status == 400 and b"deploys: one of all, host, none" in body


def test_many_deployments_keep_the_legend_bounded(tmp_path: Path) -> None:
    require_rrd()
    from central.graphs.render import MARKER_LEGENDS, Deploy, Graph, png

    now = int(time.time()) // 60 * 60
    path = history(tmp_path, "db1.ladc1", "Load", "load1", 60, now, lambda t: 1.0, days=1)

    def draw(deploys: list[Deploy]) -> tuple[int, list[str]]:
        g = Graph("db1.ladc1", "Load", "load1", path, "load1", "", "GAUGE", now - 86400, now, 600, 200,
                  warn=(4.0,), deploys=tuple(deploys))
        image, info = png(g)
        return decode(image)[1], [str(info[f"legend[{i}]"]) for i in range(len(info)) if f"legend[{i}]" in info]

    own = Deploy(now - 7200, "shop", "1", "alice", "x" * 200, ("db1.ladc1",), True)
    others = [Deploy(now - 60 * i, "api", str(i), "bob", "a summary", tuple(f"web{n}.ladc1" for n in range(3)),
                     False) for i in range(1, 60)]
    few_height, _ = draw([own, *others[:MARKER_LEGENDS]])
    many_height, many = draw([own, *others])
    assert many_height == few_height                 # 60 deployments: no taller than 9
    named = [t for t in many if "@" in t]
    assert len(named) == MARKER_LEGENDS and "shop r1 @alice: xxx" in named[0] and named[0].endswith("…")
    assert all(len(t.strip()) <= 80 for t in named)
    assert "api r1 @bob on web0.ladc1 +2: a summary" in named[1]           # the newest other one next
    assert any("and 52 more deployment(s), not named" in t for t in many)


def test_traversal_and_absurd_requests_are_refused(tmp_path: Path) -> None:
    require_rrd()
    rrd_dir = tmp_path / "rrd"
    now = int(time.time()) // 60 * 60
    history(rrd_dir, "db1.ladc1", "Load", "load1", 60, now, lambda t: 1.0, days=1)
    (tmp_path / "secret.rrd").write_text("not for you")
    with CentralProc(tmp_path / "c", objects=OBJECTS, extra=rrd_node(rrd_dir)) as c:
        for path in ["/graph/..%2F..%2Fetc/passwd.png", "/graph/%2E%2E/Load.png", "/graph/db1.ladc1/..%2F..%2Fx.png",
                     "/graph/db1.ladc1/Load.png?metric=..%2F..%2F..%2Fsecret",
                     "/graph/db1.ladc1/Load.png?metric=%2Fetc%2Fpasswd",
                     "/graph/db1.ladc1/Load.json?metric=..%2Fsecret.rrd",
                     "/graph/db1.ladc1/%2E%2E.png", "/graph/db1.ladc1/Quiet.png", "/graph/nohost/Load.png",
                     "/api/v1/metrics/db1.ladc1/..%2F..%2Fsecret", "/api/v1/metrics/..%2F/Load"]:
            status, body = fetch_raw(c, path)
            assert status == 404 and b'"error"' in body, (path, status, body[:200])
        for query in ["width=100000", "height=-1", "start=now&end=-1d", "start=-20000d", "period=forever",
                      "end=9999999999", "start=%3Bcat"]:
            status, body = fetch_raw(c, f"/graph/db1.ladc1/Load.png?{query}")
            assert status == 400 and b'"error"' in body, (query, status, body[:200])
        assert fetch_raw(c, "/api/v1/metrics/db1.ladc1/Load?window=30d")[0] == 400
        assert fetch_raw(c, "/graph/db1.ladc1/Load.png")[0] == 200
        assert c.get("/api/v1/graphs")["rendered"] == 1


def test_graphs_are_off_without_an_rrd_section(tmp_path: Path) -> None:
    with CentralProc(tmp_path / "c", objects=OBJECTS) as c:
        status, body = fetch_raw(c, "/graph/db1.ladc1/Load.png")
        assert status == 404 and b"no rrd: section" in body


# --- alerts ------------------------------------------------------------------------------

def test_the_metric_that_crossed_its_threshold_is_chosen() -> None:
    from central.graphs.alerts import crossed
    from checkd.perfdata import parse
    assert crossed(parse("a=1;5;10 b=7;5;10 c=20;5;10")[0]).label == "c"        # critical first
    assert crossed(parse("a=1;5;10 b=7;5;10")[0]).label == "b"
    assert crossed(parse("a=1;5;10 b=2")[0]) is None
    assert crossed(parse("free=5;@0:10;@0:3")[0]).label == "free"              # inside an @ range


def test_problem_mail_carries_the_trend_graph(tmp_path: Path) -> None:
    require_rrd()
    rrd_dir = tmp_path / "rrd"
    now = int(time.time()) // 60 * 60 - 60
    history(rrd_dir, "db1.ladc1", "Load", "load5", 60, now, lambda t: 1.0, days=1)
    # Only load1 has a week before (and differs from it): red pixels mean load1 was drawn.
    history(rrd_dir, "db1.ladc1", "Load", "load1", 60, now,
            lambda t: 1.0 + (t % 3600) / 900 + (2 if t > now - 7 * 86400 else 0), days=8)
    sink = MailSink()
    sink.start()
    try:
        extra = (rrd_node(rrd_dir) + f"  email: {{smtp_host: 127.0.0.1, smtp_port: {sink.port}, "
                 "from: checkd@example.com, timeout: 5s}\n")
        with CentralProc(tmp_path / "c", objects=OBJECTS, extra=extra) as c:
            st, _ = c.post_results("poller-ladc1", [result(1, "db1.ladc1", "Load", 2, "LOAD CRITICAL",
                                                           perfdata="load5=1;4;5;0 load1=9;4;5;0")])
            assert st == 200
            [mail] = sink.wait(lambda m: "Load CRITICAL" in m["Subject"])
            [part] = list(mail.iter_attachments())
            assert part.get_content_type() == "image/png"
            width, height, rows = decode(part.get_content())
            assert 600 < width < 800 and 200 < height < 400                # the alert's 600x200 graph area
            assert sum(near(px, RED, 60) for row in rows for px in row) >= 200    # with the week-before line
    finally:
        sink.stop()
