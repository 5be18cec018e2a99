"""Debian's nagios4 as a side-by-side peer for checkd's poller benchmark.

Why: checkd's throughput/CPU figures only mean something next to the tool it
replaces, measured on the same noisy machine in the same run.  This module
generates a throwaway nagios4 config (N check_dummy services), runs nagios4
in the foreground as our child, and measures over a window:

- checks/s: exact, from the core's own per-worker job counters
  (query socket `#wproc wpstats`: jobs_started/jobs_running per worker,
  differenced over the window).  Hosts have active checks off and
  notifications/perfdata/event handlers do nothing, so every worker job is a
  service check.  nagios4stats' NUMSACTSVCCHECKS1M/60 is reported alongside
  as a cross-check (it interpolates one-minute buckets, so it is not exact).
- latency: avg/max from nagios4stats; median/p99 over the per-service
  `check_latency` in status.dat at the end of the window (each service's
  most recent check, i.e. one interval's worth of checks).
- CPU: /proc samples of nagios4 and all its descendants at window start and
  end (see proctree.py): core (main + command-file worker), workers' own
  time, plugins (workers' reaped-children time + live plugins).
- RSS of the main process (and of the whole tree) at window end.

Everything lives in a temp dir; the process tree is stopped by PID.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import socket
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

NAGIOS = "nagios4"
NAGIOSSTATS = "nagios4stats"
PER_HOST = 10


def _objects(services: int, interval_s: float, plugin: str) -> str:
    """Object config: 10 services per host, hosts never actively checked."""
    iv = f"{interval_s:g}"
    out = [f"""define timeperiod {{
  timeperiod_name 24x7
  alias 24x7
""" + "".join(f"  {d} 00:00-24:00\n" for d in (
        "sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
        "saturday")) + f"""}}
define command {{
  command_name bench_check
  command_line {plugin} $ARG1$ $ARG2$
}}
define command {{
  command_name notify_none
  command_line /bin/true
}}
define contact {{
  contact_name nobody
  host_notifications_enabled 0
  service_notifications_enabled 0
  host_notification_period 24x7
  service_notification_period 24x7
  host_notification_options n
  service_notification_options n
  host_notification_commands notify_none
  service_notification_commands notify_none
}}
define host {{
  name bench-host
  register 0
  address 127.0.0.1
  check_command bench_check!0!up
  active_checks_enabled 0
  check_interval 3600
  max_check_attempts 1
  check_period 24x7
  contacts nobody
  notification_period 24x7
  notifications_enabled 0
  event_handler_enabled 0
  flap_detection_enabled 0
  process_perf_data 0
}}
define service {{
  name bench-svc
  register 0
  check_command bench_check!0!ok
  active_checks_enabled 1
  passive_checks_enabled 0
  check_interval {iv}
  retry_interval {iv}
  max_check_attempts 1
  check_period 24x7
  contacts nobody
  notification_period 24x7
  notifications_enabled 0
  event_handler_enabled 0
  process_perf_data 0
  check_freshness 0
}}
"""]
    hosts = math.ceil(services / PER_HOST)
    for h in range(hosts):
        out.append(f"define host {{\n  use bench-host\n  host_name h{h:05d}\n}}\n")
    for i in range(services):
        out.append(f"define service {{\n  use bench-svc\n  host_name h{i // PER_HOST:05d}\n"
                   f"  service_description s{i:06d}\n}}\n")
    return "".join(out)


def _main_cfg(d: Path, interval_s: float, workers: int | None) -> str:
    """Main config: Debian's sample nagios.cfg with paths, users and the
    settings the benchmark needs replaced."""
    over = {
        "cfg_file": str(d / "objects.cfg"),
        "log_file": str(d / "nagios.log"),
        "object_cache_file": str(d / "objects.cache"),
        "precached_object_file": str(d / "objects.precache"),
        "resource_file": str(d / "resource.cfg"),
        "status_file": str(d / "status.dat"),
        "command_file": str(d / "nagios.cmd"),
        "query_socket": str(d / "nagios.qh"),
        "lock_file": str(d / "nagios.pid"),
        "temp_file": str(d / "nagios.tmp"),
        "temp_path": str(d),
        "log_archive_path": str(d),
        "check_result_path": str(d / "checkresults"),
        "state_retention_file": str(d / "retention.dat"),
        "debug_file": str(d / "nagios.debug"),
        "nagios_user": "root",
        "nagios_group": "root",
        "use_syslog": "0",
        "check_for_updates": "0",          # no phoning home
        "interval_length": "1",            # check_interval is in seconds
        # initial spread over one interval (unit: interval_length => s)
        "max_service_check_spread": str(max(1, math.ceil(interval_s))),
        "max_host_check_spread": str(max(1, math.ceil(interval_s))),
        "retain_state_information": "0",
        "use_retained_program_state": "0",
        "use_retained_scheduling_info": "0",
        "execute_service_checks": "1",
        "execute_host_checks": "1",
        "auto_reschedule_checks": "0",
        "max_concurrent_checks": "0",
        "enable_notifications": "0",
        "process_performance_data": "0",
        "enable_event_handlers": "0",
        "obsess_over_services": "0",
        "obsess_over_hosts": "0",
    }
    if workers:
        over["check_workers"] = str(workers)
    lines: list[str] = []
    seen: set[str] = set()
    sample = Path("/etc/nagios4/nagios.cfg")
    for line in sample.read_text().splitlines():
        s = line.strip()
        if not s or s.startswith("#") or "=" not in s:
            continue
        k = s.split("=", 1)[0]
        if k in ("cfg_dir", "cfg_file"):
            if k not in seen:
                lines.append(f"cfg_file={over['cfg_file']}")
            seen.add(k)
            seen.add("cfg_file")
            continue
        if k in over:
            if k not in seen:
                lines.append(f"{k}={over[k]}")
            seen.add(k)
        else:
            lines.append(s)
    for k, v in over.items():
        if k not in seen:
            lines.append(f"{k}={v}")
    return "\n".join(lines) + "\n"


def write_config(d: Path, services: int, interval_s: float,
                 workers: int | None, plugin: str) -> Path:
    (d / "checkresults").mkdir(exist_ok=True)
    (d / "objects.cfg").write_text(_objects(services, interval_s, plugin))
    (d / "resource.cfg").write_text("$USER1$=/usr/lib/nagios/plugins\n")
    cfg = d / "nagios.cfg"
    cfg.write_text(_main_cfg(d, interval_s, workers))
    return cfg


def validate(cfg: Path) -> None:
    r = subprocess.run([NAGIOS, "-v", str(cfg)], capture_output=True,
                       text=True, timeout=120)
    m = re.search(r"Total Errors:\s+(\d+)", r.stdout)
    if r.returncode != 0 or not m or int(m.group(1)) != 0:
        raise RuntimeError(f"nagios4 -v failed:\n{r.stdout[-3000:]}{r.stderr}")


def version() -> str:
    r = subprocess.run([NAGIOS, "--version"], capture_output=True, text=True,
                       timeout=10)
    m = re.search(r"Nagios Core (\S+)", r.stdout)
    return m.group(1) if m else "?"


def qh(sock: Path, query: str, timeout: float = 5.0) -> str:
    """One query-handler request ('#handler cmd'), whole reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(query.encode() + b"\0")
        buf = b""
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            buf += d
    return buf.decode(errors="replace")


