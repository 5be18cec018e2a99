"""A real process that appends to a spool, for tests that kill it or starve it.

Prints "stored SEQ" once append() returned for SEQ (so the parent knows the
result was reported durable). Modes:
  loop DIR           append for ever with several concurrent producers
  full DIR LIMIT     file size limit LIMIT (RLIMIT_FSIZE, SIGXFSZ ignored) until
                     append fails, then lift the limit and append again
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys
from pathlib import Path

from checkd.spool import Spool, SpoolFullError


def record(i: int) -> dict[str, object]:
    return {"host": f"host{i % 7}", "service": f"svc{i % 5}", "status": i % 4, "state_type": "HARD",
            "attempt": 1, "output": f"result {i} " + "x" * (i % 200), "long_output": "",
            "perfdata": f"v={i}", "scheduled": 1.0, "started": 1.0, "finished": 1.0}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def loop_mode(directory: Path) -> None:
    spool = Spool(directory, segment_bytes=32 << 10, commit_interval=0.002)
    await spool.open()

    async def producer(k: int) -> None:
        i = 0
        while True:
            i += 1
            seq = await spool.append(record(i * 10 + k))
            say(f"stored {seq}")

    await asyncio.gather(*(producer(k) for k in range(8)))


async def full_mode(directory: Path, limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    spool = Spool(directory, commit_interval=0.002)
    await spool.open()
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    i = 0
    failures = 0
    while failures < 3:  # several attempts: the spool must stay usable while full
        i += 1
        try:
            say(f"stored {await spool.append(record(i))}")
        except SpoolFullError as exc:
            failures += 1
            say(f"full {exc}")
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # "space is back"
    for _ in range(10):
        i += 1
        say(f"stored {await spool.append(record(i))}")
    await spool.close()
    say("done")


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    mode, directory = sys.argv[1], Path(sys.argv[2])
    if mode == "loop":
        asyncio.run(loop_mode(directory))
    elif mode == "full":
        asyncio.run(full_mode(directory, int(sys.argv[3])))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
