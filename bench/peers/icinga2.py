"""Icinga 2 as a second side-by-side peer for checkd's poller benchmark.

Why: icinga2 is the other widely used Nagios-plugin scheduler; its C++ core
and spawn helper make a different trade-off than nagios4's worker pool.
Same interface and measurement rules as peers/nagios4.py:

- checks/s: exact.  A PerfdataWriter (the only feature besides the checker
  and a file logger; no api, no notifications) writes one line per service
  check result with `$icinga.timet$` and `$service.latency$`.  The window is
  whole seconds [t0, t1); after icinga2 is stopped (which flushes the file)
  lines whose timet falls in the window are counted.  Writing one short
  line per check is the measurement's overhead, and it is counted in CPU.
- latency: avg/median/p99/max over exactly those check results
  (icinga2's latency = execution start - scheduled start).
- CPU: /proc samples of the icinga2 tree (umbrella, daemon, spawn helper
  and the plugins it reaps) at t0 and t1 (see proctree.py).
- RSS: the largest icinga2 process (the daemon) at t1; the tree sum too.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from .proctree import rss_mb, sample_tree, stop_tree
except ImportError:  # run as a script
    from proctree import rss_mb, sample_tree, stop_tree  # type: ignore

ICINGA2 = "icinga2"
PER_HOST = 10


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(d: Path, services: int, interval_s: float,
                 workers: int | None, plugin: str) -> Path:
    iv = f"{interval_s:g}s"
    pd = d / "perfdata"
    pd.mkdir(exist_ok=True)
    out = [f"""
