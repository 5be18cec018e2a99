"""Metrics export (docs/metrics-export.md) against real receivers on 127.0.0.1: Debian's
carbon-cache (Graphite plaintext, read back from its whisper files) and VictoriaMetrics
(Prometheus remote write and InfluxDB line protocol, read back with /api/v1/export).
One central and one of each receiver for the module; a third target sits behind a
proxy that is cut until the last test, to show the bounded queue and its drops."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkd.config import ConfigError, load_node
from tests.central_proc import CentralProc, result
from tests.helpers import free_port, require_binary, require_plugins, start_server, wait_for
from tests.rrdcached import require_rrd
from tests.tcp_proxy import Proxy

MAX_LIFETIME = 240.0
OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: web2.nydc1, address: 127.0.0.1, site: nydc1}
services:
  - {hosts: [db1.ladc1, web1.ladc1, web2.nydc1], description: Disk /, command: "check_dummy!0!ok"}
  - {host: db1.ladc1, description: Quiet, command: "check_dummy!0!ok", graph: false}
"""
CARBON_CONF = """\
[cache]
STORAGE_DIR = {dir}/storage
LOCAL_DATA_DIR = {dir}/storage/whisper
WHITELISTS_DIR = {dir}/storage/lists
CONF_DIR = {dir}
LOG_DIR = {dir}/log
PID_DIR = {dir}
USER =
ENABLE_LOGROTATION = False
ENABLE_TAGS = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 100000
MAX_CREATES_PER_MINUTE = inf
CARBON_METRIC_INTERVAL = 0
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query}
"""


