"""Results reach a real (fake) central exactly once and in order, through
outages, slow answers and refusals, and the spool is trimmed behind them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from checkd.forwarder import Forwarder
from checkd.spool import Spool
from tests.fake_central import FakeCentral
from tests.spool_child import record


async def until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def setup(tmp_path: Path, central: FakeCentral, token: str = "secret",
                **kw: Any) -> tuple[Spool, Forwarder]:
    spool = Spool(tmp_path / "spool", segment_bytes=32 << 10, commit_interval=0.002)
    await spool.open()
    opts: dict[str, Any] = {"batch_size": 500, "heartbeat_interval": 5.0, "backoff_base": 0.05,
                            "backoff_cap": 0.3, "timeout": 2.0}
    opts.update(kw)
    forwarder = Forwarder(spool, central.url, token, "poller-test", "ladc1", **opts)
    await forwarder.start()
    return spool, forwarder


def seqs_sent(central: FakeCentral) -> list[int]:
    return [r["seq"] for body in central.received for r in body["batch"]]


def test_every_result_is_delivered_once_in_order_and_the_spool_trimmed(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeCentral() as central:
            # A generous timeout: on a loaded machine a 2 s timeout can fire and re-send a
            # batch (correct, but not what this test is about: no re-send in normal operation).
            spool, forwarder = await setup(tmp_path, central, timeout=15.0)
            for start in range(0, 1200, 100):
                await spool.append_many([record(i) for i in range(start, start + 100)])
            await until(lambda: len(central.results()) == 1200)
            assert central.results() == list(range(1, 1201))
            assert seqs_sent(central) == list(range(1, 1201))  # no result sent twice
            assert central.stored["poller-test"][7] == dict(record(6), seq=7)
            assert all(b["poller"] == "poller-test" and b["site"] == "ladc1" for b in central.received)
            await until(lambda: spool.stats()["records_pending"] == 0)
            # Acknowledged segments are deleted in a thread right after the ack.
            await until(lambda: spool.stats()["segments"] <= 2)
            assert spool.stats()["acked_seq"] == 1200
            assert forwarder.connected and forwarder.backlog == 0 and forwarder.last_success is not None
            await forwarder.close()
            await spool.close()

    asyncio.run(main())


def test_backlog_after_an_outage_arrives_complete_in_order_exactly_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with FakeCentral() as central:
            await central.fail("down")
            spool, forwarder = await setup(tmp_path, central)
            for start in range(0, 5000, 250):
                await spool.append_many([record(i) for i in range(start, start + 250)])
            await asyncio.sleep(1.0)  # several retries while down
            assert not forwarder.connected and forwarder.backlog == 5000
            assert central.results() == []
            await central.recover()
            await central.fail("error", seconds=0.5)  # then it answers 500 for a while
            await until(lambda: len(central.results()) == 5000)
            assert central.results() == list(range(1, 5001))
            await until(lambda: forwarder.backlog == 0)
            # Acknowledged segments are deleted in a thread right after the ack.
            await until(lambda: spool.stats()["segments"] <= 2)
            assert forwarder.connected

            # A slow central stores the batch but answers after our timeout:
            # the batch is sent again and central keeps each seq once.
            await central.fail("slow", delay=2.5)
            await spool.append_many([record(i) for i in range(10)])
            await until(lambda: len(central.received) > 0 and len(central.results()) == 5010)
            await asyncio.sleep(2.2)
            await central.recover()
            await until(lambda: forwarder.backlog == 0)
            assert central.results() == list(range(1, 5011))
            assert seqs_sent(central).count(5001) >= 2  # re-sent, deduplicated by central
            await forwarder.close()
            await spool.close()

    with caplog.at_level(logging.INFO, logger="checkd.forwarder"):
        asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records if r.name == "checkd.forwarder"]
    unreachable = [m for m in messages if "unreachable" in m]
    assert len(unreachable) == 1, messages  # one line per state change, not one per retry
    assert any("HTTP 500" in m for m in messages)
    assert any("timeout" in m for m in messages)
    assert any("reachable again" in m for m in messages)


def test_idle_poller_sends_heartbeats_and_gets_commands(tmp_path: Path) -> None:
    got: list[Any] = []

    async def on_commands(commands: list[Any]) -> None:
        got.append(commands)

    async def main() -> None:
        async with FakeCentral() as central:
            central.commands = [{"command": "reschedule", "host": "mysql17.ladc1"}]
            spool, forwarder = await setup(tmp_path, central, heartbeat_interval=0.2, on_commands=on_commands)
            await until(lambda: len(central.received) >= 3)
            assert all(body["batch"] == [] for body in central.received)
            await until(lambda: len(got) == 1)
            assert got == [[{"command": "reschedule", "host": "mysql17.ladc1"}]]
            assert forwarder.connected
            await forwarder.close()
            await spool.close()

    asyncio.run(main())


def test_a_refused_token_is_logged_clearly_and_results_are_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with FakeCentral() as central:
            spool, forwarder = await setup(tmp_path, central, token="wrong")
            await spool.append_many([record(i) for i in range(20)])
            await asyncio.sleep(1.0)
            assert central.results() == [] and not forwarder.connected
            assert forwarder.backlog == 20 and len(spool.read(0, 100)) == 20
            await forwarder.close()

            # The operator fixes the token: everything kept arrives.
            forwarder = Forwarder(spool, central.url, "secret", "poller-test", "ladc1")
            await forwarder.start()
            await until(lambda: central.results() == list(range(1, 21)))
            await forwarder.close()
            await spool.close()

    with caplog.at_level(logging.INFO, logger="checkd.forwarder"):
        asyncio.run(main())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors  # not once per retry
    assert "HTTP 401" in errors[0] and "bad token" in errors[0] and "kept" in errors[0]


def test_while_backing_off_heartbeats_go_on_and_the_first_answer_ends_the_wait(tmp_path: Path) -> None:
    """A long backoff (5 s doubling) must not keep a poller from a central that is back:
    its heartbeat during the wait is answered, and the backlog goes at once."""
    async def main() -> None:
        async with FakeCentral() as central:
            await central.fail("down")
            spool, forwarder = await setup(tmp_path, central, heartbeat_interval=0.2, backoff_base=5.0,
                                           backoff_cap=30.0, jitter=lambda: 1.0)
            await spool.append_many([record(i) for i in range(50)])
            await asyncio.sleep(1.5)            # failed, and backing off for 5 s
            assert not forwarder.connected and central.results() == []
            await central.recover()
            back = time.monotonic()
            await until(lambda: len(central.results()) == 50, timeout=10)
            took = time.monotonic() - back
            assert took < 2.0, f"the backlog arrived {took:.1f}s after central was back (backoff 5 s)"
            assert central.results() == list(range(1, 51))
            assert central.received[0]["batch"] == []       # the heartbeat that found central
            await forwarder.close()
            await spool.close()

    asyncio.run(main())
