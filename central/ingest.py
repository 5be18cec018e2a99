"""Ingest: results and heartbeats from pollers -> store and events -> one durable write -> ack.

Per poller, `seq` is a high-water mark: a result at or below it was stored
already and is only acknowledged. Within a batch results are applied in
check-time order, and a result older than the one a check already holds never
overwrites it. The answer goes out only after the group commit.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from central import adopt_actions, validate
from central.commit import commit
from checkd.api_json import json_response
from checkd.config.node import PollerAuth
from checkd.engine.db import Op
from checkd.engine.nflog import LOG_FIELDS, LogRow, from_payload, to_payload
from checkd.engine.notify.notification import Kind
from checkd.engine.notify.notifier import Plan
from checkd.engine.store import CheckView, PollerState
from checkd.result import CheckResult

if TYPE_CHECKING:
    from central.commands import CommandQueue
    from central.export.exporter import Exporter
    from central.graphs.graphs import Graphs
    from central.live import Live
    from central.operations import Operations
    from checkd.engine.engine import Engine

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    """One batch applied: the poller's answer, the results stored, and what to commit."""

    answer: dict[str, Any]
    results: list[CheckResult]
    ops: list[Op]
    plan: Plan


class Ingest:
    def __init__(self, live: Live, engine: Engine, operations: Operations, commands: CommandQueue,
                 graphs: Graphs | None):
        self.live, self.engine, self.operations, self.commands, self.graphs = (
            live, engine, operations, commands, graphs)
        self.export: Exporter | None = None     # `export:` (docs/metrics-export.md), set by central

    def _poller_state(self, name: str, site: str, now: float) -> PollerState:
        ps = self.engine.store.pollers.get(name)
        if ps is None:
            ps = self.engine.store.pollers[name] = PollerState(name, site)
        ps.last_seen = now
        return ps

    async def results(self, request: web.Request) -> web.Response:
        auth = self.live.auth.poller(request)
        # Neither the posted JSON nor the validated pairs are kept across the commit's await:
        # what outlives a few hundred allocations is promoted by the cyclic collector, and
        # holding both doubled its full collections during ingest (measured at 100k services).
        items = validate.batch(validate.parse_json(await request.read()), auth.name, auth.site)
        batch = self.apply(auth.name, auth.site, items, time.time())
        del items
        await commit(self.engine, batch.ops, batch.plan)
        self.operations.results_stored(batch.results)
        return json_response({**batch.answer, "commands": self.commands.take(auth.name)})

    def apply(self, poller: str, site: str, items: list[tuple[int, CheckResult]], now: float) -> Batch:
        """Check items against the configuration and apply them to the store (no await
        inside: concurrent batches never interleave)."""
        hosts, services = self.live.objs.hosts, self.live.objs.services
        self._check_seq_jump(poller, items, now)
        ps = self._poller_state(poller, site, now)
        hwm = ps.seq
        accepted: list[CheckResult] = []
        rejected: list[dict[str, Any]] = []
        forbidden: list[dict[str, Any]] = []
        duplicates = 0
        lo, hi = now - validate.MAX_AGE, now + validate.FUTURE_SLACK
        for seq, r in items:
            if seq <= hwm:
                duplicates += 1
                continue
            host, service = r.host, r.service
            h = hosts.get(host)
            reason = None
            if h is None:
                reason = f"unknown host {host!r}"
            elif h.site != site:
                forbidden.append({"seq": seq, "host": host, "service": service,
                                  "reason": f"host {host!r} belongs to site {h.site!r}, not {site!r}"})
                continue
            elif service is not None and (host, service) not in services:
                reason = f"unknown service {service!r} on host {host!r}"
            elif not lo <= r.finished <= hi:
                reason = validate.time_problem(r.finished, now)
            if reason is not None:
                rejected.append({"seq": seq, "host": host, "service": service, "status": 422, "reason": reason})
            else:
                accepted.append(r)
        if forbidden:
            log.warning("poller %s (site %s) reported hosts of other sites, batch refused: %s", poller, site,
                        ", ".join(sorted({f["host"] for f in forbidden})))
            raise validate.bad_request(f"{len(forbidden)} item(s) for hosts of other sites; nothing stored",
                                       forbidden, status=403)
        if rejected:
            log.warning("poller %s: %d result(s) skipped, first: seq %s: %s", poller, len(rejected),
                        rejected[0]["seq"], rejected[0]["reason"])
        if items and items[0][0] > hwm + 1 and hwm > 0:
            log.warning("poller %s: seq gap, %d..%d never arrived", poller, hwm + 1, items[0][0] - 1)
        if items and items[-1][0] > hwm:
            ps.seq, ps.seq_moved = items[-1][0], now     # rejected items too, so the poller can trim its spool
        ops, stale = self._apply_results(poller, accepted)
        ops.append(ps.op())
        plan = self.engine.decide(now)
        answer = {"acked": ps.seq, "accepted": len(accepted) - stale, "duplicates": duplicates, "stale": stale,
                  "rejected": rejected}
        return Batch(answer, accepted, ops, plan)

    def _check_seq_jump(self, poller: str, items: list[tuple[int, CheckResult]], now: float) -> None:
        """Refuse (409, nothing stored, the poller keeps the batch) a seq far past the poller's
        high-water mark (validate.seq_limit). A poller central holds no seq of yet (a new one, or a
        new central) may start anywhere."""
        ps = self.engine.store.pollers.get(poller)
        if ps is None or ps.seq == 0 or not items:
            return
        limit = validate.seq_limit(ps.seq, ps.seq_moved or ps.last_seen, now)
        if items[-1][0] <= limit:
            return
        first = next(s for s, _ in items if s > limit)
        log.warning("poller %s: seq %d is %d past the last stored (%d; at most %d now): batch refused, "
                    "nothing stored", poller, first, first - ps.seq, ps.seq, limit)
        raise validate.bad_request(
            f"seq {first} is {first - ps.seq:,} past the last seq stored from {poller} ({ps.seq}); at most "
            f"{limit} is taken now (seqs rise by one per result): batch refused, nothing stored", status=409)

    def _apply_results(self, source: str, results: list[CheckResult]) -> tuple[list[Op], int]:
        if self.graphs is None and self.export is None:
            return self.engine.apply(source, results)
        ops, stale = self.engine.apply(source, results, self._graph)
        return ops + (self.graphs.shared_ops(time.time()) if self.graphs is not None else []), stale

    def _graph(self, view: CheckView) -> None:
        if view.perfdata and view.service is not None:
            if self.graphs is not None:
                self.graphs.record(view)      # queued for the RRD writer; never waits
            if self.export is not None:
                self.export.record(view)      # queued for the time-series databases; never waits

    async def store_local(self, results: list[CheckResult]) -> None:
        """Results of checks central ran itself (its own site, a takeover, a freshness check):
        the same path as a poller's batch, without the per-poller sequence numbers."""
        now = time.time()
        ops, _ = self._apply_results("central", results)
        plan = self.engine.decide(now)
        await commit(self.engine, ops, plan)
        self.operations.results_stored(results)

    async def heartbeat(self, request: web.Request) -> web.Response:
        auth = self.live.auth.poller(request)
        body = await request.read()
        if body.strip():
            doc = validate.parse_json(body)
            if type(doc) is not dict:
                raise validate.bad_request("expected a JSON object {poller, site}")
            if doc.get("poller", auth.name) != auth.name or doc.get("site", auth.site) != auth.site:
                raise validate.bad_request("poller/site do not match the token", status=403)
        ps = self._poller_state(auth.name, auth.site, time.time())
        await commit(self.engine, [ps.op()])
        return json_response({"acked": ps.seq, "commands": self.commands.take(auth.name)})

    async def reserve_ids(self, request: web.Request) -> web.Response:
        """A block of event IDs for a poller to use while it cannot reach central."""
        auth = self.live.auth.poller(request)
        body = await request.read()
        count = 1000
        if body.strip():
            doc = validate.parse_json(body)
            count = doc.get("count", count) if type(doc) is dict else None
            if type(count) is not int or count < 1:
                raise validate.bad_request("count: expected an integer >= 1")
        first, last, ops = self.engine.ids.reserve_block(auth.name, count)
        await commit(self.engine, ops)
        log.info("reserved event IDs %d-%d for poller %s", first, last, auth.name)
        return json_response({"first": first, "last": last})

    async def adopt_notifications(self, request: web.Request) -> web.Response:
        """A poller that alerted on its own hands over its notification log, before replaying its
        spool: central records it, never sends those again, and sends what the poller had not."""
        auth = self.live.auth.poller(request)
        doc = validate.parse_json(await request.read())
        rows = doc.get("rows") if type(doc) is dict else None
        if type(rows) is not list or len(rows) > validate.MAX_ADOPTED:
            raise validate.bad_request(f'expected {{"rows": [...]}}, at most {validate.MAX_ADOPTED:,} rows')
        tuples = [t for i, row in enumerate(rows) if (t := self._log_row(i, row, auth)) is not None]
        problems = self._open_problems(doc, auth)
        actions = adopt_actions.parse(doc.get("actions"))
        now = time.time()
        self._poller_state(auth.name, auth.site, now)
        plan = self.engine.notifier.adopt(tuples)
        ops: list[Op] = []
        for p in problems:
            ops += self.engine.events.adopt(auth.name, p["id"], (p["host"], p.get("service")), p["status"], p["opened"],
                                       bool(p.get("flapping")), now)
        # After the problems are open here, so that an ack made at the poller lands on its event,
        # and before deciding, so that nothing is told about a problem someone acknowledged there.
        ops += adopt_actions.adopt(self.engine, self.live.objs, auth.name, auth.site, actions, now)
        plan.add(self.engine.decide(now))
        await commit(self.engine, ops + [self.engine.store.pollers[auth.name].op()], plan)
        log.info("poller %s handed over %d notification(s) and %d open problem(s) from while central was "
                 "unreachable (%d notification(s) it had not sent yet: sending them now)", auth.name, len(tuples),
                 len(problems), len(plan.notes))
        return json_response({"adopted": len(tuples), "events": len(problems), "actions": len(actions),
                              "skipped": len(rows) - len(tuples)})

    def _log_row(self, i: int, row: Any, auth: PollerAuth) -> LogRow | None:
        """One handed-over notification_log row as central records it: about a check of the
        poller's own site under an ID from its blocks (else 400/403, nothing adopted); one still to
        send (`pending`) to a contact and channel configured here (else skipped and logged), and
        every row with the address configured here, whatever the payload said."""
        problem = validate.log_row_problem(row)
        if problem is None and not self.engine.ids.in_blocks(auth.name, row["event_id"]):
            problem = f"event_id {row['event_id']} is not from a block reserved for {auth.name}"
        n = from_payload(row["payload"]) if problem is None else None
        if n is not None and n.kind is Kind.SUMMARY:
            outside = [e for e in n.summary_ids if not self.engine.ids.in_blocks(auth.name, e)]
            problem = f"summary_ids {outside[:5]} are not from blocks reserved for {auth.name}" if outside else None
        if problem is not None:
            raise validate.bad_request(f"rows[{i}]: {problem}; nothing adopted")
        assert n is not None
        h = self.live.objs.hosts.get(n.host)
        if n.kind is not Kind.SUMMARY and h is not None and h.site != auth.site:
            log.warning("poller %s (site %s) handed over a notification about %s of site %s: handover refused",
                        auth.name, auth.site, n.target, h.site)
            raise validate.bad_request(f"rows[{i}]: host {n.host!r} belongs to site {h.site!r}, not "
                                       f"{auth.site!r}; nothing adopted", status=403)
        where = self.engine.notifier.configured(n.contact, n.channel)
        unknown = n.kind is not Kind.SUMMARY and (h is None or (n.service is not None and
                                                                  (n.host, n.service) not in self.live.objs.services))
        if unknown or (where is None and row["status"] == "pending"):
            log.warning("poller %s handed over notification %d (%s to %s by %s), %s here: skipped", auth.name,
                        row["id"], n.subject, n.contact, n.channel.value,
                        f"not a check of site {auth.site}" if unknown else "not a configured contact and channel")
            return None
        # A row the poller sent (or failed to) is only a record: kept, with no address but central's.
        address, template = where if where is not None else ("", "")
        if (n.address, n.template) != (address, template):
            n = dataclasses.replace(n, address=address, template=template)
            row = {**row, "payload": to_payload(n)}
        return LogRow(*(row.get(f) for f in LOG_FIELDS))

    def _open_problems(self, doc: dict[str, Any], auth: PollerAuth) -> list[dict[str, Any]]:
        """The handover's `events`: the problems the poller has open. A malformed one refuses the
        handover (400); one for a check this configuration no longer has is skipped and logged."""
        docs = doc.get("events", [])
        if type(docs) is not list:
            raise validate.bad_request('events: expected a list of open problems')
        out = []
        for i, p in enumerate(docs):
            problem = validate.open_event_problem(p)
            if problem is None and not self.engine.ids.in_blocks(auth.name, p["id"]):
                problem = f"id {p['id']} is not from a block reserved for {auth.name}"
            if problem is not None:
                raise validate.bad_request(f"events[{i}]: {problem}; nothing adopted")
            host, service = p["host"], p.get("service")
            h = self.live.objs.hosts.get(host)
            if h is None or h.site != auth.site or (service is not None and (host, service) not in self.live.objs.services):
                log.warning("poller %s handed over problem [ID#:%d] on %s, which is not a check of site %s here; "
                            "skipped", auth.name, p["id"], host if service is None else f"{host}/{service}", auth.site)
                continue
            out.append(p)
        return out
