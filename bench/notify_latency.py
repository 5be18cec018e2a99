"""Notification latency: from a poller posting a HARD CRITICAL result to (a) the
mail accepted by the SMTP server and (b) the chat message delivered to the
contact's Jabber client, with `--problems` problems arriving within 1 s.

    .venv/bin/python bench/notify_latency.py [--rounds 3] [--problems 100] [--batch 10]

Everything is real and on 127.0.0.1: a `python -m checkd central` process
(tests/central_proc.py), aiosmtpd as the mail server and a throwaway prosody
with a second XMPP client as the contact's phone (tests/notify_env.py,
tests/prosody.py); the SMTP server runs in a process of its own (bench/smtp_sink.py,
as a real MTA would: `--sink inline` keeps it in this process with the XMPP client and
the poster, as before issue 26's last change). Each round posts the problems as poller-ladc1 in batches of
`--batch`, spread evenly over 1 s (each POST waits for the previous one's ack,
as the forwarder does); latency = arrival time - time that result's POST was
sent. Then everything recovers (recovery messages are not counted) before the
next round. Central runs with a storm threshold above the run's message count,
else storm control would summarise the problems into one SUMMARY mail.

Prints median, p90, p99 and max per channel, per round and overall, how many
arrived, and PASS/FAIL against the target: p99 < 1 s on both channels.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.central_proc import result  # noqa: E402
from tests.notify_env import MailSink, central  # noqa: E402
from tests.prosody import PROSODY, PROSODYCTL, Prosody, Recorder  # noqa: E402

POLLER = "poller-ladc1"
TARGET = 1.0                    # p99 seconds, both channels
SPREAD = 1.0                    # the problems of a round arrive within this many seconds
WAIT = 30.0                     # longest wait for a round's messages
# "s000.ladc1/Disk 3 CRITICAL [ID#:17]": the mail Subject and the chat's first line.
SUBJECT = re.compile(r"^(?P<host>[^/ ]+)/(?P<service>.+) CRITICAL \[ID#:(?P<id>\d+)\]$")


class TimedRecorder(Recorder):
    """Recorder that also keeps when each message arrived."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        self.arrival: list[float] = []
        super().__init__(*a, **kw)

    def _record(self, sender: str, body: str, is_room: bool) -> None:
        self.arrival.append(time.time())
        super()._record(sender, body, is_room)


