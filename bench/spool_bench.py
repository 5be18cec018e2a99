"""Benchmark: durable appends per second into the spool (group commit).

Many producers (standing in for concurrently finishing checks) append results
and wait for each to be durable, as the scheduler does. Usage:
    .venv/bin/python bench/spool_bench.py [--producers 1000] [--records 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from checkd.spool import Spool

RECORD = {
    "host": "mysql17.ladc1", "service": "Mysql Health Slave Check", "status": 0,
    "state_type": "HARD", "attempt": 1, "output": "OK - slave running, lag 0s",
    "long_output": "", "perfdata": "lag=0s;30;60;0 time=0.012s",
    "scheduled": 1764130000.0, "started": 1764130000.01, "finished": 1764130000.03,
}


async def run(directory: Path, producers: int, records: int, commit_interval: float) -> float:
    spool = Spool(directory, commit_interval=commit_interval)
    await spool.open()
    per = records // producers

    async def producer(k: int) -> None:
        for i in range(per):
            await spool.append(dict(RECORD, attempt=i))

    started = time.perf_counter()
    await asyncio.gather(*(producer(k) for k in range(producers)))
    elapsed = time.perf_counter() - started
    await spool.close()
    return per * producers / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--producers", type=int, nargs="+", default=[100, 500, 1000, 2000])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--commit-interval", type=float, default=0.02)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    rates = {}
    for producers in args.producers:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            rate = asyncio.run(run(Path(tmp), producers, args.records, args.commit_interval))
        print(f"{producers:5d} concurrent producers: {rate:9.0f} durable appends/s")
        rates[str(producers)] = rate
    if args.json:
        import json
        Path(args.json).write_text(json.dumps({"bench": "spool_bench", "records": args.records,
                                               "commit_interval": args.commit_interval,
                                               "appends_per_s": rates}) + "\n")


if __name__ == "__main__":
    main()
