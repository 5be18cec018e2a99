"""SSH checks: checkd's pooled SSH runner against Nagios' check_by_ssh.

    .venv/bin/python bench/ssh_checks.py                   # 1000 checkd checks, 200 check_by_ssh, 8 in flight
    .venv/bin/python bench/ssh_checks.py --quick           # 200 / 50
    .venv/bin/python bench/ssh_checks.py --json ssh.json   # also write the figures as JSON

Same machine, same remote command (`check_dummy 0 hello`), same throwaway
OpenSSH server on 127.0.0.1 (tests/sshd.py: its own host key, client key and
known_hosts; the login user has /bin/sh), same concurrency on both sides:
P workers (default 8, like a Nagios core's workers) each take the next check,
run it to completion and take another; a check's latency is from the moment
its worker starts it until its result is in.

- checkd: `checkd.run.ssh.SSHPool` in this process (product defaults: one
  pooled connection, at most 6 session channels at once, so 2 of the 8
  workers wait for a channel), one `pool.run()` per check. The single
  handshake is inside the timed run.
- check_by_ssh: the real plugin, one process per check (it forks ssh, which
  does TCP connect + key exchange + publickey auth, runs the command, exits):
  `check_by_ssh -H 127.0.0.1 -p PORT -l USER -i KEY -o UserKnownHostsFile=...
  -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes -C CMD`,
  started with asyncio subprocesses.
- Information rows, not part of PASS/FAIL (--plain-only skips them):
  * check_by_ssh, curve25519 kex: the same plus `-o KexAlgorithms=curve25519-sha256`.
    OpenSSH 9.x's default kex, sntrup761x25519, costs the ssh client ~85 ms
    of CPU per connection on this kind of machine; asyncssh (checkd) does not
    offer it and settles on curve25519-sha256 with OpenSSH 9.2. This row is
    check_by_ssh with checkd's kex.
  * check_by_ssh + ControlMaster: the same plus `-o ControlMaster=auto
    -o ControlPersist=120 -o ControlPath=...`, the usual OpenSSH-side remedy:
    still a fork+exec of check_by_ssh and ssh per check, but one handshake and
    the sessions multiplexed on the master. The master is opened by one
    untimed check first (its handshake and CPU count, its time does not).

Reported per side: checks/s, per-check latency median and p99, handshakes
(the `Accepted publickey` lines sshd logged during that side's run), CPU
seconds per 1,000 checks:
- client: checkd = this process (getrusage RUSAGE_SELF, asyncssh crypto
  included); check_by_ssh = its processes and their ssh children (getrusage
  RUSAGE_CHILDREN), plus the ControlMaster's own CPU from /proc for the mux
  row. This script's own cost of spawning check_by_ssh is shown separately
  ("harness"), not in the client figure.
- sshd: every sshd process of that side, and the remote shell and
  check_dummy they ran (both sides run those the same way). sshd runs under a
  small subreaper (REAPER below) because the per-connection monitor does not
  reap its post-auth child; read from /proc (utime+stime+cutime+cstime of the
  reaper's subtree) after each side has closed its connections and every
  per-connection process is reaped.

PASS when checkd's checks/s >= 10x plain check_by_ssh's and no check failed.
sshd is stopped by PID in a finally block; the temp dir is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tests.sshd as sshd_mod  # noqa: E402
from checkd.config.model import SSHSettings  # noqa: E402
from checkd.plugin_output import interpret  # noqa: E402
from checkd.run.ssh import SSHPool  # noqa: E402
from checkd.states import Status  # noqa: E402
from tests.helpers import start_server  # noqa: E402
from tests.sshd import Sshd, ensure_test_user, require_sshd  # noqa: E402

PLUGINS = "/usr/lib/nagios/plugins"
CHECK_BY_SSH = f"{PLUGINS}/check_by_ssh"
REMOTE = f"{PLUGINS}/check_dummy 0 hello"
EXPECTED = "OK: hello"
ADDR = "127.0.0.1"
PLAIN = "check_by_ssh"
CURVE = "check_by_ssh, curve25519 kex"
MUX = "check_by_ssh + ControlMaster"
TARGET = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- measurement

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))        # ceil(n*q/100), at least 1
    return ordered[int(rank) - 1]


def proc_cpu(pid: int, own: bool = True) -> float:
    """utime+stime (if own) + cutime+cstime (children it reaped) of one live process, seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: field 3 is state, so utime (14) is index 11 here.
    ticks = int(fields[13]) + int(fields[14])
    if own:
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


