"""Metrics export: a copy of every graphed perfdata value (and the deployment markers)
to an existing time-series database, besides the RRD files (docs/metrics-export.md).

items (what is sent) -> outbox (one bounded queue per target, batched sends with
backoff) -> graphite | remote_write | influx (the wire formats); exporter ties them
to ingest on the active central.
"""
