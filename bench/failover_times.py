"""Failover times, measured with real processes: how long from a failure until
checkd acts on it, and from the heal until things are back as they were.

    .venv/bin/python bench/failover_times.py            # product settings: 60 s / 30 s / 30 s, 1 round
    .venv/bin/python bench/failover_times.py --quick    # 2 s / 3 s / 3 s, 3 rounds (the tests' settings)
    .venv/bin/python bench/failover_times.py --autonomy-after 60 --stale-after 30 --hold-down 30 --rounds 2

The three times, each from a signal this script sends to a real process:

1. failure -> first autonomous alert: central is killed with SIGKILL, then
   the poller's check goes CRITICAL; until the SMTP server accepts the
   poller's own alert (body: "Sent via: ladc1 poller, central unreachable").
   Bounded by `autonomy_after` (poller node file, default 60 s) + the poller's
   1 s watch + the check reaching HARD (max_attempts 2, retry 0.3 s here).
2. failure -> takeover: the site's poller is SIGSTOPped; until the first
   result with `polled_by: "central"` in GET /api/v1/status?host=db1.ladc1
   (and, on the side, until the `@checkd/Site ladc1` mail). Bounded by
   `freshness: {site_stale_after}` (central, default 30 s) + central's 1 s
   site watch + the first check central runs.
3. heal -> handback: the poller is SIGCONTed; until GET /api/v1/status shows
   the poller with `takeover: false` (and, after that, results `polled_by:
   poller-ladc1` again). Bounded by `freshness: {hold_down}` (default 30 s)
   + the 1 s site watch, counted from when central hears the poller again.
4. central restart -> the poller's handover: after 1, central is started
   again; from its "central listening on" log line until its "handed over"
   line (the poller's first heartbeat during its backoff carries the
   handover), both from central.log. Bounded by
   checkd.failover_timing.reconnect_bound(heartbeat_interval) (the poller's probe),
   not by its backoff (up to 30 s after a long outage); the problem is told
   once (one CRITICAL mail, one event ID). Central judges no site stale for
   `freshness: {start_grace}` after it starts answering (default 30 s; the
   takeover of 2 is measured after it).

Each round is one fresh setup from the tests (tests/test_autonomy.py `Setup`:
a `python -m checkd central` process, a `python -m checkd poller` process
for site ladc1 that alerts by email on its own, a check `db1.ladc1/Replication`
every 0.5 s that reads its exit status from a state file, aiosmtpd from
tests/notify_env.py), run in the order takeover, handback, autonomous alert
(the last one kills central). The poller's heartbeat is the tests' 0.3 s;
results flow every 0.5 s anyway, so central hears from it all the time.
Times are taken with time.time() in this process: kill/stop/continue right
before the signal, status by polling the API every 50 ms, the mail by the
SMTP server's acceptance time; the SIGCONT comes at a random point of
central's 1 s site watch (the takeover just before it is aligned to a tick,
which would otherwise make every handback the slowest case). Breakdowns come from the timestamps in
central.log and poller.log (millisecond resolution).

Everything listens on 127.0.0.1; every process is stopped by its PID in
finally blocks and the temp dir is removed (--keep keeps it).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tests.test_autonomy as autonomy_tests  # noqa: E402
from tests.notify_env import MailSink  # noqa: E402
from tests.test_autonomy import VIA_POLLER, Setup  # noqa: E402
from tests.test_takeover import wait_for  # noqa: E402

from checkd.config.node import NodeConfig  # noqa: E402
from checkd.durations import parse_duration  # noqa: E402
from central.takeover import DEFAULT_HOLD_DOWN, WATCH_EVERY  # noqa: E402
from checkd.failover_timing import DEFAULT_STALE_AFTER, DEFAULT_START_GRACE, reconnect_bound  # noqa: E402

POLLER = "poller-ladc1"
HOST, SERVICE = "db1.ladc1", "Replication"
QUICK = {"autonomy_after": 2.0, "stale_after": 3.0, "hold_down": 3.0, "start_grace": 0.0, "rounds": 3}
HEARTBEAT = 0.3                 # the tests' poller heartbeat_interval (tests/central_proc.py poller_node)
SLACK = 30.0                    # how much longer than the threshold to wait before calling it a failure


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def log_time(path: Path, needle: str, after: float) -> float | None:
    """time.time() of the first log line containing needle logged at or after `after`
    (the asctime format of checkd's logging: local time, milliseconds)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if needle not in line:
            continue
        try:
            t = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        if t >= after - 0.002:       # the log's milliseconds are truncated
            return t
    return None


def first_mail(sink: MailSink, start: int, pred: Callable[[Any], bool]) -> float | None:
    """Acceptance time of the first message from index `start` on that matches."""
    with sink._lock:
        pairs = list(zip(sink.messages[start:], sink.arrival[start:]))
    return next((t for m, t in pairs if pred(m)), None)


class Round:
    """One Setup in its own directory: central, the ladc1 poller, the state file."""

    def __init__(self, base: Path, n: int, sink: MailSink, args: argparse.Namespace):
        self.dir = base / f"round{n}"
        self.dir.mkdir()
        self.sink, self.args = sink, args
        freshness = (f"site_stale_after: {args.stale_after:g}s, hold_down: {args.hold_down:g}s, "
                     f"start_grace: {args.start_grace:g}s, contacts: [ops]")
        self.s = Setup(self.dir, sink, freshness=freshness)

    # --- the API, as the tests read it ---

    def check(self) -> dict[str, Any]:
        doc = self.s.central.get(f"/api/v1/status?host={HOST}")
        return next(x for x in doc["services"] if x["service"] == SERVICE)

    def poller_status(self) -> dict[str, Any]:
        return next(p for p in self.s.central.get("/api/v1/status")["pollers"] if p["name"] == POLLER)

    def polled_by(self, who: str) -> Callable[[], bool]:
        return lambda: self.check()["polled_by"] == who

    # --- lifecycle ---

    def start(self) -> None:
        # Setup.start_poller writes `autonomy_after: {AUTONOMY}s` from that module's constant.
        autonomy_tests.AUTONOMY = self.args.autonomy_after
        self.s.central.start()
        self.answering = time.time()
        self.s.start_poller(self.s.central.url)
        node = (self.dir / "poller.yaml").read_text()
        if f"autonomy_after: {self.args.autonomy_after}s" not in node:
            raise RuntimeError(f"tests.test_autonomy.Setup no longer writes autonomy_after as expected:\n{node}")
        wait_for(self.polled_by(POLLER), 30, "the poller's first result")
        wait_for(lambda: "event IDs" in self.s.poller_log(), 30, "the poller's reserved event IDs")
        p = self.poller_status()
        if not p["connected"] or p["takeover"]:
            raise RuntimeError(f"poller not in a normal state after start: {p}")

    def stop(self) -> None:
        """Poller first (continued if stopped), then central; by PID, never waiting forever."""
        p = self.s.poller
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.s.central.stop()

    # --- the measurements ---

    def takeover_and_handback(self) -> dict[str, float]:
        a, out = self.args, {}
        central_log, pid = self.s.central.log, self.s.poller.pid
        mail0 = len(self.sink.messages)
        # Central judges no site stale within its start grace: measure the takeover after it.
        time.sleep(max(0.0, self.answering + a.start_grace - time.time()))
        last_heard = self.poller_status()["last_seen"]
        stopped = time.time()
        os.kill(pid, signal.SIGSTOP)
        out["stop_after_last_heard"] = stopped - last_heard
        wait_for(self.polled_by("central"), a.stale_after + SLACK, "a result polled by central")
        out["takeover"] = time.time() - stopped
        if not self.poller_status()["takeover"]:
            raise RuntimeError("results polled by central but the poller is not marked takeover")
        t = log_time(central_log, "takeover: no word from", stopped)
        if t is not None:
            out["takeover_decided"] = t - stopped
        wait_for(lambda: first_mail(self.sink, mail0, lambda m: "@checkd/Site ladc1" in m["Subject"]), SLACK,
                 "the @checkd/Site ladc1 mail")
        out["site_mail"] = first_mail(self.sink, mail0, lambda m: "@checkd/Site ladc1" in m["Subject"]) - stopped

        # The takeover (and so the mail) came right after a tick of central's 1 s site watch: continue
        # at a random point of the tick, else every round would see the same phase (the slowest one).
        time.sleep(random.uniform(0, WATCH_EVERY))
        resumed = time.time()
        os.kill(pid, signal.SIGCONT)
        wait_for(lambda: (self.poller_status()["last_seen"] or 0) >= resumed, SLACK, "the poller heard again")
        out["heard_again"] = time.time() - resumed
        wait_for(lambda: not self.poller_status()["takeover"], a.hold_down + SLACK, "handback")
        out["handback"] = time.time() - resumed
        # Results of the poller's arrive during the hold-down too (check-time ordering); this is the
        # first status after the handback that shows one.
        wait_for(self.polled_by(POLLER), SLACK, "the poller's results again")
        out["poller_results"] = time.time() - resumed
        t = log_time(central_log, "handback: poller of site ladc1", resumed)
        if t is not None:
            out["handback_decided"] = t - resumed
        return out

    def autonomous_alert(self) -> dict[str, float]:
        a, out = self.args, {}
        poller_log = self.dir / "poller.log"
        mail0 = len(self.sink.messages)
        if self.check()["status"] != 0:
            raise RuntimeError(f"{SERVICE} not OK before the kill: {self.check()}")

        def alert(m: Any) -> bool:
            return SERVICE in m["Subject"] and f"Sent via: {VIA_POLLER}" in m.get_content()

        killed = time.time()
        self.s.central.stop(kill=True)                  # SIGKILL, then reaped
        self.s.set(2)
        out["critical_set"] = time.time() - killed
        wait_for(lambda: first_mail(self.sink, mail0, alert), a.autonomy_after + SLACK, "the poller's own alert")
        out["alert"] = first_mail(self.sink, mail0, alert) - killed
        for key, needle in (("first_failure", "not delivering"), ("autonomous", "alerts on its own now")):
            t = log_time(poller_log, needle, killed)
            if t is not None:
                out[key] = t - killed
        others = [m["Subject"] for m in self.sink.messages[mail0:] if not alert(m)]
        if others:
            out["other_mails"] = len(others)
        return out

    def central_restart(self) -> dict[str, float]:
        """After autonomous_alert: central back; the poller heard and handed over, the problem told once."""
        out = {}
        mail0 = len(self.sink.messages)
        begun = time.time()
        self.s.central.start()                          # returns once it answers
        wait_for(lambda: "no longer alerts on its own" in self.s.poller_log(), SLACK, "the handover")
        # Both from central's log (ms): its listener up, and the poller's handover taken in.
        listening = log_time(self.s.central.log, "central listening on", begun)
        handed = log_time(self.s.central.log, "handed over", begun)
        if listening is None or handed is None:
            raise RuntimeError("central.log lacks the 'central listening on' or 'handed over' line")
        out["restart_handover"] = handed - listening
        wait_for(lambda: [p for p in self.s.central.get("/api/v1/problems")["problems"] if p["service"] == SERVICE],
                 SLACK, "the problem at central")
        time.sleep(2.0)                                 # a second CRITICAL would come from central by now
        critical = {m["X-Checkd-Event-ID"] for m in self.sink.messages if SERVICE in m["Subject"]
                    and m["X-Checkd-Type"] == "PROBLEM"}
        again = [m["Subject"] for m in self.sink.messages[mail0:] if m["X-Checkd-Type"] == "PROBLEM"]
        if len(critical) != 1 or again:
            raise RuntimeError(f"the problem was told more than once: event IDs {sorted(critical)}, "
                               f"after the restart {again}")
        return out


def tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join("    " + ln[:220] for ln in path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "    (none)"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):6.2f} s  ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--autonomy-after", type=duration, default=None,
                    help=f"poller autonomy_after (default {NodeConfig.autonomy_after:g}s, the product default)")
    ap.add_argument("--stale-after", type=duration, default=None,
                    help=f"central freshness site_stale_after (default {DEFAULT_STALE_AFTER:g}s)")
    ap.add_argument("--hold-down", type=duration, default=None,
                    help=f"central freshness hold_down (default {DEFAULT_HOLD_DOWN:g}s)")
    ap.add_argument("--start-grace", type=duration, default=None,
                    help=f"central freshness start_grace (default {DEFAULT_START_GRACE:g}s, with --quick 0s)")
    ap.add_argument("--rounds", type=int, default=None, help="default 1, with --quick 3")
    ap.add_argument("--quick", action="store_true", help="the tests' settings: 2s / 3s / 3s, 3 rounds")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (central.log, poller.log per round)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = ap.parse_args()
    defaults = QUICK if args.quick else {"autonomy_after": float(NodeConfig.autonomy_after),
                                         "stale_after": DEFAULT_STALE_AFTER, "hold_down": DEFAULT_HOLD_DOWN,
                                         "start_grace": DEFAULT_START_GRACE, "rounds": 1}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.rounds < 1:
        ap.error("--rounds: at least 1")

    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    print(f"settings: poller autonomy_after {args.autonomy_after:g} s; central start_grace {args.start_grace:g} s, site_stale_after "
          f"{args.stale_after:g} s, hold_down {args.hold_down:g} s, site watch every {WATCH_EVERY:g} s; "
          f"check every 0.5 s, retry 0.3 s, max_attempts 2; poller heartbeat 0.3 s; {args.rounds} round(s)")

    tmp = Path(tempfile.mkdtemp(prefix="checkd-failover-bench-"))
    sink = MailSink()
    results: list[dict[str, float]] = []
    failed = 0
    try:
        sink.start()
        for n in range(1, args.rounds + 1):
            r: Round | None = None
            t0 = time.monotonic()
            try:
                r = Round(tmp, n, sink, args)
                r.start()
                got = r.takeover_and_handback()
                got.update(r.autonomous_alert())
                got.update(r.central_restart())
            except Exception as e:          # a timeout, a process that died, an API error: report, go on
                failed += 1
                print(f"round {n}: FAILED: {type(e).__name__}: {e}")
                if r is not None:
                    print(f"  central.log, last lines:\n{tail(r.s.central.log)}")
                    print(f"  poller.log, last lines:\n{tail(r.dir / 'poller.log')}")
                continue
            finally:
                if r is not None:
                    r.stop()
            results.append(got)
            g = got.get
            print(f"round {n} ({time.monotonic() - t0:.0f} s):")
            print(f"  1 kill -9 central -> poller's own alert accepted   {g('alert'):6.2f} s   "
                  f"(poller's first failed delivery at {g('first_failure', float('nan')):.2f}, "
                  f"autonomous at {g('autonomous', float('nan')):.2f}, CRITICAL set at {g('critical_set'):.2f})")
            print(f"  2 SIGSTOP poller -> first result polled_by central {g('takeover'):6.2f} s   "
                  f"(last heard {g('stop_after_last_heard'):.2f} s before the stop; takeover logged at "
                  f"{g('takeover_decided', float('nan')):.2f}; @checkd/Site ladc1 mail at {g('site_mail'):.2f})")
            print(f"  3 SIGCONT poller -> takeover: false                {g('handback'):6.2f} s   "
                  f"(poller heard again at {g('heard_again'):.2f}; handback logged at "
                  f"{g('handback_decided', float('nan')):.2f}; results polled_by {POLLER} at "
                  f"{g('poller_results'):.2f})")
            print(f"  4 central restarted -> poller's handover          {g('restart_handover'):6.2f} s   "
                  f"(from central's listener up; one CRITICAL mail, one event ID)")
            if "other_mails" in got:
                print(f"  note: {int(got['other_mails'])} other mail(s) during the central outage")
    finally:
        sink.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if not results:
        print("no round completed")
        return 1

    def col(key: str) -> list[float]:
        return [x[key] for x in results if key in x]

    print(f"\nmedian (min-max) over {len(results)} round(s):")
    rows = [
        ("1 failure -> first autonomous alert", "alert", "autonomy_after", args.autonomy_after),
        ("2 failure -> takeover", "takeover", "site_stale_after", args.stale_after),
        ("    @checkd/Site ladc1 mail", "site_mail", "site_stale_after", args.stale_after),
        ("3 heal -> handback (takeover: false)", "handback", "hold_down", args.hold_down),
        (f"    results polled_by {POLLER} again", "poller_results", "hold_down", args.hold_down),
        ("4 central restart -> poller's handover", "restart_handover", "reconnect_bound",
         reconnect_bound(HEARTBEAT)),
    ]
    for label, key, name, threshold in rows:
        values = col(key)
        med = statistics.median(values)
        print(f"  {label:<40} {spread(values):<26} = {name} {threshold:g} s + {med - threshold:.2f} s")
    print(f"  (what the + is: alert: the first failed delivery, the poller's 1 s watch, the check "
          f"reaching HARD, SMTP; takeover: central's {WATCH_EVERY:g} s site watch and its first run of the check, "
          f"counted from the poller's last result; handback: hearing the poller again and the {WATCH_EVERY:g} s "
          f"site watch)")
    if failed:
        print(f"{failed} round(s) failed")
    if args.json:
        import json
        Path(args.json).write_text(json.dumps({
            "bench": "failover_times", "rounds": len(results), "failed": failed,
            "settings": {"autonomy_after": args.autonomy_after, "site_stale_after": args.stale_after,
                         "hold_down": args.hold_down, "start_grace": args.start_grace,
                         "reconnect_bound": reconnect_bound(HEARTBEAT)},
            "times": {key: {"median": statistics.median(col(key)), "min": min(col(key)), "max": max(col(key)),
                            "values": col(key)} for _, key, _, _ in rows if col(key)}}) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
