"""The dispatcher: takes decided (already logged) notifications to their channels.

- Storm control, per contact and channel: after `storm_threshold` messages
  within `storm_window`, further ones are held for `storm_hold` and go out as
  one SUMMARY listing their event IDs.
- Retries: a retryable DeliveryError is tried again after 5 s, 15 s, 30 s,
  1 m, 2 m, then every 5 m (`retry_after` scales the series: its first step),
  until `retry_for` after the decision; then the row is `failed`. PagerDuty and
  Opsgenie (`per_event` channels) are never summarised: each event is its own
  incident there. A failed email is reported over Jabber (to the contact's JID,
  else the room), so the person still hears about the problem.
- Each outcome is written back to notification_log: `sent`, `summarised`
  (for the members of a summary that was sent) or `failed`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from checkd.engine.db import Database, Op
from checkd.engine.notify.notification import Channel, DeliveryError, Kind, Notification
from checkd.engine.nflog import ROOM, SET_OUTCOME
from checkd.engine.notify.notifier import Planned
from checkd.engine.notify.recipients import mail_address
from checkd.engine.notify.webhook import redact
from checkd.durations import format_duration

log = logging.getLogger(__name__)

RETRY_DELAYS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
WORKERS = {Channel.EMAIL: 8, Channel.JABBER: 2, Channel.WEBHOOK: 4, Channel.PAGERDUTY: 4, Channel.OPSGENIE: 4,
           Channel.SLACK: 2}
STOP_GRACE = 10.0               # at shutdown, how long sends already under way may take
SUMMARY_LINE = 160              # characters of each member's line in a summary body
GRAPH_WAIT = 10.0               # an alert waits at most this long for its trend graph


class Sender(Protocol):
    """A channel. One whose `carries_graphs` is true (email, Jabber) gets the trend
    graph in `graph_png`."""

    carries_graphs: bool

    async def send(self, n: Notification) -> None: ...


class Notices(Protocol):
    """Where delivery trouble is reported: the Jabber client."""

    room: str | None

    async def send_text(self, to: str, text: str) -> None: ...


GraphSource = Callable[[Notification], Awaitable[bytes | None]]


@dataclasses.dataclass(frozen=True)
class Settings:
    storm_threshold: int = 10
    storm_window: float = 120.0
    storm_hold: float = 10.0
    retry_for: float = 3600.0
    retry_after: float = RETRY_DELAYS[0]   # the first retry's delay; later ones grow in proportion


@dataclasses.dataclass(slots=True)
class Job:
    rows: list[int]                 # notification_log rows this message settles
    n: Notification
    attempts: int = 0
    noticed: bool = False           # the fallback notice about it went out


class Dispatcher:
    def __init__(self, db: Database, senders: Mapping[Channel, Sender], settings: Settings = Settings(),
                 notices: Notices | None = None, jabber_of: Callable[[str], str] = lambda _c: "",
                 graphs: GraphSource | None = None, clock: Callable[[], float] = time.time):
        self.db, self.senders, self.settings = db, dict(senders), settings
        self.notices = notices
        self.jabber_of = jabber_of          # contact name -> JID ("" when none)
        self.graphs = graphs                # trend PNG for service problems (None until graphs exist)
        self.clock = clock
        self._queues: dict[Channel, asyncio.Queue[Job]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._recent: dict[tuple[str, Channel], collections.deque[float]] = {}
        self._held: dict[tuple[str, Channel], list[Planned]] = {}
        self._busy = 0
        self._writes: set[asyncio.Future[None]] = set()
        self._outcomes: list[tuple[Any, ...]] = []     # SET_OUTCOME rows not yet handed to the database
        self.sent = 0                       # messages accepted by a channel (tests, benchmarks)

    def queued(self) -> int:
        """Notifications waiting: in the queues, held by storm control, or waiting for a retry."""
        return (sum(q.qsize() for q in self._queues.values()) + sum(len(h) for h in self._held.values())
                + len(self._timers) + self._busy)

    async def start(self) -> None:
        for channel in self.senders:
            q: asyncio.Queue[Job] = asyncio.Queue()
            self._queues[channel] = q
            for i in range(WORKERS[channel]):
                self._tasks.append(asyncio.create_task(self._worker(channel, q), name=f"notify-{channel.value}-{i}"))

    async def stop(self) -> None:
        """Let sends under way finish (so they are not repeated after the restart), then
        stop; whatever is still queued stays `pending` and goes out after the restart."""
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        deadline = time.monotonic() + STOP_GRACE
        while self._busy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._write_outcomes()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    # --- in -----------------------------------------------------------------------------

    def submit(self, notes: list[Planned]) -> None:
        """Notifications whose pending rows are committed."""
        now = self.clock()
        s = self.settings
        for p in notes:
            if p.n.channel not in self._queues:
                self._mark([p.row_id], "failed", 0, f"channel {p.n.channel.value} is not configured")
                continue
            key = (p.n.contact, p.n.channel)
            recent = self._recent.setdefault(key, collections.deque())
            while recent and recent[0] <= now - s.storm_window:
                recent.popleft()
            held = self._held.get(key)
            if getattr(self.senders[p.n.channel], "per_event", False) or (
                    held is None and len(recent) < s.storm_threshold):
                recent.append(now)
                self._queues[p.n.channel].put_nowait(Job([p.row_id], p.n))
                continue
            if held is None:
                held = self._held[key] = []
                log.warning("notification storm for %s over %s: more than %d within %gs; summarising",
                            p.n.contact, p.n.channel.value, s.storm_threshold, s.storm_window)
                self._later(s.storm_hold, self._flush, key)
            held.append(p)

    def _later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def run() -> None:
            self._timers.discard(handle)
            fn(*args)

        handle = loop.call_later(delay, run)
        self._timers.add(handle)

    def _flush(self, key: tuple[str, Channel]) -> None:
        held = self._held.pop(key, [])
        if not held:
            return
        self._recent.setdefault(key, collections.deque()).append(self.clock())
        if len(held) == 1:
            self._queues[key[1]].put_nowait(Job([held[0].row_id], held[0].n))
            return
        self._queues[key[1]].put_nowait(Job([p.row_id for p in held], summary([p.n for p in held], self.clock())))

    # --- out ----------------------------------------------------------------------------

    async def _worker(self, channel: Channel, q: asyncio.Queue[Job]) -> None:
        sender = self.senders[channel]
        while True:
            job = await q.get()
            self._busy += 1
            try:
                await self._attempt(sender, job)
            except Exception:           # a bug must not kill the worker; the row stays pending
                log.exception("notification %s: unexpected error", job.n.subject)
            finally:
                self._busy -= 1

    async def _attempt(self, sender: Sender, job: Job) -> None:
        n = job.n
        job.attempts += 1
        if (self.graphs is not None and sender.carries_graphs and n.service is not None
                and n.kind in (Kind.PROBLEM, Kind.ESCALATION) and n.graph_png is None):
            try:
                n = dataclasses.replace(n, graph_png=await asyncio.wait_for(self.graphs(n), GRAPH_WAIT))
            except asyncio.TimeoutError:
                log.warning("no trend graph for %s: not drawn within %gs", n.target, GRAPH_WAIT)
            except Exception as e:     # no graph is better than no alert
                log.warning("no trend graph for %s: %s", n.target, e)
        if not self.db.acting():
            # A central whose lease lapsed sends nothing more: the row stays pending, and the
            # central that holds the lease now sends it (it loads pending rows as it takes over).
            log.warning("notification %s to %s not sent: this central no longer holds the lease", n.subject,
                        shown(n))
            return
        try:
            await sender.send(n)
        except DeliveryError as e:
            self._failed(job, e)
            return
        except Exception as e:
            self._failed(job, DeliveryError(f"{type(e).__name__}: {e}", retryable=True))
            return
        self.sent += 1
        if len(job.rows) > 1:
            self._mark(job.rows, "summarised", job.attempts, None)
        else:
            self._mark(job.rows, "sent", job.attempts, None)
        if job.attempts > 1:
            log.info("notification %s to %s delivered on attempt %d", n.subject, shown(n), job.attempts)

    def _failed(self, job: Job, e: DeliveryError) -> None:
        n = job.n
        give_up = not e.retryable or self.clock() + self._delay(job) > n.created + self.settings.retry_for
        if give_up:
            log.error("notification %s to %s (%s) failed for good after %d attempt(s): %s",
                      n.subject, n.contact, n.channel.value, job.attempts, e)
            self._mark(job.rows, "failed", job.attempts, str(e))
        else:
            delay = self._delay(job)
            log.warning("notification %s to %s (%s) failed, attempt %d, retry in %s: %s",
                        n.subject, n.contact, n.channel.value, job.attempts, format_duration(delay), e)
            self._mark(job.rows, "pending", job.attempts, str(e))
            self._later(delay, self._queues[n.channel].put_nowait, job)
        if n.channel is Channel.EMAIL and (give_up or not job.noticed):
            job.noticed = True
            self._notice(n, e, give_up)

    def _delay(self, job: Job) -> float:
        scale = self.settings.retry_after / RETRY_DELAYS[0]
        return scale * RETRY_DELAYS[min(job.attempts, len(RETRY_DELAYS)) - 1]

    def _notice(self, n: Notification, e: DeliveryError, final: bool) -> None:
        """Tell the contact over Jabber that their mail did not go out (the alert itself first)."""
        if self.notices is None:
            return
        to = (self.jabber_of(n.contact) if n.contact != ROOM else "") or self.notices.room
        if not to:
            return
        fate = "giving up" if final else f"retrying for up to {format_duration(self.settings.retry_for)}"
        text = (f"{n.subject}\n{n.output}\nEmail to {shown(n)} failed: {e}; {fate}.")
        task = asyncio.create_task(self._send_notice(to, text))
        self._writes.add(task)      # kept referenced; stop() waits for it
        task.add_done_callback(self._writes.discard)

    async def _send_notice(self, to: str, text: str) -> None:
        assert self.notices is not None
        try:
            await self.notices.send_text(to, text)
        except DeliveryError as e:
            log.error("could not send the Jabber notice about a failed email to %s either: %s", to, e)

    def _mark(self, rows: list[int], status: str, attempts: int, error: str | None) -> None:
        """Record outcomes; those of one turn of the event loop go to the database as one
        write (in a storm of 1,000 mails a second, one write a mail cost a future, a
        cross-thread wake-up and often a transaction each)."""
        done = self.clock() if status != "pending" else None
        if not self._outcomes:
            asyncio.get_running_loop().call_soon(self._write_outcomes)
        self._outcomes.extend((status, done, attempts, error, r) for r in rows)

    def _write_outcomes(self) -> None:
        rows, self._outcomes = self._outcomes, []
        if not rows:
            return
        ops: list[Op] = [(SET_OUTCOME, rows)]
        fut = self.db.write(ops)
        self._writes.add(fut)
        fut.add_done_callback(self._written)

    def _written(self, fut: asyncio.Future[None]) -> None:
        self._writes.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            # The message went out; only its mark is lost, so a restart may send it once more.
            log.error("could not record a notification's outcome: %s", fut.exception())


def shown(n: Notification) -> str:
    """The address as logs may show it: a webhook URL without its credentials or query (tokens),
    a mail address as the mail went (ops+critical@example.com)."""
    if n.channel is Channel.WEBHOOK:
        return redact(n.address)
    return mail_address(n) if n.channel is Channel.EMAIL else n.address


def summary(notes: list[Notification], now: float) -> Notification:
    """One message standing for several to the same contact and channel."""
    first = notes[0]
    ids = tuple(dict.fromkeys(n.event_id for n in notes))
    lines = []
    for n in notes:
        line = f"{n.subject} - {n.output.splitlines()[0] if n.output else ''}"
        lines.append(line if len(line) <= SUMMARY_LINE else line[:SUMMARY_LINE - 1] + "…")
    sites = sorted({n.site for n in notes if n.site})
    return Notification(
        event_id=ids[0], kind=Kind.SUMMARY, host="", service=None, state="", site=", ".join(sites),
        output="\n".join(lines), contact=first.contact, channel=first.channel, address=first.address,
        since=min(n.since for n in notes), created=now, via=first.via, summary_ids=ids, log_id=first.log_id)