def wpstats(sock: Path) -> tuple[int, int, int]:
    """(sum jobs_started, sum jobs_running, number of workers)."""
    txt = qh(sock, "#wproc wpstats")
    started = running = n = 0
    for line in txt.splitlines():
        kv = dict(p.split("=", 1) for p in line.split(";") if "=" in p)
        if "jobs_started" in kv:
            n += 1
            started += int(kv["jobs_started"])
            running += int(kv.get("jobs_running", 0))
    if n == 0:
        raise RuntimeError(f"no worker stats: {txt!r}")
    return started, running, n


def nagiosstats(cfg: Path) -> dict[str, float]:
    keys = ["AVGACTSVCLAT", "MAXACTSVCLAT", "NUMSACTSVCCHECKS1M",
            "NUMSVCACTCHK1M", "NUMSVCCHECKED"]
    r = subprocess.run([NAGIOSSTATS, "-c", str(cfg), "-m", "-D", ";",
                        "-d", ",".join(keys)],
                       capture_output=True, text=True, timeout=30)
    vals = r.stdout.strip().split(";")
    out: dict[str, float] = {}
    for k, v in zip(keys, vals):
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def status_latencies(status: Path) -> list[float]:
    lat: list[float] = []
    in_svc = False
    with open(status) as f:
        for line in f:
            s = line.strip()
            if s == "servicestatus {":
                in_svc = True
            elif s == "}":
                in_svc = False
            elif in_svc and s.startswith("check_latency="):
                lat.append(float(s.split("=", 1)[1]))
    return lat


def _pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, math.ceil(q * len(ys)) - 1))]


def _wait_for(pred, timeout: float, proc: subprocess.Popen, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"nagios4 exited early ({proc.returncode}) waiting for {what}")
        if pred():
            return
        time.sleep(0.1)
    raise TimeoutError(f"nagios4: no {what} after {timeout:.0f}s")


