"""The exporter as central sees it: ingest hands it each stored service result with
perfdata (the point where the RRD writer gets it), and the deploy hook each
deployment's start, finish or abort. Only the active central ingests, so only the
active one exports; a standby, which follows the shared feed into its RRD files,
sends nothing (docs/metrics-export.md, "Two centrals").
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from central.export import influx, remote_write
from central.export.graphite import GraphiteSender
from central.export.http import HttpSender
from central.export.items import Mark, Sample
from central.export.outbox import Outbox, ExportSender
from central.live import Live
from checkd import metrics, perfdata
from checkd.config.exports import ExportTarget

if TYPE_CHECKING:
    from checkd.engine.deployments import Deployment
    from checkd.engine.store import CheckView

log = logging.getLogger(__name__)


def sender_for(target: ExportTarget) -> ExportSender:
    if target.type == "graphite":
        return GraphiteSender(target)
    if target.type == "prometheus_remote_write":
        return HttpSender(target, remote_write.encode, remote_write.HEADERS)
    return HttpSender(target, influx.encode, influx.HEADERS)


class Exporter:
    def __init__(self, live: Live, targets: tuple[ExportTarget, ...]):
        self.live = live
        self.outboxes = [Outbox(t, sender_for(t)) for t in targets]

    @classmethod
    def from_node(cls, live: Live) -> Exporter | None:
        """None without an `export:` list: RRD only, as before."""
        return cls(live, live.node.exports) if live.node.exports else None

    def start(self) -> None:
        for box in self.outboxes:
            box.start()
            t = box.target
            log.info("export %s: %s to %s, prefix %s", t.name, t.type,
                     t.url or f"{t.address[0]}:{t.address[1]}", t.prefix)

    async def stop(self) -> None:
        for box in self.outboxes:
            await box.stop()

    # --- ingest's side (on the loop, never waits) ----------------------------------------

    def record(self, view: CheckView) -> None:
        """A service result just stored, with perfdata: its values to each target that wants
        them. Services with `graph: false` are left out, as from the RRD files."""
        svc = self.live.objs.services.get((view.host, view.service))     # type: ignore[arg-type]
        if svc is None or not svc.graph:
            return
        values, _ = perfdata.parse(view.perfdata)
        samples = [Sample(view.host, view.service or "", m.label, m.uom, m.value, view.last_check)
                   for m in values if m.value is not None and math.isfinite(m.value)]
        for box in self.outboxes:
            for s in samples:
                if box.target.wants(s.host, s.service, s.label):
                    box.put(s)

    def deployment(self, d: Deployment, phase: str, ts: float) -> None:
        """A deployment's start, finish or abort: one marker per host it touches."""
        marks = [Mark(h, d.module, d.revision, d.engineer, phase, ts) for h in d.hosts]
        for box in self.outboxes:
            if box.target.deployments:
                for m in marks:
                    box.put(m)

    # --- reading ---------------------------------------------------------------------------

    def metrics(self) -> list[Any]:
        """For central's /metrics, one series per target."""
        per = {b.target.name: b for b in self.outboxes}
        return [
            metrics.labelled_counter("checkd_export_dropped", "Values dropped: queue full, refused, or unsent at "
                                     "shutdown", "target", {n: b.dropped for n, b in per.items()}),
            metrics.labelled_counter("checkd_export_sent", "Values the receiver took", "target",
                                     {n: b.sent for n, b in per.items()}),
            metrics.labelled_counter("checkd_export_failures", "Sends that failed (each retried with backoff)",
                                     "target", {n: b.failures for n, b in per.items()}),
            metrics.labelled("checkd_export_queued", "Values waiting to be sent", "target",
                             {n: float(b.queued) for n, b in per.items()}),
        ]