# sshd's per-connection monitor ("sshd: user [priv]") exits without reaping its
# post-auth child ("sshd: user@notty", which ran the sessions' shells), so that
# child's CPU never reaches the listener's cutime: it is orphaned. sshd therefore
# runs under this reaper, a child subreaper that inherits and reaps those
# orphans; its cutime+cstime plus the listener's tree is then every CPU second
# sshd spent. PR_SET_PDEATHSIG takes sshd down with the reaper.
REAPER = """\
import ctypes, os, signal, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)                                  # PR_SET_CHILD_SUBREAPER
server = subprocess.Popen(sys.argv[1:], preexec_fn=lambda: libc.prctl(1, signal.SIGKILL, 0, 0, 0))
while True:
    try:
        pid, _ = os.wait()
    except ChildProcessError:
        os._exit(0)
    if pid == server.pid:
        os._exit(0)
"""


class MeteredSshd(Sshd):
    """tests/sshd.py's Sshd with sshd started under REAPER; self.proc is the reaper."""

    def start(self, wait: float = 10.0) -> None:
        os.makedirs("/run/sshd", exist_ok=True)      # privilege separation directory
        argv = [sys.executable, "-c", REAPER, sshd_mod.SSHD, "-D", "-e", "-f", self.config]
        self.proc, self._watchdog = start_server(argv, "sshd", self.port, self.log_path,
                                                 sshd_mod.MAX_LIFETIME, wait)


def sshd_cpu(server: Sshd) -> float:
    """CPU of sshd: the listener, every live sshd process, and everything they or the reaper reaped."""
    assert server.proc is not None
    total = proc_cpu(server.proc.pid, own=False)      # the reaper's own loop is not sshd
    for pid in sshd_mod._descendants(server.proc.pid):
        try:
            total += proc_cpu(pid)
        except (OSError, IndexError, ValueError):
            continue            # exited (and was counted by whoever reaped it) while we looked
    return total


def wait_sshd_idle(server: Sshd, limit: float = 10.0) -> bool:
    """Until every per-connection sshd process is gone (reaped), leaving only the listener."""
    assert server.proc is not None
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if len(sshd_mod._descendants(server.proc.pid)) <= 1:
            return True
        time.sleep(0.02)
    return False


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def drive(n: int, concurrency: int, one: Callable[[], Awaitable[str | None]]
                ) -> tuple[float, list[float], list[str]]:
    """n checks, `concurrency` workers; returns (elapsed s, latencies s, failure texts)."""
    latencies: list[float] = []
    failures: list[str] = []
    remaining = [n]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            problem = await one()
            latencies.append(time.perf_counter() - started)
            if problem is not None:
                failures.append(problem)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies, failures


