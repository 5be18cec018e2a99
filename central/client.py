"""`checkd wassup | ack | resched`: thin command-line clients of the central API.

Where central is and the write token come from --url/--token, the
CHECKD_URL/CHECKD_TOKEN environment, or a central node file given with -c.
Synchronous urllib: a one-shot command needs no event loop.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from checkd.config.node import read_node


class ApiError(Exception):
    pass


def _endpoint(args: argparse.Namespace) -> tuple[str, str | None]:
    url, token = args.url or os.environ.get("CHECKD_URL"), args.token or os.environ.get("CHECKD_TOKEN")
    if args.config is not None and (url is None or token is None):
        node = read_node(args.config)
        host, port = node.listen
        scheme = "https" if node.section("tls").get("cert") else "http"
        url = url or f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        token = token or next(iter(node.api_tokens.values()), None)
    return (url or "http://127.0.0.1:8080").rstrip("/"), token


def call(url: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            reason = json.loads(e.read()).get("error", e.reason)
        except ValueError:
            reason = e.reason
        raise ApiError(f"{e.code}: {reason}") from None
    except urllib.error.URLError as e:
        raise ApiError(f"cannot reach central at {url}: {e.reason}") from None


def _ago(ts: float, now: float) -> str:
    from checkd.durations import format_duration
    return format_duration(max(0.0, now - ts))


def wassup(url: str, token: str | None, args: argparse.Namespace) -> int:
    doc = call(url, "GET", "/api/v1/problems")
    problems = doc["problems"]
    if not problems:
        print("all OK: no open problems")
        return 0
    for p in problems:
        what = p["host"] if p["service"] is None else f"{p['host']}/{p['service']}"
        flags = [f for f, on in (("ACK", p["acknowledged"]), ("muted", p["muted"]), ("flapping", p["flapping"]),
                                 (f"host down #{p['parent_id']}", p["suppressed"])) if on]
        print(f"#{p['id']} {what} {p['state']} for {_ago(p['since'], doc['now'])}"
              f"{' [' + ', '.join(flags) + ']' if flags else ''}: {p['output']}")
    return 0


def ack(url: str, token: str | None, args: argparse.Namespace) -> int:
    body = {"event_id": args.id, "comment": args.message or ""}
    if args.author:
        body["author"] = args.author
    doc = call(url, "POST", "/api/v1/ack", body, token)
    print(f"event #{doc['event_id']} acknowledged by {doc['author']}")
    return 0


def resched(url: str, token: str | None, args: argparse.Namespace) -> int:
    target = args.target
    if target.lstrip("#").isdigit():
        body: dict[str, Any] = {"event_id": int(target.lstrip("#"))}
    else:
        host, _, service = target.partition("/")
        body = {"host": host, "service": service or None}
    doc = call(url, "POST", "/api/v1/reschedule", body, token)
    what = doc["host"] if doc["service"] is None else f"{doc['host']}/{doc['service']}"
    print(f"{what}: check requested from {', '.join(doc['pollers'])} (runs at its next heartbeat)")
    return 0


HANDLERS = {"wassup": wassup, "ack": ack, "resched": resched}


def main(args: argparse.Namespace) -> int:
    url, token = _endpoint(args)
    try:
        return HANDLERS[args.command](url, token, args)
    except ApiError as e:
        print(f"checkd {args.command}: {e}", file=sys.stderr)
        return 1