object FileLogger "main-log" {{
  severity = "warning"
  path = {_q(str(d / "log" / "icinga2.log"))}
}}
object CheckerComponent "checker" {{ }}
object PerfdataWriter "count" {{
  host_perfdata_path = {_q(str(pd / "host-perfdata"))}
  service_perfdata_path = {_q(str(pd / "service-perfdata"))}
  host_temp_path = {_q(str(pd / "host-perfdata.tmp"))}
  service_temp_path = {_q(str(pd / "service-perfdata.tmp"))}
  host_format_template = "H\\t$icinga.timet$\\t$host.latency$"
  service_format_template = "S\\t$icinga.timet$\\t$service.latency$\\t$service.name$"
  rotation_interval = 3600s
}}
object CheckCommand "bench" {{
  command = [ {_q(plugin)}, "0", "ok" ]
}}
template Host "bench-host" {{
  check_command = "bench"
  enable_active_checks = false
  enable_notifications = false
  enable_event_handler = false
  enable_flapping = false
  max_check_attempts = 1
  check_interval = 3600s
}}
template Service "bench-svc" {{
  check_command = "bench"
  enable_notifications = false
  enable_event_handler = false
  enable_passive_checks = false
  max_check_attempts = 1
  check_interval = {iv}
  retry_interval = {iv}
}}
"""]
    if workers:  # icinga2 has no worker pool; cap concurrent checks instead
        out.append(f"const MaxConcurrentChecks = {int(workers)}\n")
    for h in range(math.ceil(services / PER_HOST)):
        out.append(f'object Host "h{h:05d}" {{ import "bench-host" }}\n')
    for i in range(services):
        out.append(f'object Service "s{i:06d}" {{ import "bench-svc"; '
                   f'host_name = "h{i // PER_HOST:05d}" }}\n')
    cfg = d / "icinga2.conf"
    cfg.write_text("".join(out))
    return cfg


def _defs(d: Path) -> list[str]:
    for sub in ("run", "data", "cache", "spool", "log"):
        (d / sub).mkdir(exist_ok=True)
    return [f"-DConfiguration.InitRunDir={d / 'run'}",
            f"-DConfiguration.DataDir={d / 'data'}",
            f"-DConfiguration.CacheDir={d / 'cache'}",
            f"-DConfiguration.SpoolDir={d / 'spool'}",
            f"-DConfiguration.LogDir={d / 'log'}"]


def _env() -> dict[str, str]:
    return {**os.environ, "ICINGA2_USER": "root", "ICINGA2_GROUP": "root"}


def validate(cfg: Path, d: Path) -> None:
    r = subprocess.run([ICINGA2, "daemon", "-C", "-c", str(cfg), *_defs(d)],
                       capture_output=True, text=True, timeout=300, env=_env())
    if r.returncode != 0:
        raise RuntimeError(f"icinga2 -C failed:\n{r.stdout[-3000:]}{r.stderr[-2000:]}")


def version() -> str:
    r = subprocess.run([ICINGA2, "--version"], capture_output=True, text=True,
                       timeout=10)
    m = re.search(r"version: (\S+?)\)", r.stdout)
    return m.group(1) if m else "?"


def _pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, math.ceil(q * len(ys)) - 1))]


def _results(pd: Path) -> list[tuple[int, float]]:
    """(timet, latency) of every service check result written."""
    res: list[tuple[int, float]] = []
    for f in pd.iterdir():
        if not f.name.startswith("service-perfdata"):
            continue
        for line in f.read_text(errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0] == "S":
                try:
                    res.append((int(parts[1]), float(parts[2])))
                except ValueError:
                    pass
    return res


def run_icinga2(services: int, interval_s: float, duration_s: float,
                workers: int | None = None,
                plugin: str = "/usr/lib/nagios/plugins/check_dummy",
                warmup_s: float | None = None, keep_dir: bool = False) -> dict:
    """Same interface as run_nagios4; `workers` becomes MaxConcurrentChecks
    (icinga2 has no worker processes; default 512)."""
    warmup = interval_s + 3.0 if warmup_s is None else warmup_s
    d = Path(tempfile.mkdtemp(prefix="bench-icinga2-"))
    proc: subprocess.Popen | None = None
    try:
        cfg = write_config(d, services, interval_s, workers, plugin)
        validate(cfg, d)
        pd = d / "perfdata"
        log = open(d / "stdout.log", "wb")
        proc = subprocess.Popen([ICINGA2, "daemon", "-c", str(cfg), *_defs(d)],
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_env(),
                                start_new_session=True, cwd=d)
        log.close()
        end = time.monotonic() + 300
        while not (pd / "service-perfdata.tmp").exists():
            if proc.poll() is not None:
                raise RuntimeError(f"icinga2 exited early: {(d / 'stdout.log').read_text()[-2000:]}")
            if time.monotonic() > end:
                raise TimeoutError("icinga2 wrote no check result in 300 s")
            time.sleep(0.1)
        time.sleep(warmup)
        # whole-second window, since timet has 1 s resolution
        time.sleep(math.ceil(time.time()) - time.time())
        t0 = round(time.time())
        s0 = sample_tree(proc.pid)
        time.sleep(max(1, round(duration_s)))
        t1 = round(time.time())
        s1 = sample_tree(proc.pid)
        window = s1.t - s0.t
        rss = {p: rss_mb(p) for p in s1.stats}
        cpu = 0.0
        for p, st1 in s1.stats.items():
            st0 = s0.stats.get(p)
            cpu += st1.own + st1.children - ((st0.own + st0.children) if st0 else 0.0)
        for p, st0 in s0.stats.items():  # plugins reaped since t0
            if p not in s1.stats:
                cpu -= st0.own
        # icinga2's own processes vs plugins: plugins are the non-icinga2 comms
        core = sum(st1.own - (s0.stats[p].own if p in s0.stats else 0.0)
                   for p, st1 in s1.stats.items() if st1.comm.startswith("icinga2"))
        stop_tree(proc.pid, term_wait_s=20)
        proc.returncode = 0
        proc = None
        rs = [(t, l) for t, l in _results(pd) if t0 <= t < t1]
        lats = [l for _, l in rs]
        checks = len(rs)
        per_k = 1000.0 / checks if checks else float("nan")
        res = {
            "peer": "icinga2",
            "version": version(),
            "services": services,
            "interval_s": interval_s,
            "workers": workers,
            "window_s": t1 - t0,
            "checks": checks,
            "checks_per_s": checks / (t1 - t0),
            "scheduled_per_s": services / interval_s,
            "latency_avg": statistics.fmean(lats) if lats else None,
            "latency_max": max(lats) if lats else None,
            "latency_median": statistics.median(lats) if lats else None,
            "latency_p99": _pct(lats, 0.99) if lats else None,
            "cpu_s_per_1000": cpu * (checks and 1000.0 / checks * (t1 - t0) / window),
            "cpu_core_s_per_1000": core * (checks and 1000.0 / checks * (t1 - t0) / window),
            "cpu_util": cpu / window,
            "rss_mb": max(rss.values()) if rss else 0.0,
            "rss_tree_mb": sum(rss.values()),
        }
        return res
    finally:
        if proc is not None:
            stop_tree(proc.pid, term_wait_s=20)
            proc.returncode = -1
        if not keep_dir:
            shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=None,
                    help="MaxConcurrentChecks (icinga2 has no worker pool)")
    ap.add_argument("--warmup", type=float, default=None)
    ap.add_argument("--plugin", default="/usr/lib/nagios/plugins/check_dummy")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    r = run_icinga2(a.services, a.interval, a.duration, a.workers, a.plugin,
                    warmup_s=a.warmup)
    if a.json:
        import json
        print(json.dumps(r, indent=1))
    else:
        try:
            from .nagios4 import format_table
        except ImportError:
            from nagios4 import format_table  # type: ignore
        print(f"icinga2 {r['version']}  window {r['window_s']} s  checks {r['checks']}")
        r2 = dict(r, workers=r["workers"] or 0)
        print(format_table([r2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
