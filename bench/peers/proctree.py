"""CPU and memory of a process tree, read from /proc.

Why: a fair "CPU per 1,000 checks" must count everything the peer made the
machine do -- the core process, its worker processes and the plugin
processes the workers fork.  Reaped plugins show up in their worker's
cutime/cstime; plugins still running at a sample show up as their own
utime/stime; so sum(utime+stime+cutime+cstime) over the live tree is a
counter whose difference between two samples is exact (to the clock tick)
as long as no intermediate process (worker) dies in between.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcStat:
    pid: int
    ppid: int
    comm: str
    utime: float   # seconds, own user time
    stime: float   # seconds, own system time
    cutime: float  # seconds, reaped children's user time
    cstime: float  # seconds, reaped children's system time

    @property
    def own(self) -> float:
        return self.utime + self.stime

    @property
    def children(self) -> float:
        return self.cutime + self.cstime


def read_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may contain spaces/parens: split around the last ')'
    lpar, rpar = raw.index("("), raw.rindex(")")
    comm = raw[lpar + 1:rpar]
    rest = raw[rpar + 2:].split()
    # rest[0] is field 3 (state); utime is field 14 -> rest[11]
    ppid = int(rest[1])
    ut, st, cut, cst = (int(x) / TICK for x in rest[11:15])
    return ProcStat(pid, ppid, comm, ut, st, cut, cst)


def descendants(root: int) -> list[int]:
    """PIDs of root's descendants (not root itself), by a /proc scan."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = read_stat(int(name))
        if st is not None:
            kids.setdefault(st.ppid, []).append(st.pid)
    out: list[int] = []
    todo = [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


@dataclass
class TreeSample:
    t: float
    stats: dict[int, ProcStat] = field(default_factory=dict)


def sample_tree(root: int) -> TreeSample:
    s = TreeSample(time.monotonic())
    for pid in [root] + descendants(root):
        st = read_stat(pid)
        if st is not None:
            s.stats[pid] = st
    return s


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):     # it exited while we read
        pass
    return 0.0


def stop_tree(pid: int, term_wait_s: float = 10.0) -> "os.struct_rusage | None":
    """SIGTERM pid, wait, SIGKILL it; then SIGKILL any descendant left over.

    pid must be our child.  Only it and the PIDs found below it are
    signalled.  Returns its wait4() rusage (whole run, the core plus every
    descendant it reaped), or None if it was already reaped elsewhere.
    """
    below = {p: st for p in descendants(pid) if (st := read_stat(p))}
    ru = None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + term_wait_s
    reaped = False
    while time.monotonic() < deadline and not reaped:
        try:
            done, _status, ru = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            break
        reaped = done == pid
        if not reaped:
            time.sleep(0.05)
    if not reaped:
        try:
            os.kill(pid, signal.SIGKILL)
            _, _status, ru = os.wait4(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    # orphaned workers/plugins: only PIDs we saw below ours, still alive
    time.sleep(0.2)
    for p, seen in below.items():
        now = read_stat(p)
        # same process still there (guards against PID reuse)
        if now is not None and now.comm == seen.comm and (
                now.ppid in below or now.ppid in (1, pid, seen.ppid)):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return ru