def row(name: str, n: int, concurrency: int, elapsed: float, latencies: list[float],
        failures: list[str], handshakes: int, client_cpu: float, harness_cpu: float,
        sshd: float, sshd_idle: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    per_k = 1000.0 / n
    out = {
        "name": name, "checks": n, "concurrency": concurrency, "failed": len(failures),
        "failures_sample": failures[:5], "elapsed_s": elapsed, "checks_per_s": n / elapsed,
        "latency_median_s": statistics.median(latencies), "latency_p99_s": percentile(latencies, 99),
        "latency_max_s": max(latencies), "handshakes": handshakes,
        "client_cpu_s_per_1000": client_cpu * per_k, "harness_cpu_s_per_1000": harness_cpu * per_k,
        "sshd_cpu_s_per_1000": sshd * per_k, "total_cpu_s_per_1000": (client_cpu + sshd) * per_k,
        "sshd_reaped_all": sshd_idle,
    }
    out.update(extra or {})
    return out


# ---------------------------------------------------------------- the sides

def settings_for(server: Sshd) -> SSHSettings:
    return SSHSettings(user=server.user, port=server.port, key=server.client_key,
                       known_hosts=server.known_hosts, connect_timeout=5.0)


def run_checkd(server: Sshd, n: int, concurrency: int, timeout: float) -> dict[str, Any]:
    settings = settings_for(server)
    logins0, sshd0 = server.accepted_logins(), sshd_cpu(server)

    async def main() -> tuple[float, list[float], list[str], Any, float]:
        pool = SSHPool()

        async def one() -> str | None:
            raw = await pool.run(ADDR, settings, REMOTE, timeout)
            out = interpret(raw)
            if out.status is not Status.OK or out.output != EXPECTED:
                return f"{out.status.name}: {out.output[:200]}"
            return None

        cpu0 = self_cpu()
        try:
            elapsed, latencies, failures = await drive(n, concurrency, one)
            stats = pool.stats()
        finally:
            await pool.close()
        return elapsed, latencies, failures, stats, self_cpu() - cpu0

    elapsed, latencies, failures, stats, cpu = asyncio.run(main())
    idle = wait_sshd_idle(server)
    return row("checkd SSHPool", n, concurrency, elapsed, latencies, failures,
               server.accepted_logins() - logins0, cpu, 0.0, sshd_cpu(server) - sshd0, idle,
               {"pool_handshakes": stats.handshakes, "pool_peak_channels": stats.peak_channels})


def check_by_ssh_argv(server: Sshd, timeout: float, mux_path: str | None = None,
                      extra: list[str] | None = None) -> list[str]:
    argv = [CHECK_BY_SSH, "-H", ADDR, "-p", str(server.port), "-l", server.user,
            "-i", server.client_key, "-t", str(int(timeout)),
            "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
    argv += extra or []
    if mux_path is not None:
        argv += ["-o", "ControlMaster=auto", "-o", "ControlPersist=120", "-o", f"ControlPath={mux_path}"]
    return argv + ["-C", REMOTE]


async def spawn_one(argv: list[str]) -> str | None:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace").strip()
    if proc.returncode != 0 or text != EXPECTED:
        return f"exit {proc.returncode}: {text[:200]}"
    return None


def mux_master_pid(server: Sshd, mux_path: str) -> int | None:
    r = subprocess.run(["ssh", "-o", f"ControlPath={mux_path}", "-O", "check", "-p", str(server.port),
                        f"{server.user}@{ADDR}"], capture_output=True, text=True, timeout=10)
    text = r.stderr + r.stdout
    if "pid=" not in text:
        return None
    return int(text.split("pid=", 1)[1].split(")", 1)[0])


def stop_mux(server: Sshd, mux_path: str, pid: int | None) -> None:
    subprocess.run(["ssh", "-o", f"ControlPath={mux_path}", "-O", "exit", "-p", str(server.port),
                    f"{server.user}@{ADDR}"], capture_output=True, timeout=10)
    if pid is None:
        return
    end = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < end:
        time.sleep(0.02)
    if os.path.exists(f"/proc/{pid}"):
        os.kill(pid, 9)                 # the master this script started, by its PID


def run_check_by_ssh(server: Sshd, name: str, n: int, concurrency: int, timeout: float,
                     mux_path: str | None = None, extra_opts: list[str] | None = None) -> dict[str, Any]:
    argv = check_by_ssh_argv(server, timeout, mux_path, extra_opts)
    logins0, sshd0 = server.accepted_logins(), sshd_cpu(server)
    self0, kids0 = self_cpu(), children_cpu()
    master_pid: int | None = None
    master_cpu = 0.0
    try:
        if mux_path is not None:
            # Open the master first, as the first check after a Nagios start would: when 8 checks
            # race to create it, the losers' ssh prints "ControlSocket ... already exists" on
            # stderr and check_by_ssh turns any stderr into UNKNOWN. Its handshake and CPU count,
            # its time does not.
            problem = asyncio.run(spawn_one(argv))
            if problem is not None:
                raise SystemExit(f"check_by_ssh with ControlMaster does not work: {problem}")
        elapsed, latencies, failures = asyncio.run(drive(n, concurrency, lambda: spawn_one(argv)))
    finally:
        if mux_path is not None:
            master_pid = mux_master_pid(server, mux_path)
            if master_pid is not None:
                # Daemonised by ControlPersist and reparented away from us: read it while it lives.
                master_cpu = proc_cpu(master_pid)
            stop_mux(server, mux_path, master_pid)
    client = children_cpu() - kids0 + master_cpu
    harness = self_cpu() - self0
    idle = wait_sshd_idle(server)
    extra: dict[str, Any] = {"argv": argv, "pass_fail_row": name == PLAIN}
    if mux_path:
        extra["master_cpu_s"] = master_cpu
    return row(name, n, concurrency, elapsed, latencies, failures, server.accepted_logins() - logins0,
               client, harness, sshd_cpu(server) - sshd0, idle, extra)


# ---------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    def first_line(argv: list[str]) -> str:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"
    import asyncssh
    return {"nproc": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "asyncssh": asyncssh.__version__,
            "openssh_client": first_line(["ssh", "-V"]), "openssh_server": first_line([sshd_mod.SSHD, "-V"]),
            "check_by_ssh": first_line([CHECK_BY_SSH, "-V"]), "loadavg_before": os.getloadavg()}


def print_table(rows: list[dict[str, Any]]) -> None:
    head = ["side", "checks", "P", "failed", "checks/s", "lat median ms", "p99 ms", "handshakes",
            "client CPU s/1k", "sshd CPU s/1k", "total CPU s/1k", "harness CPU s/1k"]
    lines = [head]
    for r in rows:
        lines.append([r["name"], f"{r['checks']}", f"{r['concurrency']}", f"{r['failed']}",
                      f"{r['checks_per_s']:,.1f}", f"{r['latency_median_s'] * 1000:.1f}",
                      f"{r['latency_p99_s'] * 1000:.1f}", f"{r['handshakes']}",
                      f"{r['client_cpu_s_per_1000']:.2f}", f"{r['sshd_cpu_s_per_1000']:.2f}",
                      f"{r['total_cpu_s_per_1000']:.2f}",
                      "-" if r["name"].startswith("checkd") else f"{r['harness_cpu_s_per_1000']:.2f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for k, line in enumerate(lines):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checks", type=int, default=None, help="checkd checks (default 1000, --quick 200)")
    ap.add_argument("--cbs-checks", type=int, default=None,
                    help="check_by_ssh checks, each variant (default 200, --quick 50)")
    ap.add_argument("--concurrency", "-P", type=int, default=8, help="checks in flight, both sides (default 8)")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-check timeout, s")
    ap.add_argument("--quick", action="store_true", help="smaller N: 200 checkd, 50 check_by_ssh")
    ap.add_argument("--plain-only", action="store_true",
                    help="skip the information rows (curve25519 kex, ControlMaster): plain check_by_ssh only")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON to FILE")
    args = ap.parse_args()
    n_checkd = args.checks or (200 if args.quick else 1000)
    n_cbs = args.cbs_checks or (50 if args.quick else 200)
    P = args.concurrency

    require_sshd()
    for tool in (CHECK_BY_SSH, f"{PLUGINS}/check_dummy"):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} missing: apt-get install monitoring-plugins-basic monitoring-plugins-standard")
    info = machine()
    # The sshd watchdog (tests/sshd.py) kills it after MAX_LIFETIME; give a slow run room.
    sshd_mod.MAX_LIFETIME = max(sshd_mod.MAX_LIFETIME, 120 + n_cbs * (2 if args.plain_only else 4) + n_checkd * 0.05)
    server = MeteredSshd(user=ensure_test_user())
    mux_dir = tempfile.mkdtemp(prefix="checkd-bench-mux-")
    rows: list[dict[str, Any]] = []
    try:
        server.start()
        # One check_by_ssh first, untimed: a broken setup fails here with its own message.
        probe = asyncio.run(spawn_one(check_by_ssh_argv(server, args.timeout)))
        if probe is not None:
            raise SystemExit(f"check_by_ssh does not work against the test sshd: {probe}\n{server.log()[-2000:]}")
        wait_sshd_idle(server)
        print(f"sshd on 127.0.0.1:{server.port} (user {server.user}); remote command: {REMOTE}; "
              f"{P} in flight on each side", flush=True)
        rows.append(run_checkd(server, n_checkd, P, args.timeout))
        print(f"  checkd done: {rows[-1]['checks_per_s']:.0f} checks/s", flush=True)
        variants: list[tuple[str, str | None, list[str]]] = [(PLAIN, None, [])]
        if not args.plain_only:
            variants += [(CURVE, None, ["-o", "KexAlgorithms=curve25519-sha256"]),
                         (MUX, os.path.join(mux_dir, "m"), [])]
        for name, mux_path, opts in variants:
            rows.append(run_check_by_ssh(server, name, n_cbs, P, args.timeout, mux_path, opts))
            print(f"  {name} done: {rows[-1]['checks_per_s']:.1f} checks/s", flush=True)
    finally:
        server.cleanup()
        shutil.rmtree(mux_dir, ignore_errors=True)

    checkd, cbs = rows[0], rows[1]
    ratio = checkd["checks_per_s"] / cbs["checks_per_s"]
    cpu_ratio = cbs["total_cpu_s_per_1000"] / checkd["total_cpu_s_per_1000"]
    failed = checkd["failed"] + cbs["failed"]
    passed = ratio >= TARGET and failed == 0
    print()
    print(f"machine: {info['nproc']} CPUs {info['machine']}, Python {info['python']}, asyncssh {info['asyncssh']}, "
          f"{info['openssh_client']}, server {info['openssh_server']}, {info['check_by_ssh']}; "
          f"load before {info['loadavg_before'][0]:.2f}")
    print()
    print_table(rows)
    print()
    print("CPU s per 1,000 checks. client: checkd = this process; check_by_ssh = the plugin and its ssh "
          "children (+ the ControlMaster).")
    print("sshd: listener + every per-connection process + the remote shell and check_dummy. harness: this "
          "script spawning check_by_ssh (not in total).")
    for r in rows:
        if r["failed"]:
            print(f"{r['name']}: {r['failed']} failed, e.g. {r['failures_sample'][0]}")
        if not r["sshd_reaped_all"]:
            print(f"{r['name']}: sshd had not reaped every connection when measured; its CPU is a lower bound")
    for r in rows[2:]:
        print(f"(vs {r['name']}: checkd {checkd['checks_per_s'] / r['checks_per_s']:.1f}x checks/s, "
              f"{r['total_cpu_s_per_1000'] / checkd['total_cpu_s_per_1000']:.1f}x less CPU; information only)")
    verdict = "PASS" if passed else "FAIL"
    print(f"\ncheckd / check_by_ssh: {ratio:.1f}x checks/s (target >= {TARGET:g}x), "
          f"{cpu_ratio:.1f}x less CPU per check (client + sshd): {verdict}")

    if args.json:
        result = {"bench": "ssh_checks", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "remote_command": REMOTE, "concurrency": P, "machine": info, "rows": rows,
                  "ratio_checks_per_s": ratio, "ratio_cpu": cpu_ratio, "target": TARGET,
                  "ratios_information_rows": {r["name"]: {
                      "checks_per_s": checkd["checks_per_s"] / r["checks_per_s"],
                      "cpu": r["total_cpu_s_per_1000"] / checkd["total_cpu_s_per_1000"]} for r in rows[2:]},
                  "result": verdict}
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"figures written to {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
