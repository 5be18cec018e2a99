"""Validation of a results batch, the first step of ingest.

Shape errors (broken JSON, wrong types, missing fields) reject the whole
request with 400 and a reason per item; item-level problems (unknown check,
timestamp out of range) are returned per item by ingest. docs/api.md has the
rules.
"""

from __future__ import annotations

import math
from typing import Any

from checkd.api_json import bad_request, parse_json  # parse_json: the APIs read bodies as validate.parse_json
from checkd.bounds import MAX_LONG_OUTPUT, MAX_OUTPUT, MAX_PERFDATA
from checkd.durations import format_duration
from checkd.plugin_output import no_nul
from checkd.result import CheckResult
from checkd.states import StateType

FUTURE_SLACK = 300.0           # a poller clock this far ahead is wrong, not early
MAX_AGE = 7 * 86400.0          # older results are not news any more (the spool is replayed long before)
_STATE_TYPES = {t.value: t for t in StateType}
_NUM = (int, float)
_INT64 = 2**63 - 1             # SQLite's INTEGER: a larger one would fail the whole group commit


# How far past its high-water mark a poller's seq may jump. Seqs rise by one per result; a
# poller skips some only when its spool is compacted (central unreachable for long) or a
# write rolled back, and never faster than it runs checks. A jump beyond this is a broken or
# hostile poster: taking it would make every later result of the poller a "duplicate".
SEQ_JUMP_SLACK = 100_000       # results, whenever
SEQ_JUMP_RATE = 50_000.0       # results per second since central last stored one (a whole central takes ~70k/s)


def seq_limit(hwm: int, since: float, now: float) -> int:
    """The highest seq central takes from a poller whose seq was `hwm` at `since`."""
    return hwm + SEQ_JUMP_SLACK + int(SEQ_JUMP_RATE * min(max(0.0, now - since), 10 * 365 * 86400.0))


class Malformed(ValueError):
    """Why a batch item is not well-formed (docs/api.md)."""


def item(raw: Any) -> tuple[int, CheckResult]:
    """A batch item as its seq and CheckResult, or Malformed saying why not. Kept flat and
    in one pass: it runs per result, and the record is read once (ingest's hot path)."""
    if type(raw) is not dict:
        raise Malformed("item is not an object")
    get = raw.get
    try:
        seq, host, status = raw["seq"], raw["host"], raw["status"]
        state_type, attempt, output, finished = raw["state_type"], raw["attempt"], raw["output"], raw["finished"]
    except KeyError as e:
        raise Malformed(f"missing field {e.args[0]!r}") from None
    if type(seq) is not int or not 1 <= seq <= _INT64:
        raise Malformed("seq: expected an integer >= 1 (64-bit)")
    if type(host) is not str or not host:
        raise Malformed("host: expected a non-empty string")
    service = get("service")
    if service is not None and (type(service) is not str or not service):
        raise Malformed("service: expected a non-empty string or null (host check)")
    if type(status) is not int or not 0 <= status <= (3 if service is not None else 2):
        raise Malformed("status: expected 0-3 for a service, 0-2 for a host")
    st = _STATE_TYPES.get(state_type) if type(state_type) is str else None
    if st is None:
        raise Malformed('state_type: expected "SOFT" or "HARD"')
    if type(attempt) is not int or not 1 <= attempt <= _INT64:
        raise Malformed("attempt: expected an integer >= 1 (64-bit)")
    if type(output) is not str:
        raise Malformed("output: expected a string")
    long_output, perfdata, polled_by, check_type = get("long_output"), get("perfdata"), get("polled_by"), get("check_type")
    for key, v in (("long_output", long_output), ("perfdata", perfdata), ("polled_by", polled_by),
                   ("check_type", check_type)):
        if v is not None and type(v) is not str:
            raise Malformed(f"{key}: expected a string")
    # What a poller keeps of a plugin's output (checkd/plugin_output.py): more is not a poller's.
    for key, v, limit in (("output", output, MAX_OUTPUT), ("long_output", long_output, MAX_LONG_OUTPUT),
                          ("perfdata", perfdata, MAX_PERFDATA)):
        if v is not None and len(v) > limit:
            raise Malformed(f"{key}: at most {limit:,} characters (got {len(v):,})")
    if type(finished) not in _NUM or not math.isfinite(finished):
        raise Malformed("finished: expected a number (Unix time)")
    scheduled, started = get("scheduled"), get("started")
    for key, v in (("scheduled", scheduled), ("started", started)):
        if v is not None and (type(v) not in _NUM or not math.isfinite(v)):
            raise Malformed(f"{key}: expected a number (Unix time)")
    flapping = get("flapping")
    if flapping is not None and type(flapping) is not bool:
        raise Malformed("flapping: expected true or false")
    eid = get("event_id")
    if eid is not None and (type(eid) is not int or not 1 <= eid <= _INT64):
        raise Malformed("event_id: expected an integer >= 1 (64-bit) or null")
    max_attempts = get("max_attempts")
    # A poller's own output has none (checkd/plugin_output.py); other posters may send them.
    output, long_output, perfdata = no_nul(output), no_nul(long_output or ""), no_nul(perfdata or "")
    return seq, CheckResult(host, service, status, st, attempt, output, long_output, perfdata,
                            finished if scheduled is None else scheduled, finished if started is None else started,
                            finished, max_attempts if type(max_attempts) is int else 1, flapping is True,
                            check_type or "active", polled_by or "", eid)


