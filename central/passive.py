"""Passive results: what a submitter sent (NRDP, `checkd submit`) checked against its scope
and the configuration, turned into CheckResults by the SOFT/HARD rules of checkd/transitions.py,
and stored through ingest's store_local like central's own results. Also the result a stale
check gets from its `freshness_state:` (docs/passive.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from central import validate
from central.nrdp_data import MAX_PROBLEMS, Submission
from checkd.config.submitters import Submitter
from checkd.plugin_output import MAX_LONG_OUTPUT_CHARS, MAX_TEXT_CHARS, no_nul, split_output
from checkd.result import CheckKey, CheckResult
from checkd.transitions import CheckState, advance, apply, passive_host

if TYPE_CHECKING:
    from central.live import Live
    from checkd.engine.store import Store

log = logging.getLogger(__name__)

PASSIVE = "passive"             # the check_type of a submitted result
FRESHNESS = "freshness"
# Why a request is refused, most serious first: the answer names the first that applies.
DENIED, UNKNOWN, BAD_TIME = "DENIED TOKEN", "UNKNOWN CHECK", "BAD TIME"


class Refused(Exception):
    """The whole request is refused and nothing of it stored; `message` is the NRDP word."""

    def __init__(self, message: str, information: str):
        super().__init__(f"{message}: {information}")
        self.message, self.information = message, information


class Passive:
    def __init__(self, live: Live, store: Store, store_local: Callable[[list[CheckResult]], Awaitable[None]]):
        self.live, self.store, self.store_local = live, store, store_local
        # Each check's state machine and flap history, continued from the store whenever a
        # result came another way since (a forced run at a poller, a freshness command).
        self.states: dict[CheckKey, CheckState] = {}

    def _state(self, key: CheckKey) -> CheckState:
        st = self.states.setdefault(key, CheckState())
        v = self.store.checks.get(key)
        if v is not None and v.last_check > st.last_check:
            st.status, st.state_type, st.attempt = v.status, v.state_type, v.attempt
            st.last_check, st.last_state_change, st.output = v.last_check, v.last_state_change, v.output
        return st

    def result(self, key: CheckKey, status: int, text: str, when: float, check_type: str,
               polled_by: str) -> CheckResult | None:
        """The CheckResult of `status` and plugin-style `text` at `when`, its state advanced
        (None when the check already holds a newer result: it would never be stored)."""
        host = self.live.objs.hosts[key[0]]
        sched = (self.live.objs.services[key] if key[1] is not None else host).schedule   # type: ignore[index]
        st = self._state(key)
        if when < st.last_check:
            return None
        t = advance(st, status, sched.max_attempts) if key[1] is not None else passive_host(st, status)
        apply(st, t, when)
        output, long_output, perfdata = split_output(no_nul(text))
        st.output = output
        flapping = st.flap.record(status, sched.low_flap_threshold, sched.high_flap_threshold) \
            if sched.flap_detection else False
        return CheckResult(key[0], key[1], t.status, t.state_type, t.attempt, output[:MAX_TEXT_CHARS],
                           long_output[:MAX_LONG_OUTPUT_CHARS], perfdata[:MAX_LONG_OUTPUT_CHARS], when, when, when,
                           sched.max_attempts, flapping, check_type, polled_by)

    def _problems(self, sub: Submitter, items: list[Submission], now: float) -> list[tuple[str, str]]:
        """(NRDP word, reason) for every item that cannot be stored."""
        objs = self.live.objs
        out = []
        for s in items:
            h = objs.hosts.get(s.host)
            what = s.host if s.service is None else f"{s.host}/{s.service}"
            if h is None:
                out.append((UNKNOWN, f"checkresult {s.index}: no host {s.host!r} in central's configuration"))
            elif not sub.may_report(h, objs.host_groups):
                out.append((DENIED, f"checkresult {s.index}: submitter {sub.name} may not report host {s.host!r} "
                                    f"(its scope: {sub.scope()})"))
            elif s.service is not None and (s.host, s.service) not in objs.services:
                out.append((UNKNOWN, f"checkresult {s.index}: no service {s.service!r} on host {s.host!r}"))
            elif s.time is not None and (why := validate.time_problem(s.time, now)) is not None:
                out.append((BAD_TIME, f"checkresult {s.index} ({what}): time: {why}"))
        return out

    async def submit(self, sub: Submitter, items: list[Submission]) -> int:
        """Store every item or, if any cannot be, none (Refused): how many were stored (an
        item older than what its check holds is not)."""
        now = time.time()
        problems = self._problems(sub, items, now)
        if problems:
            word = next(w for w in (DENIED, UNKNOWN, BAD_TIME) if any(p[0] == w for p in problems))
            reasons = [p[1] for p in problems]
            information = "; ".join(reasons[:MAX_PROBLEMS]) + (" ..." if len(reasons) > MAX_PROBLEMS else "")
            log.warning("passive: %d result(s) from submitter %s refused, nothing stored (%s): %s",
                        len(items), sub.name, word, information)
            raise Refused(word, information)
        # No await between the state machines and store_local's apply: requests never interleave.
        results = [r for s in items if (r := self.result((s.host, s.service), s.state, s.output, s.time or now,
                                                         PASSIVE, f"submitter:{sub.name}")) is not None]
        if len(results) < len(items):
            log.info("passive: %d result(s) from submitter %s older than what their checks hold; not stored",
                     len(items) - len(results), sub.name)
        if results:
            await self.store_local(results)
        log.debug("passive: submitter %s: %d result(s) stored", sub.name, len(results))
        return len(results)

    async def stale(self, key: CheckKey, status: int, label: str, why: str) -> float | None:
        """A stale check's `freshness_state:` stored as central's, its text the configured label
        and `why` ("no result for 15m (freshness threshold 10m)"); its check time, None if not stored."""
        text = f"{label}: {why}" if label else why
        r = self.result(key, status, text.replace("|", "/"), time.time(), FRESHNESS, "central")
        if r is None:
            return None
        await self.store_local([r])
        return r.finished
