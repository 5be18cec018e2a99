"""The physical limit: how fast can this machine spawn-and-reap one plugin?

Why: checkd's poller and the peers (nagios4, icinga2) all pay fork/exec per
check.  A minimal C loop (posix_spawn + waitpid, `in_flight` children kept
running, plugin stdout to /dev/null) shows the ceiling no scheduler can
beat; Python's subprocess.Popen and os.posix_spawn loops with the same
concurrency show what a Python poller can hope for before doing any work.

Each method runs in its own child process; its CPU is that child's wait4()
rusage (itself + every plugin it reaped), so nothing of this harness is
counted.  Median of `runs` runs each.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

C_SRC = r"""
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: n in_flight plugin [args]\n"); return 2; }
    long n = atol(argv[1]); int inflight = atoi(argv[2]);
    char **pargv = argv + 3;
    int devnull = open("/dev/null", O_WRONLY);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, 1);
    posix_spawn_file_actions_adddup2(&fa, devnull, 2);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long started = 0, done = 0, failed = 0; int running = 0;
    while (done < n) {
        while (running < inflight && started < n) {
            pid_t pid;
            if (posix_spawn(&pid, pargv[0], &fa, NULL, pargv, environ) != 0) {
                perror("posix_spawn"); return 1;
            }
            started++; running++;
        }
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0) { perror("waitpid"); return 1; }
        running--; done++;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double el = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%ld %.6f %ld\n", done, el, failed);
    return 0;
}
"""


def build_c(d: Path) -> Path | None:
    gcc = shutil.which("gcc")
    if not gcc:
        return None
    (d / "spawn.c").write_text(C_SRC)
    exe = d / "spawn"
    subprocess.run([gcc, "-O2", "-o", str(exe), str(d / "spawn.c")],
                   check=True, capture_output=True, timeout=60)
    return exe


def _inner(method: str, n: int, in_flight: int, argv: list[str]) -> None:
    """Runs in a child interpreter: one spawn loop, prints 'done elapsed failed'."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    started = done = failed = running = 0
    procs: dict[int, subprocess.Popen] = {}
    t0 = time.perf_counter()
    while done < n:
        while running < in_flight and started < n:
            if method == "popen":
                p = subprocess.Popen(argv, stdout=devnull, stderr=devnull,
                                     stdin=subprocess.DEVNULL)
                procs[p.pid] = p
            else:
                os.posix_spawn(argv[0], argv, os.environ,
                               file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1),
                                             (os.POSIX_SPAWN_DUP2, devnull, 2)])
            started += 1
            running += 1
        pid, st = os.waitpid(-1, 0)
        p = procs.pop(pid, None)
        if p is not None:
            p.returncode = os.waitstatus_to_exitcode(st)
        running -= 1
        done += 1
        if os.waitstatus_to_exitcode(st) != 0:
            failed += 1
    print(done, f"{time.perf_counter() - t0:.6f}", failed)


def _run_child(cmd: list[str], timeout_s: float) -> tuple[int, float, float]:
    """Run cmd, return (done, elapsed_s, cpu_s incl. reaped grandchildren)."""
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        end = time.monotonic() + timeout_s
        ru = None
        while time.monotonic() < end:
            pid, st, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            time.sleep(0.02)
        else:
            p.kill()
            _, st, ru = os.wait4(p.pid, 0)
            p.returncode = -9
            raise TimeoutError(f"{cmd[:3]} ran over {timeout_s}s")
        p.returncode = os.waitstatus_to_exitcode(st)
        err = p.stderr.read().decode() if p.stderr else ""
        if p.stderr:
            p.stderr.close()
        out.seek(0)
        txt = out.read().decode()
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed rc={p.returncode}: {err}")
    if cmd[0] == "sh":  # xargs fallback: elapsed measured around it
        return 0, 0.0, ru.ru_utime + ru.ru_stime
    done, el, _failed = txt.split()
    return int(done), float(el), ru.ru_utime + ru.ru_stime


def _one(method: str, plugin_argv: list[str], n: int, in_flight: int,
         exe: Path | None) -> tuple[float, float]:
    """(per_s, cpu_s_per_1000) of a single run."""
    if method == "c":
        if exe is not None:
            done, el, cpu = _run_child([str(exe), str(n), str(in_flight), *plugin_argv], 600)
        else:  # no gcc: xargs -P, one plugin per input line
            script = (f"yes | head -n {n} | xargs -P {in_flight} -I{{}} "
                      + " ".join(plugin_argv) + " >/dev/null 2>&1")
            t0 = time.perf_counter()
            _, _, cpu = _run_child(["sh", "-c", script], 600)
            done, el = n, time.perf_counter() - t0
    else:
        done, el, cpu = _run_child(
            [sys.executable, os.path.abspath(__file__), "--_inner", method,
             "-n", str(n), "--in-flight", str(in_flight), "--", *plugin_argv], 600)
    return done / el, cpu * 1000.0 / done


def raw_spawn_rate(plugin_argv: list[str], n: int = 20000, in_flight: int = 32,
                   runs: int = 3, methods: tuple[str, ...] = ("c", "posix_spawn", "popen"),
                   ) -> dict:
    """Spawn-and-reap rate of plugin_argv with `in_flight` children.

    Returns the C loop's figures as per_s / cpu_s_per_1000 (the physical
    limit), plus one sub-dict per method: {per_s, cpu_s_per_1000, runs}.
    """
    d = Path(tempfile.mkdtemp(prefix="bench-rawspawn-"))
    try:
        exe = build_c(d) if "c" in methods else None
        res: dict = {"plugin_argv": plugin_argv, "n": n, "in_flight": in_flight,
                     "c_impl": "posix_spawn C" if exe else "xargs -P"}
        for m in methods:
            rs = [_one(m, plugin_argv, n, in_flight, exe) for _ in range(runs)]
            res[m] = {"per_s": statistics.median(r[0] for r in rs),
                      "cpu_s_per_1000": statistics.median(r[1] for r in rs),
                      "runs": [(round(a, 1), round(b, 4)) for a, b in rs]}
        if "c" in res:
            res["per_s"] = res["c"]["per_s"]
            res["cpu_s_per_1000"] = res["c"]["cpu_s_per_1000"]
        return res
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--in-flight", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--_inner", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("plugin_argv", nargs="*",
                    default=["/usr/lib/nagios/plugins/check_dummy", "0", "ok"])
    a = ap.parse_args(argv)
    if a._inner:
        _inner(a._inner, a.n, a.in_flight, a.plugin_argv)
        return 0
    r = raw_spawn_rate(a.plugin_argv, a.n, a.in_flight, a.runs)
    if a.json:
        import json
        print(json.dumps(r, indent=1))
        return 0
    print(f"{' '.join(a.plugin_argv)}: n={a.n} in_flight={a.in_flight}, "
          f"median of {a.runs}")
    print(f"{'method':<14}{'spawns/s':>10}{'cpu_s/1000':>12}   runs (per_s, cpu_s/1000)")
    for m in ("c", "posix_spawn", "popen"):
        if m in r:
            name = r["c_impl"] if m == "c" else f"py {m}"
            print(f"{name:<14}{r[m]['per_s']:>10.0f}{r[m]['cpu_s_per_1000']:>12.3f}   {r[m]['runs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