def batch(doc: Any, poller: str, site: str) -> list[tuple[int, CheckResult]]:
    """The items of a well-formed results document, or a 400/403 for the whole request."""
    if type(doc) is not dict:
        raise bad_request("expected a JSON object {poller, site, batch}")
    if doc.get("poller") != poller:
        raise bad_request(f"poller {doc.get('poller')!r} does not match the token (poller {poller!r})", status=403)
    if "site" in doc and doc["site"] != site:
        raise bad_request(f"site {doc['site']!r} is not this poller's site {site!r}", status=403)
    raws = doc.get("batch", [])
    if type(raws) is not list:
        raise bad_request("batch: expected a list of results")
    items: list[tuple[int, CheckResult]] = []
    errors = []
    last = 0
    for i, raw in enumerate(raws):
        try:
            seq, r = item(raw)
            if seq <= last:
                raise Malformed(f"seq {seq} does not rise (previous item has {last})")
        except Malformed as e:
            errors.append({"index": i, "seq": raw.get("seq") if type(raw) is dict else None, "reason": str(e)})
            if len(errors) >= 100:
                break       # enough to see the pattern; the answer stays small
            continue
        last = seq
        items.append((seq, r))
    if errors:
        raise bad_request(f"{len(errors)} malformed item(s); nothing stored", errors)
    return items


def time_problem(finished: float, now: float) -> str | None:
    if finished > now + FUTURE_SLACK:
        return (f"finished is {format_duration(finished - now)} in the future (limit {format_duration(FUTURE_SLACK)}): "
                "check the poller's clock")
    if finished < now - MAX_AGE:
        return f"finished is {(now - finished) / 86400:.1f} days old (limit {MAX_AGE / 86400:.0f} days)"
    return None


_LOG_STATUSES = {"pending", "sent", "failed", "summarised"}
MAX_ADOPTED = 100_000          # notification_log rows in one handover
MAX_PAYLOAD = 1 << 20          # characters of one row's payload (a storm's SUMMARY is the largest)


def log_row_problem(row: Any) -> str | None:
    """What is wrong with one handed-over notification_log row (None: nothing)."""
    from checkd.engine.nflog import from_payload
    if type(row) is not dict:
        return "expected an object"
    for key, types in (("id", (int,)), ("event_id", (int,)), ("kind", (str,)), ("contact", (str,)),
                       ("channel", (str,)), ("number", (int,)), ("level", (int,)), ("created", (int, float)),
                       ("status", (str,)), ("attempts", (int,)), ("payload", (str,))):
        if type(row.get(key)) not in types:
            return f"{key}: expected {' or '.join(t.__name__ for t in types)}"
    if row["status"] not in _LOG_STATUSES:
        return f"status: one of {', '.join(sorted(_LOG_STATUSES))}"
    if row.get("done") is not None and type(row["done"]) not in (int, float):
        return "done: expected a number or null"
    if row.get("error") is not None and type(row["error"]) is not str:
        return "error: expected a string or null"
    if len(row["payload"]) > MAX_PAYLOAD or len(row.get("error") or "") > MAX_PAYLOAD:
        return f"payload and error: at most {MAX_PAYLOAD:,} characters each"
    try:
        n = from_payload(row["payload"])
    except (ValueError, TypeError, KeyError) as e:
        return f"payload: not a notification: {e}"
    if (n.event_id, n.kind.value, n.contact, n.channel.value) != (row["event_id"], row["kind"], row["contact"],
                                                                   row["channel"]):
        return "payload does not match the row"
    return None


def open_event_problem(doc: Any) -> str | None:
    """What is wrong with one problem a poller had open when it handed over (None: nothing)."""
    if type(doc) is not dict:
        return "expected an object"
    eid, host, service, status = doc.get("id"), doc.get("host"), doc.get("service"), doc.get("status")
    if type(eid) is not int or not 1 <= eid <= _INT64:
        return "id: expected an integer >= 1 (64-bit)"
    if type(host) is not str or not host:
        return "host: expected a non-empty string"
    if service is not None and (type(service) is not str or not service):
        return "service: expected a non-empty string or null (host check)"
    if type(status) is not int or not 1 <= status <= (3 if service is not None else 2):
        return "status: expected 1-3 for a service, 1-2 for a host (an open problem)"
    opened = doc.get("opened")
    if type(opened) not in _NUM or not math.isfinite(opened):
        return "opened: expected a number (Unix time)"
    if type(doc.get("flapping", False)) is not bool:
        return "flapping: expected true or false"
    return None