class Receivers:
    """carbon-cache and victoria-metrics, each in its own directory, stopped by PID."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.carbon_port, self.vm_port = free_port(), free_port()
        self.procs: list[Any] = []

    def start(self) -> None:
        carbon = self.dir / "carbon"
        (carbon / "log").mkdir(parents=True)
        (carbon / "carbon.conf").write_text(CARBON_CONF.format(dir=carbon, line=self.carbon_port,
                                                               pickle=free_port(), query=free_port()))
        (carbon / "storage-schemas.conf").write_text("[all]\npattern = .*\nretentions = 1s:2d\n")
        self.procs += start_server([require_binary("carbon-cache"), f"--config={carbon / 'carbon.conf'}",
                                    "--nodaemon", "start"], "carbon-cache", self.carbon_port,
                                   carbon / "out.log", MAX_LIFETIME, wait=20)
        self.procs += start_server([require_binary("victoria-metrics"), f"-httpListenAddr=127.0.0.1:{self.vm_port}",
                                    f"-storageDataPath={self.dir / 'vm'}", "-retentionPeriod=100y",
                                    "-loggerLevel=WARN"], "victoria-metrics", self.vm_port,
                                   self.dir / "vm.log", MAX_LIFETIME)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()

    # --- reading back ---

    def whisper(self, *parts: str) -> dict[int, float]:
        """The non-empty points of one Graphite metric, {} before carbon created its file."""
        path = self.dir.joinpath("carbon", "storage", "whisper", *parts[:-1], parts[-1] + ".wsp")
        if not path.exists():
            return {}
        out = subprocess.run([require_binary("whisper-fetch"), f"--from={int(time.time()) - 3600}", str(path)],
                             capture_output=True, text=True, check=True).stdout
        return {int(ts): float(v) for ts, v in (line.split() for line in out.splitlines()) if v != "None"}

    def vm(self, selector: str) -> list[dict[str, Any]]:
        """Every series matching the selector, with its raw samples."""
        base = f"http://127.0.0.1:{self.vm_port}"
        urllib.request.urlopen(f"{base}/internal/force_flush", timeout=5).read()   # searchable now
        query = urllib.parse.urlencode({"match[]": selector, "start": "0"})
        with urllib.request.urlopen(f"{base}/api/v1/export?{query}", timeout=5) as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def receivers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receivers]:
    r = Receivers(tmp_path_factory.mktemp("receivers"))
    r.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def proxy(receivers: Receivers) -> Iterator[Proxy]:
    """In front of VictoriaMetrics, cut (nothing listening) until test_a_receiver_away heals it."""
    p = Proxy(receivers.vm_port)
    yield p
    p.cut()


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory, receivers: Receivers, proxy: Proxy) -> Iterator[CentralProc]:
    require_plugins()
    require_rrd()
    vm = f"http://127.0.0.1:{receivers.vm_port}"
    extra = ("  rrd: {dir: rrd}\n"          # RRD files as always, export besides them
             "  export:\n"
             f"    - {{type: graphite, name: carbon, address: '127.0.0.1:{receivers.carbon_port}',"
             " exclude: ['web2.nydc1/*', 'web1.ladc1/*']}\n"
             f"    - {{type: prometheus_remote_write, name: vm, url: '{vm}/api/v1/write',"
             " exclude: ['web1.ladc1/*']}\n"
             f"    - {{type: influx, name: vm-influx, url: '{vm}/write', prefix: influxed,"
             " include: ['db1.ladc1/Disk /*']}\n"
             f"    - {{type: prometheus_remote_write, name: later, url: 'http://127.0.0.1:{proxy.port}/api/v1/write',"
             " prefix: later, include: ['web1.ladc1/*'], deployments: false, queue: 20, batch: 5}\n"
             # A URL that answers 400 to anything posted: the receiver refusing the data itself.
             f"    - {{type: prometheus_remote_write, name: refusing, url: '{vm}/api/v1/query',"
             " include: ['db1.ladc1/*'], deployments: false}\n")
    c = CentralProc(tmp_path_factory.mktemp("central"), objects=OBJECTS, extra=extra)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def metric(text: str, name: str, target: str) -> float:
    m = re.search(rf'^{name}{{target="{target}"}} ([0-9.e+]+)$', text, re.M)
    assert m, f"{name}{{target={target!r}}} not in /metrics"
    return float(m.group(1))


def metrics_page(c: CentralProc) -> str:
    with urllib.request.urlopen(c.url + "/metrics", timeout=10) as r:
        return r.read().decode()


def test_perfdata_values_reach_graphite_and_victoria_metrics_with_their_names_and_times(
        central: CentralProc, receivers: Receivers) -> None:
    t = int(time.time()) - 30 + 0.25
    status, _ = central.post_results("poller-ladc1", [
        result(1, "db1.ladc1", "Disk /", 0, perfdata="/=1234MB;5000;5500;0;6000 'in bytes'=77c", finished=t),
        result(2, "db1.ladc1", "Quiet", 0, perfdata="hidden=5", finished=t)])
    assert status == 200
    status, _ = central.post_results("poller-nydc1", [result(1, "web2.nydc1", "Disk /", 0, perfdata="/=9MB",
                                                             finished=t)])
    assert status == 200

    # Graphite: PREFIX.HOST.SERVICE.LABEL with dots, spaces and slashes made `_`, whole seconds.
    points = wait_for(lambda: receivers.whisper("checkd", "db1_ladc1", "Disk__", "_"), 15, "carbon's whisper file")
    assert points == {int(t): 1234.0}
    assert wait_for(lambda: receivers.whisper("checkd", "db1_ladc1", "Disk__", "in_bytes"), 15,
                    "the second label") == {int(t): 77.0}

    # Remote write: labels as they are, milliseconds, the unit as a label.
    series = wait_for(lambda: receivers.vm('checkd_perfdata{host="db1.ladc1",label="/"}'), 15, "remote write")
    assert [(s["metric"], s["values"], s["timestamps"]) for s in series] == [
        ({"__name__": "checkd_perfdata", "host": "db1.ladc1", "service": "Disk /", "label": "/", "unit": "MB"},
         [1234], [int(t * 1000)])]
    labels = {(s["metric"]["host"], s["metric"]["label"]) for s in receivers.vm('checkd_perfdata')}
    assert labels == {("db1.ladc1", "/"), ("db1.ladc1", "in bytes"), ("web2.nydc1", "/")}   # not Quiet (graph: false)

    # InfluxDB line protocol: its own prefix, only what `include:` names.
    influxed = wait_for(lambda: receivers.vm('influxed_perfdata'), 15, "line protocol")
    assert sorted((s["metric"]["label"], s["values"], s["timestamps"]) for s in influxed) == [
        ("/", [1234], [int(t * 1000)]), ("in bytes", [77], [int(t * 1000)])]

    # exclude: web2.nydc1 never reached carbon; nothing was dropped on the way.
    assert not (receivers.dir / "carbon" / "storage" / "whisper" / "checkd" / "web2_nydc1").exists()
    page = metrics_page(central)
    assert metric(page, "checkd_export_dropped_total", "carbon") == 0
    assert metric(page, "checkd_export_sent_total", "vm") >= 3

    # The RRD files got the same values: export is a copy, not a replacement.
    rrd = wait_for(lambda: [m for m in central.get("/api/v1/metrics/db1.ladc1/Disk%20%2F")["metrics"]
                            if m["label"] == "/"], 15, "the RRD file")
    assert rrd[0]["value"] == 1234 and rrd[0]["uom"] == "MB"

    # A receiver refusing the values: dropped and counted once, not sent again and again.
    wait_for(lambda: metric(metrics_page(central), "checkd_export_dropped_total", "refusing") == 2, 10,
             "the refused values counted")
    time.sleep(1.2)             # longer than the first backoff: a retry would show as a second failure
    page = metrics_page(central)
    assert metric(page, "checkd_export_failures_total", "refusing") == 1
    assert metric(page, "checkd_export_queued", "refusing") == 0
    assert "export refusing: 2 values refused, dropped" in central.log.read_text()


def test_deployment_markers_are_series_for_grafana_annotations(central: CentralProc, receivers: Receivers) -> None:
    status, dep = central.write("POST", "/api/v1/deployments", {
        "action": "start", "hosts": ["db1.ladc1"], "module": "mysql", "revision": "4711", "engineer": "alice"})
    assert status == 201, dep
    status, done = central.write("POST", "/api/v1/deployments", {"action": "finish", "id": dep["id"]})
    assert status == 200, done

    series = wait_for(lambda: receivers.vm('checkd_deployment{phase="finish"}'), 15, "the deployment marker")
    assert [(s["metric"], s["values"]) for s in series] == [
        ({"__name__": "checkd_deployment", "host": "db1.ladc1", "module": "mysql", "revision": "4711",
          "engineer": "alice", "phase": "finish"}, [1])]
    assert abs(series[0]["timestamps"][0] / 1000 - done["finished"]) < 0.002
    assert {s["metric"]["phase"] for s in receivers.vm("checkd_deployment")} == {"start", "finish"}
    assert wait_for(lambda: receivers.whisper("checkd", "deployments", "db1_ladc1", "mysql", "finish"), 15,
                    "the Graphite marker") == {int(done["finished"]): 1.0}

    # The change log by time window, as an annotation source.
    log = central.get(f"/api/v1/deployments?since={dep['started'] - 1}&until={dep['started'] + 1}")["deployments"]
    assert [d["id"] for d in log] == [dep["id"]]
    assert central.get(f"/api/v1/deployments?until={dep['started'] - 1}")["deployments"] == []
    status, err = central.call("GET", "/api/v1/deployments?until=yesterday")
    assert status == 400 and "until:" in err["error"]


def test_a_receiver_away_fills_its_queue_drops_the_oldest_and_gets_the_newest_when_back(
        central: CentralProc, receivers: Receivers, proxy: Proxy) -> None:
    t0 = int(time.time()) - 20
    for k in range(5):          # 5 x 6 values to a target with room for 20: 10 dropped
        status, answer = central.post_results("poller-ladc1", [
            result(100 + k, "web1.ladc1", "Disk /", 0, finished=t0 + k,
                   perfdata=" ".join(f"v{i}={10 * k + i}" for i in range(6)))])
        assert status == 200 and answer["accepted"] == 1       # ingest goes on regardless
    wait_for(lambda: metric(metrics_page(central), "checkd_export_dropped_total", "later") >= 10, 10,
             "the drop counter")
    page = metrics_page(central)
    assert metric(page, "checkd_export_dropped_total", "later") == 10
    assert metric(page, "checkd_export_queued", "later") == 20
    assert metric(page, "checkd_export_failures_total", "later") >= 1
    assert metric(page, "checkd_export_dropped_total", "vm") == 0           # the other targets are not held up
    log = central.log.read_text()
    assert log.count("export later: queue full") == 1, "one line per burst of drops, not one per value"

    proxy.heal()
    status, _ = central.post_results("poller-ladc1", [result(105, "web1.ladc1", "Disk /", 0, finished=t0 + 5,
                                                             perfdata="v0=500")])
    assert status == 200
    # The 31st value pushed out one more old one: the newest 20 arrive, oldest first, v0=500 last.
    series = wait_for(lambda: [s for s in receivers.vm('later_perfdata{label="v0"}') if 500 in s["values"]],
                      20, "the queued values after the receiver came back")
    assert series[0]["values"] == [20, 30, 40, 500]
    assert series[0]["timestamps"] == [(t0 + k) * 1000 for k in (2, 3, 4, 5)]
    assert sum(len(s["values"]) for s in receivers.vm("later_perfdata")) == 20
    assert metric(metrics_page(central), "checkd_export_dropped_total", "later") == 11
    assert "export later: sending again" in central.log.read_text()


@pytest.mark.parametrize("targets, line, words", [
    ("- {type: graphit, address: '127.0.0.1:2003'}", 6,
     'one of graphite, prometheus_remote_write, influx (did you mean "graphite"?)'),
    ("- {type: graphite}", 6, "graphite needs `address: HOST:PORT`"),
    ("- {type: graphite, address: '127.0.0.1:2003', url: 'http://x/'}", 6, "url: not used by graphite"),
    ("- {type: prometheus_remote_write}", 6, "needs `url: http://127.0.0.1:8428/api/v1/write`"),
    ("- {type: influx, url: 'http://x/write', prefix: 'my prefix'}", 6, "prefix: a metric name start"),
    ("- {type: graphite, address: '127.0.0.1:2003', queue: 0}", 6, "queue:"),
    ("- {type: graphite, address: '127.0.0.1:2003', include: [3]}", 6, "expected a pattern or a list of patterns"),
    ("- {type: graphite, address: '127.0.0.1:2003', batchsize: 5}", 6, 'did you mean "batch"'),
    ("- {type: graphite, address: 'a:1'}\n    - {type: graphite, address: 'b:1'}", 6, None),
    ("- {type: graphite, address: 'a:1', name: x}\n    - {type: influx, url: 'http://b/write', name: x}", 7,
     "two targets named 'x'"),
    ("{type: graphite}", 5, "export: expected a list of targets"),
])
def test_export_settings_are_checked_at_load_with_file_and_line(tmp_path: Path, targets: str, line: int,
                                                                 words: str | None) -> None:
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "a.yaml").write_text("hosts:\n  - {name: db1, address: 127.0.0.1, site: a}\n")
    node_file = tmp_path / "central.yaml"
    node_file.write_text("central:\n  listen: 127.0.0.1:8080\n  state_dir: s\n  objects: objects\n"
                         f"  export:\n    {targets}\n")
    if words is None:           # two unnamed targets: each gets its type and place as its name
        node, _ = load_node(node_file)
        assert [t.name for t in node.exports] == ["graphite-1", "graphite-2"]
        return
    with pytest.raises(ConfigError) as e:
        load_node(node_file)
    assert f"{node_file}:{line}: " in str(e.value) and words in str(e.value), str(e.value)


def answers(c: CentralProc) -> bool:
    """Serving as the active central (between the standby's 503 and that: not listening)."""
    try:
        return c.call("GET", "/api/v1/problems")[0] == 200
    except OSError:
        return False


def test_only_the_active_central_of_a_pair_exports_and_the_new_one_after_a_takeover(
        tmp_path: Path, postgres_dsn: str, receivers: Receivers) -> None:
    require_plugins()
    extra = (f'  store: postgresql\n  postgresql: {{dsn: "{postgres_dsn}"}}\n  rrd: {{dir: rrd}}\n'
             "  export:\n"
             f"    - {{type: prometheus_remote_write, name: vm, prefix: pair,"
             f" url: 'http://127.0.0.1:{receivers.vm_port}/api/v1/write'}}\n")
    a = CentralProc(tmp_path / "a", objects=OBJECTS, extra=extra)
    b = CentralProc(tmp_path / "b", objects=OBJECTS, extra=extra)
    try:
        a.start()
        b.start(standby=True)
        t = int(time.time()) - 10
        assert a.post_results("poller-ladc1", [result(1, "db1.ladc1", "Disk /", 0, perfdata="/=1", finished=t)])[0] == 200
        wait_for(lambda: receivers.vm("pair_perfdata"), 15, "the active's export")
        # The standby follows the same result into its RRD files but sends nothing.
        wait_for(lambda: "following the active central" in b.log.read_text(), 10, "the standby following")
        assert "export vm:" not in b.log.read_text()

        a.stop()                # a clean stop hands the lease over at once
        wait_for(lambda: answers(b), 30, "b to take over")
        assert b.post_results("poller-ladc1", [result(2, "db1.ladc1", "Disk /", 0, perfdata="/=2",
                                                      finished=t + 1)])[0] == 200
        series = wait_for(lambda: [s for s in receivers.vm("pair_perfdata") if len(s["values"]) == 2], 15,
                          "the new active's export")
        assert series[0]["values"] == [1, 2] and series[0]["timestamps"] == [t * 1000, (t + 1) * 1000]
        assert "export vm: prometheus_remote_write" in b.log.read_text()
    finally:
        a.stop()
        b.stop()
