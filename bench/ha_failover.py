"""Failover of an active/standby central pair on PostgreSQL, measured with real
processes (docs/ha.md): two `checkd central` processes sharing one database of a
throwaway PostgreSQL 15 cluster on 127.0.0.1, the ladc1 poller knowing both, a check
every 0.5 s reading its state from a file, aiosmtpd for the mail (tests/test_ha.py's
`Pair`).

    .venv/bin/python bench/ha_failover.py --rounds 10

Each round kills the active central with SIGKILL and, at the same moment, flips the
check's state (OK -> CRITICAL or back), then measures from the kill:
1. lease taken: the standby's `central lease taken` log line (the database's clock
   decides it has lapsed: at most the lease TTL after the last renewal);
2. serving: the new active's `central listening on` line (state loaded, its first
   fenced commit made: the event ID reservation);
3. first poller ack: the first result of the poller newer than the kill seen in the
   new active's GET /api/v1/status;
4. first mail: the PROBLEM or RECOVERY for the flip accepted by the SMTP server.
The killed central is then started again as the standby, and the next round kills
the other one. Target: 3 under 15 s in every round.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from checkd.engine.lease import RENEW_EVERY, TTL
    from tests.notify_env import MailSink
    from tests.postgres import Postgres
    from tests.test_ha import Pair, failover_round, last_check

    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, Postgres() as pg:
        sink = MailSink()
        sink.start()
        pair = Pair(Path(tmp), pg.new_database(), sink)
        try:
            pair.a.start()
            pair.b.start(standby=True)
            pair.start_poller()
            deadline = time.monotonic() + 20
            while last_check(pair.a, "Replication") == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            state = 0
            for n in range(args.rounds):
                old, new = (pair.a, pair.b) if n % 2 == 0 else (pair.b, pair.a)
                time.sleep(RENEW_EVERY * 1.5)           # a kill anywhere in the renewal cycle
                state = 2 - state
                row = failover_round(pair, old, new, state)
                rows.append(row)
                print(f"round {n + 1}: lease taken {row['lease']:.2f} s, serving {row['serving']:.2f} s, "
                      f"first poller ack {row['ack']:.2f} s, first mail {row['mail']:.2f} s", flush=True)
        finally:
            pair.stop()
            sink.stop()

    def fig(key: str) -> dict[str, float]:
        values = [r[key] for r in rows]
        return {"median": statistics.median(values), "max": max(values), "min": min(values)}

    figures = {k: fig(k) for k in ("lease", "serving", "ack", "mail")}
    print(f"machine: {platform.node()}, Python {platform.python_version()}; lease TTL {TTL:g} s, "
          f"renewed every {RENEW_EVERY:g} s")
    for key, label in (("lease", "kill -> lease taken"), ("serving", "kill -> serving (first fenced commit)"),
                       ("ack", "kill -> first poller ack"), ("mail", "kill -> first mail")):
        f = figures[key]
        print(f"{label}: median {f['median']:.2f} s, max {f['max']:.2f} s over {len(rows)} rounds")
    if args.json:
        Path(args.json).write_text(json.dumps({"bench": "ha_failover", "rounds": len(rows), "ttl_s": TTL,
                                               "renew_every_s": RENEW_EVERY, "rows": rows, **figures}) + "\n")
    return 0 if figures["ack"]["max"] < 15 else 1


if __name__ == "__main__":
    raise SystemExit(main())
