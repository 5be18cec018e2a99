"""The spool keeps every result it acknowledged, across crashes, torn writes,
full disks and its own size bound; seqs only ever go up."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from checkd.spool import Spool
from checkd.spool_segment import list_segments
from tests.helpers import REPO
from tests.spool_child import record

CHILD = str(REPO / "tests" / "spool_child.py")


def read_all(spool: Spool, after: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = spool.read(after, 1000)
        if not got:
            return out
        out.extend(got)
        after = got[-1]["seq"]


async def opened(directory: Path, **kw: Any) -> Spool:
    spool = Spool(directory, **kw)
    await spool.open()
    return spool


def test_appended_results_read_back_in_seq_order_and_trim_deletes_acked_segments(tmp_path: Path) -> None:
    async def main() -> None:
        spool = await opened(tmp_path, segment_bytes=4096, commit_interval=0.001)
        seqs = await asyncio.gather(*(spool.append(record(i)) for i in range(300)))
        assert sorted(seqs) == list(range(1, 301))
        assert await spool.append_many([record(i) for i in range(5)]) == [301, 302, 303, 304, 305]
        got = spool.read(0, 1000)
        assert [r["seq"] for r in got] == list(range(1, 306))
        by_seq = {r["seq"]: r for r in got}
        for seq, i in zip(seqs, range(300)):
            assert by_seq[seq] == dict(record(i), seq=seq)
        assert [r["seq"] for r in spool.read(10, 3)] == [11, 12, 13]
        assert [r["seq"] for r in spool.read(13, 2)] == [14, 15]  # continues from the cached position
        assert spool.read(305, 10) == []
        before = spool.stats()
        assert before["segments"] > 3 and before["records_pending"] == 305
        spool.trim(200)
        after = spool.stats()
        assert after["acked_seq"] == 200 and after["records_pending"] == 105
        assert after["segments"] < before["segments"] and after["bytes"] < before["bytes"]
        assert read_all(spool, 200)[0]["seq"] == 201
        await spool.close()

        spool = await opened(tmp_path, segment_bytes=4096)
        assert spool.stats()["acked_seq"] == 200 and spool.stats()["records_pending"] == 105
        assert await spool.append(record(1)) == 306
        spool.trim(306)  # everything acknowledged
        assert spool.stats()["records_pending"] == 0
        await spool.close()
        for _, path in list_segments(tmp_path):  # even with no segment left at all
            path.unlink()

        spool = await opened(tmp_path)
        assert await spool.append(record(2)) == 307
        await spool.close()

    asyncio.run(main())


def test_every_seq_reported_durable_survives_kill_9(tmp_path: Path) -> None:
    rng = random.Random(7)
    printed: set[int] = set()
    for _round in range(4):
        child = subprocess.Popen([sys.executable, CHILD, "loop", str(tmp_path)], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout is not None
        target = rng.randint(200, 3000)
        lines = 0
        deadline = time.monotonic() + 20
        while lines < target and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            printed.add(int(line.split()[1]))
            lines += 1
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
        printed.update(int(line.split()[1]) for line in rest.splitlines() if line.startswith("stored"))
        assert lines >= target, "child stopped appending"

        async def check() -> None:
            spool = await opened(tmp_path)
            seqs = [r["seq"] for r in read_all(spool)]
            assert len(seqs) == len(set(seqs)), "a seq is duplicated"
            assert seqs == sorted(seqs)
            assert printed <= set(seqs), f"lost {sorted(printed - set(seqs))[:10]}"
            assert spool.last_seq >= max(printed)
            nxt = await spool.append(record(0))
            assert nxt > max(printed)
            printed.add(nxt)
            await spool.close()

        asyncio.run(check())


def test_torn_tail_is_truncated_with_a_warning_and_earlier_results_survive(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    async def write(n: int) -> None:
        spool = await opened(tmp_path)
        await spool.append_many([record(i) for i in range(n)])
        await spool.close()

    asyncio.run(write(20))
    (_, path), = list_segments(tmp_path)
    size = path.stat().st_size
    os.truncate(path, size - 7)  # the last record lost its last bytes, as after kill -9 mid-write

    async def reopen() -> None:
        with caplog.at_level(logging.WARNING, logger="checkd.spool"):
            spool = await opened(tmp_path)
        assert [r["seq"] for r in read_all(spool)] == list(range(1, 20))
        # 20 was given out before (close() remembered it): never reused
        assert await spool.append(record(99)) == 21
        assert [r["seq"] for r in read_all(spool)] == list(range(1, 20)) + [21]
        await spool.close()

    asyncio.run(reopen())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "torn record" in warnings[0] and str(path) in warnings[0]


def test_garbage_in_the_middle_is_skipped_and_later_results_still_read(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    async def write() -> None:
        spool = await opened(tmp_path)
        await spool.append_many([record(i) for i in range(50)])
        await spool.close()

    asyncio.run(write())
    (_, path), = list_segments(tmp_path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 40] = os.urandom(40)
    path.write_bytes(bytes(data))

    async def reopen() -> None:
        with caplog.at_level(logging.WARNING, logger="checkd.spool"):
            spool = await opened(tmp_path)
        seqs = [r["seq"] for r in read_all(spool)]
        assert 1 in seqs and 50 in seqs and 45 <= len(seqs) < 50
        assert seqs == sorted(seqs)
        assert await spool.append(record(0)) == 51
        await spool.close()

    asyncio.run(reopen())
    assert any("corrupt data" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)


def test_full_disk_fails_appends_clearly_keeps_stored_results_and_recovers(tmp_path: Path) -> None:
    # A real EFBIG from the kernel: the child's file size limit plays the full disk.
    done = subprocess.run([sys.executable, CHILD, "full", str(tmp_path), str(64 << 10)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    stored = [int(line.split()[1]) for line in lines if line.startswith("stored")]
    full = [line for line in lines if line.startswith("full")]
    assert len(full) == 3 and str(tmp_path) in full[0] and "full" in full[0]
    assert lines[-1] == "done"
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and str(tmp_path) in errors[0]  # logged once, not per failed append
    assert "writable again" in done.stderr
    assert stored == list(range(1, len(stored) + 1))  # failed appends used up no seq

    async def check() -> None:
        spool = await opened(tmp_path)
        got = read_all(spool)
        assert [r["seq"] for r in got] == stored
        await spool.close()

    asyncio.run(check())


def test_size_bound_compacts_to_the_newest_result_per_check(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    max_bytes = 64 << 10
    checks = [(f"host{h}", f"svc{s}" if s else None) for h in range(3) for s in range(4)]
    newest: dict[tuple[str, str | None], int] = {}

    async def main() -> None:
        spool = await opened(tmp_path, max_bytes=max_bytes, segment_bytes=8 << 10, commit_interval=0.001)
        peak = 0
        for start in range(0, 3000, 50):
            batch = []
            for i in range(start, start + 50):
                host, service = checks[i % len(checks)]
                batch.append(spool.append(dict(record(i), host=host, service=service, output=f"run {i}")))
                newest[(host, service)] = i
            await asyncio.gather(*batch)  # seqs follow call order
            peak = max(peak, spool.stats()["bytes"])
        await spool.close()  # waits for a running compaction
        # Appends go on while compaction runs in its thread, so the peak depends on how the
        # machine schedules that thread; without compaction it would be ~14x the bound.
        assert peak < 4 * max_bytes
        spool = await opened(tmp_path, max_bytes=max_bytes, segment_bytes=8 << 10)
        assert spool.stats()["bytes"] < 2 * max_bytes
        latest: dict[tuple[str, str | None], str] = {}
        for r in read_all(spool):
            latest[(r["host"], r["service"])] = r["output"]
        assert latest == {key: f"run {i}" for key, i in newest.items()}
        await spool.close()

    with caplog.at_level(logging.INFO, logger="checkd.spool"):
        asyncio.run(main())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("over its size bound" in m and str(max_bytes) in m for m in errors)


def test_a_reader_following_the_writer_across_rotations_misses_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        spool = await opened(tmp_path, segment_bytes=8 << 10, commit_interval=0.001)
        seen: list[int] = []
        done = asyncio.Event()

        async def follow() -> None:
            after = 0
            while not (done.is_set() and after == spool.last_seq):
                got = await asyncio.to_thread(spool.read, after, 37)
                seen.extend(r["seq"] for r in got)
                after = got[-1]["seq"] if got else after
                if not got:
                    await asyncio.sleep(0.001)

        reader = asyncio.create_task(follow())
        for start in range(0, 3000, 30):
            await asyncio.gather(*(spool.append(record(i)) for i in range(start, start + 30)))
        done.set()
        await asyncio.wait_for(reader, 20)
        assert seen == list(range(1, 3001))
        assert spool.stats()["segments"] > 10
        await spool.close()

    asyncio.run(main())