def run_nagios4(services: int, interval_s: float, duration_s: float,
                workers: int | None = None,
                plugin: str = "/usr/lib/nagios/plugins/check_dummy",
                warmup_s: float | None = None, keep_dir: bool = False) -> dict:
    """Run nagios4 with `services` check_dummy services every `interval_s`
    seconds; measure over `duration_s` after a warm-up (default: one interval
    + 3 s, so the initial spread is done).  interval_s >= 1: Nagios keeps
    next_check in whole seconds."""
    if interval_s < 1:
        raise ValueError("nagios4 schedules in whole seconds; interval_s >= 1")
    warmup = interval_s + 3.0 if warmup_s is None else warmup_s
    d = Path(tempfile.mkdtemp(prefix="bench-nagios4-"))
    proc: subprocess.Popen | None = None
    try:
        cfg = write_config(d, services, interval_s, workers, plugin)
        validate(cfg)
        sock, status = d / "nagios.qh", d / "status.dat"
        log = open(d / "stdout.log", "wb")
        proc = subprocess.Popen([NAGIOS, str(cfg)], stdout=log,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=d)
        log.close()
        _wait_for(lambda: sock.exists() and status.exists(), 120, proc,
                  "query socket/status.dat")
        time.sleep(warmup)
        if proc.poll() is not None:
            raise RuntimeError("nagios4 died during warm-up")

        s0 = sample_tree(proc.pid)
        w0 = wpstats(sock)
        t0 = time.monotonic()
        time.sleep(duration_s)
        w1 = wpstats(sock)
        t1 = time.monotonic()
        s1 = sample_tree(proc.pid)
        window = t1 - t0
        rss_main = rss_mb(proc.pid)
        rss_tree = sum(rss_mb(p) for p in s1.stats)

        # completed jobs = started - still running
        checks = (w1[0] - w1[1]) - (w0[0] - w0[1])

        main = proc.pid
        worker_pids = [p for p, st in s1.stats.items()
                       if st.ppid == main and "--worker" in _cmdline(p)]
        core = plug = wk = 0.0
        for p, st1 in s1.stats.items():
            st0 = s0.stats.get(p)
            if p in worker_pids:
                wk += st1.own - (st0.own if st0 else 0.0)
                plug += st1.children - (st0.children if st0 else 0.0)
            elif p == main or (st1.ppid == main):
                core += st1.own - (st0.own if st0 else 0.0)
            else:  # live plugin process (child of a worker)
                plug += st1.own - (st0.own if st0 else 0.0)
        # plugins alive at t0 and reaped since: their t0 time is now in a
        # worker's cutime; subtract what they had already used at t0
        for p, st0 in s0.stats.items():
            if p not in s1.stats and st0.ppid in worker_pids:
                plug -= st0.own
        total = core + wk + plug

        # status.dat is rewritten every status_update_interval; let it catch
        # up with the window before reading latencies
        stats = nagiosstats(cfg)
        lats = status_latencies(status)
        per_k = 1000.0 / checks if checks else float("nan")
        res = {
            "peer": "nagios4",
            "version": version(),
            "services": services,
            "interval_s": interval_s,
            "workers": w1[2],
            "workers_requested": workers,
            "window_s": round(window, 2),
            "checks": checks,
            "checks_per_s": checks / window,
            "checks_per_s_stats1m": stats.get("NUMSACTSVCCHECKS1M", float("nan")) / 60.0,
            "scheduled_per_s": services / interval_s,
            "latency_avg": stats.get("AVGACTSVCLAT", float("nan")) / 1000.0,
            "latency_max": stats.get("MAXACTSVCLAT", float("nan")) / 1000.0,
            "latency_median": statistics.median(lats) if lats else None,
            "latency_p99": _pct(lats, 0.99) if lats else None,
            "cpu_s_per_1000": total * per_k,
            "cpu_core_s_per_1000": core * per_k,
            "cpu_workers_s_per_1000": wk * per_k,
            "cpu_plugins_s_per_1000": plug * per_k,
            "cpu_util": total / window,  # cores busy on average
            "rss_mb": rss_main,
            "rss_tree_mb": rss_tree,
        }
        stop_tree(proc.pid)
        proc.returncode = 0  # reaped by stop_tree
        proc = None
        return res
    finally:
        if proc is not None:
            stop_tree(proc.pid)
            proc.returncode = -1
        if not keep_dir:
            shutil.rmtree(d, ignore_errors=True)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def format_table(rows: list[dict]) -> str:
    cols = [("services", "{:d}"), ("interval_s", "{:g}"), ("workers", "{:d}"),
            ("scheduled_per_s", "{:.0f}"), ("checks_per_s", "{:.1f}"),
            ("checks_per_s_stats1m", "{:.1f}"), ("latency_avg", "{:.3f}"),
            ("latency_median", "{:.3f}"), ("latency_p99", "{:.3f}"),
            ("latency_max", "{:.3f}"), ("cpu_s_per_1000", "{:.3f}"),
            ("cpu_core_s_per_1000", "{:.3f}"), ("cpu_util", "{:.2f}"),
            ("rss_mb", "{:.1f}")]
    cells = [[c for c, _ in cols]]
    for r in rows:
        cells.append([f.format(r[c]) if r.get(c) is not None else "-" for c, f in cols])
    w = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    return "\n".join("  ".join(x.rjust(w[i]) for i, x in enumerate(row)) for row in cells)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--warmup", type=float, default=None)
    ap.add_argument("--plugin", default="/usr/lib/nagios/plugins/check_dummy")
    ap.add_argument("--json", action="store_true", help="print the dict as JSON")
    a = ap.parse_args(argv)
    r = run_nagios4(a.services, a.interval, a.duration, a.workers, a.plugin,
                    warmup_s=a.warmup)
    if a.json:
        import json
        print(json.dumps(r, indent=1))
    else:
        print(f"nagios4 {r['version']}  window {r['window_s']} s  checks {r['checks']}")
        print(format_table([r]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