class ProcessSink:
    """bench/smtp_sink.py in its own process; `messages` are (Subject, X-Checkd-Type,
    arrival) read from its log as they come."""

    def __init__(self, directory: Path):
        from tests.helpers import free_port

        self.port = free_port()
        self.path = directory / "smtp-sink.log"
        self.path.touch()
        self.proc: subprocess.Popen[str] | None = None
        self._seen: list[tuple[str, str, float]] = []
        self._offset = 0

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "smtp_sink.py"), str(self.port),
                                      str(self.path)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"bench/smtp_sink.py did not start (exit {self.proc.poll()})")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def messages(self) -> list[tuple[str, str, float]]:
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        done = chunk.rfind(b"\n") + 1          # whole lines only
        self._offset += done
        for raw in chunk[:done].decode().splitlines():
            arrival, kind, subject = raw.split("\t", 2)
            self._seen.append((subject, kind, float(arrival)))
        return self._seen

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (central: its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[max(0, math.ceil(q * len(values)) - 1)]


def figures(lat: list[float], expected: int) -> dict[str, Any]:
    s = sorted(lat)
    if not s:
        return {"n": 0, "expected": expected}
    return {"n": len(s), "expected": expected, "median": pct(s, 0.5), "p90": pct(s, 0.9),
            "p99": pct(s, 0.99), "max": s[-1]}


def line(label: str, f: dict[str, Any]) -> str:
    if not f["n"]:
        return f"  {label:<22} arrived 0/{f['expected']}"
    return (f"  {label:<22} arrived {f['n']:>4}/{f['expected']:<4} median {f['median']:.3f}  p90 {f['p90']:.3f}  "
            f"p99 {f['p99']:.3f}  max {f['max']:.3f}  s")


def post_spread(c: Any, keys: list[tuple[str, str]], status: int, seq0: int, batch: int,
                posted: dict[tuple[str, str], float] | None, acks: list[float] | None = None) -> int:
    """Post one result per key, in batches spread evenly over SPREAD seconds, one POST
    at a time; records when each batch's POST was sent (and how long until its
    durable ack). Returns the next seq."""
    batches = [keys[i:i + batch] for i in range(0, len(keys), batch)]
    step = SPREAD / len(batches)
    seq, t0 = seq0, time.time()
    for k, part in enumerate(batches):
        delay = t0 + k * step - time.time()
        if delay > 0:
            time.sleep(delay)
        items = []
        for h, s in part:
            items.append(result(seq, h, s, status, f"DISK CRITICAL - {h} {s} 99% full" if status else "DISK OK"))
            seq += 1
        sent = time.time()
        st, doc = c.post_results(POLLER, items)
        if st != 200 or doc.get("accepted") != len(items):
            raise RuntimeError(f"POST refused: {st} {doc}")
        if acks is not None:
            acks.append(time.time() - sent)
        if posted is not None:
            for key in part:
                posted[key] = sent
    return seq


def match(subjects: list[tuple[str, float]], posted: dict[tuple[str, str], float]) -> tuple[list[float], set[int]]:
    """Latencies of the PROBLEM messages for this round's problems (first one per event)."""
    lat, seen = [], set()
    for subject, arrived in subjects:
        m = SUBJECT.match(subject)
        if not m:
            continue
        key, eid = (m["host"], m["service"]), int(m["id"])
        if key in posted and eid not in seen:
            seen.add(eid)
            lat.append(arrived - posted[key])
    return lat, seen


def mail_problems(sink: Any, start: int) -> list[tuple[str, float]]:
    if isinstance(sink, ProcessSink):
        return [(subject, t) for subject, kind, t in sink.messages[start:] if kind == "PROBLEM"]
    with sink._lock:
        return [(str(m["Subject"]), t) for m, t in zip(sink.messages[start:], sink.arrival[start:])
                if m["X-Checkd-Type"] == "PROBLEM"]


def chat_problems(phone: TimedRecorder, bot: str, start: int) -> list[tuple[str, float]]:
    return [(body.splitlines()[0], t) for (sender, body, _), t in
            zip(phone.messages[start:], phone.arrival[start:]) if sender == bot and body]


async def wait_until(predicate: Any, timeout: float) -> bool:
    limit = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > limit:
            return False
        await asyncio.sleep(0.02)
    return True


async def scenario(args: argparse.Namespace, c: Any, sink: Any, phone: TimedRecorder, bot: str
                   ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    keys = [(f"s{i:03d}.ladc1", f"Disk {j}") for i in range(args.problems // 10) for j in range(10)]
    seq = 1
    # Warm-up, not counted: central's Jabber session is up and one mail went through.
    await asyncio.to_thread(c.post_results, POLLER, [result(seq, "db1.ladc1", "Disk /", 2, "DISK CRITICAL")])
    seq += 1
    if not await wait_until(lambda: len(sink.messages) >= 1 and any(s == bot for s, _, _ in phone.messages), 30):
        raise RuntimeError(f"warm-up: no mail or chat from central in 30 s ({len(sink.messages)} mails, "
                           f"{len(phone.messages)} chats); see {c.log}")
    await asyncio.to_thread(c.post_results, POLLER, [result(seq, "db1.ladc1", "Disk /", 0, "DISK OK")])
    seq += 1
    await wait_until(lambda: len(sink.messages) >= 2 and len(phone.messages) >= 2, 10)
    await asyncio.sleep(0.5)

    rounds = []
    for r in range(1, args.rounds + 1):
        mail0, chat0 = len(sink.messages), len(phone.messages)
        cpu0, own0 = cpu_seconds(c.proc.pid), time.process_time()
        sink0 = sink.cpu() if isinstance(sink, ProcessSink) else 0.0
        posted: dict[tuple[str, str], float] = {}
        acks: list[float] = []
        seq = await asyncio.to_thread(post_spread, c, keys, 2, seq, args.batch, posted, acks)
        n = len(keys)
        limit = time.monotonic() + WAIT
        # A cheap check while messages arrive (this loop also timestamps the chats), then
        # the exact one: every problem of this round matched on both channels.
        await wait_until(lambda: len(sink.messages) - mail0 >= n and len(phone.messages) - chat0 >= n, WAIT)
        while (len(match(mail_problems(sink, mail0), posted)[1]) < n
               or len(match(chat_problems(phone, bot, chat0), posted)[1]) < n) and time.monotonic() < limit:
            await asyncio.sleep(0.25)
        mail_lat, _ = match(mail_problems(sink, mail0), posted)
        chat_lat, _ = match(chat_problems(phone, bot, chat0), posted)
        cpu, own = cpu_seconds(c.proc.pid) - cpu0, time.process_time() - own0
        where = "(SMTP server, XMPP client, posting)"
        if isinstance(sink, ProcessSink):
            where = f"(XMPP client, posting) {own:.2f}, the SMTP server's process {sink.cpu() - sink0:.2f}"
        fm, fc = figures(mail_lat, n), figures(chat_lat, n)
        rounds.append((fm, fc))
        span = max(posted.values()) - min(posted.values())
        acks.sort()
        print(f"round {r}: {n} problems posted within {span:.2f} s in {len(acks)} POST(s) (durable ack after "
              f"median {pct(acks, 0.5):.3f} s, max {acks[-1]:.3f} s); CPU s: central {cpu:.2f}, "
              f"this process " + (where if isinstance(sink, ProcessSink) else f"{where} {own:.2f}"))
        print(line("SMTP accepted", fm))
        print(line("Jabber delivered", fc))
        # Recover everything (those messages are not measured) and let them drain.
        mail1, chat1 = len(sink.messages), len(phone.messages)
        seq = await asyncio.to_thread(post_spread, c, keys, 0, seq, args.batch, None)
        await wait_until(lambda: len(sink.messages) - mail1 >= n and len(phone.messages) - chat1 >= n, WAIT)
        await asyncio.sleep(1.0)
        rounds[-1][0]["lat"], rounds[-1][1]["lat"] = mail_lat, chat_lat
    return rounds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--problems", type=int, default=100, help="problems per round (a multiple of 10)")
    ap.add_argument("--batch", type=int, default=10, help="results per POST (10: 10 POSTs 100 ms apart)")
    ap.add_argument("--sink", choices=("process", "inline"), default="process",
                    help="the SMTP server in a process of its own (default), or in this one")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (central.log, state)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = ap.parse_args()
    if args.problems < 10 or args.problems % 10:
        ap.error("--problems: a multiple of 10")
    if not (os.access(PROSODY, os.X_OK) and os.access(PROSODYCTL, os.X_OK)):
        raise SystemExit(f"{PROSODY} not installed (apt-get install prosody, or make deps-bench)")
    # Storm control (default: more than 10 messages per contact and channel within 120 s
    # are summarised) would turn the round into one SUMMARY; the threshold stays above
    # every message of the run, problems and recoveries.
    threshold = max(1000, 2 * (args.rounds + 1) * args.problems + 10)
    notify = f"storm_threshold: {threshold}"

    tmp = Path(tempfile.mkdtemp(prefix="checkd-notify-bench-"))
    sink: Any = ProcessSink(tmp) if args.sink == "process" else MailSink()
    prosody = Prosody()
    c = None
    rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
    try:
        sink.start()
        prosody.start()
        bot = prosody.register("checkd", "botpw")
        ops = prosody.register("ops", "opspw")
        jabber = {"jid": bot, "password": "botpw", "server": f"127.0.0.1:{prosody.port}", "tls": "false"}
        c = central(tmp, sink.port, jabber=jabber, notify=notify, storm=args.problems, ops_jid=ops,
                    escalate_after="1h")

        async def run() -> None:
            nonlocal rounds
            phone = TimedRecorder(ops, "opspw", prosody.port)
            await phone.start()
            try:
                await asyncio.to_thread(c.start)
                rounds = await scenario(args, c, sink, phone, bot)
            finally:
                await phone.stop()

        print(f"machine: {platform.node()} {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
              f"Python {platform.python_version()}")
        print(f"SMTP server: {'bench/smtp_sink.py, a process of its own' if args.sink == 'process' else 'aiosmtpd in this process'}")
        print(f"central: notify {{{notify}}} (storm control out of the way); {args.problems} problems per round "
              f"for contact ops (email + Jabber), " + (f"batches of {args.batch}, spread over {SPREAD:g} s"
                                                      if args.batch < args.problems else "all in one POST"))
        asyncio.run(run())
    finally:
        if c is not None:
            c.stop()
        prosody.cleanup()
        sink.stop()
        if c is not None and c.log.exists():
            notable = [ln for ln in c.log.read_text(errors="replace").splitlines()
                       if " WARNING " in ln or " ERROR " in ln or " CRITICAL " in ln or "Traceback" in ln]
            if notable:
                print(f"central.log: {len(notable)} warning/error line(s), first ones:")
                for ln in notable[:5]:
                    print(f"  {ln[:200]}")
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    ok = True
    overall: dict[str, Any] = {}
    print(f"overall, {len(rounds)} round(s):")
    for i, label in enumerate(("SMTP accepted", "Jabber delivered")):
        lat = [x for rnd in rounds for x in rnd[i]["lat"]]
        expected = sum(rnd[i]["expected"] for rnd in rounds)
        f = figures(lat, expected)
        passed = f["n"] == expected and f["n"] > 0 and f["p99"] < TARGET
        overall[("mail", "jabber")[i]] = {**f, "pass": passed}
        ok &= passed
        print(line(label, f) + f"  -> {'PASS' if passed else 'FAIL'} (p99 < {TARGET:g} s, all arrived)")
    print(f"target p99 < {TARGET:g} s on both channels at {args.problems} problems within {SPREAD:g} s: "
          f"{'PASS' if ok else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "bench": "notify_latency", "rounds": len(rounds), "problems": args.problems, "batch": args.batch, "sink": args.sink,
            "target_p99_s": TARGET, "pass": ok, **overall}) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
