"""`checkd wassup | status | history | ack | unack | resched | dis | ena | downtime`: thin command-line clients of the central API.

Where central is and the write token come from --url/--token, the
CHECKD_URL/CHECKD_TOKEN environment, or a central node file given with -c (a
poller's node file: the poller itself, for acting while central is down).
Synchronous urllib: a one-shot command needs no event loop.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from checkd.config.node import NodeConfig, read_node
from checkd.durations import format_duration, parse_duration
from checkd.escape import TerminalSafe


class ApiError(Exception):
    pass


# A command's own token variable, before CHECKD_TOKEN.
ENV_TOKENS = {"deploy": "CHECKD_DEPLOY_TOKEN", "submit": "CHECKD_SUBMIT_TOKEN"}


def _node_tokens(node: NodeConfig, command: str) -> list[str]:
    """The tokens of a node file a command may use, the likeliest first (a poller's: its api_tokens)."""
    if command == "deploy":
        return [*node.deploy_tokens.values(), *node.api_tokens.values()]
    if command == "submit":
        return [s.token for s in node.submitters.values()]
    return [*node.api_tokens.values(), *node.read_tokens.values()]


def endpoint(args: argparse.Namespace) -> tuple[str, str | None]:
    """Central's (or a poller's) base URL and the token: --url/--token, the environment, -c NODE_FILE."""
    env = ENV_TOKENS.get(args.command)
    token_file = getattr(args, "token_file", None)
    token = args.token or (_read_token(token_file) if token_file else None) or \
        (os.environ.get(env) if env else None) or os.environ.get("CHECKD_TOKEN")
    url = args.url or os.environ.get("CHECKD_URL")
    if args.config is not None and (url is None or token is None):
        node = read_node(args.config)
        if node.role == "poller" and args.command == "submit":
            url = url or node.central          # results go to central, whichever node file names it
        elif node.role == "poller":
            # A poller alerting on its own while central is down (docs/failover.md, "Acting at a poller").
            if not node.status_listen:
                raise ApiError(f"{args.config}: this poller has no status_listen: operators reach a poller there")
            host, _, port_text = node.status_listen.rpartition(":")
            url = url or f"http://{host or '127.0.0.1'}:{int(port_text)}"
        else:
            host, port = node.listen
            scheme = "https" if node.section("tls").get("cert") else "http"
            url = url or f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        token = token or next(iter(_node_tokens(node, args.command)), None)
    return (url or "http://127.0.0.1:8080").rstrip("/"), token


def _read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().strip()
    except OSError as e:
        raise ApiError(f"cannot read the token file {path}: {e.strerror}") from None


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
    return format_duration(now - ts)


def wassup(url: str, token: str | None, args: argparse.Namespace) -> int:
    from checkd.wassup import render
    doc = call(url, "GET", "/api/v1/problems", token=token)
    print(render(doc["problems"], doc["now"], limit=None))
    return 0


def ack(url: str, token: str | None, args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.host):
        raise ApiError("give event IDs or --host HOST")
    body: dict[str, Any] = ({"event_id": args.ids[0]} if len(args.ids) == 1 else {"event_ids": args.ids}
                            if args.ids else {"host": args.host})
    body.update(comment=args.message or "", sticky=not args.not_sticky)
    if args.expire:
        body["expire"] = args.expire
    if args.author:
        body["author"] = args.author
    doc = call(url, "POST", "/api/v1/ack", body, token)
    acked = [doc["event_id"]] if "event_id" in doc else doc["acknowledged"]
    until = f" until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(doc['expires']))}" if doc.get("expires") else ""
    print(f"event{'s' if len(acked) > 1 else ''} #{', #'.join(map(str, acked))} acknowledged by {doc['author']}"
          f"{until}{'' if doc.get('sticky', True) else ' (not sticky: ends when the state changes)'}")
    if doc.get("not_open"):
        print(f"not open: {', '.join(map(str, doc['not_open']))}")
    return 0


def resched(url: str, token: str | None, args: argparse.Namespace) -> int:
    doc = call(url, "POST", "/api/v1/reschedule", _event_or_target(args.target), token)
    print(f"{_what(doc)}: check requested from {', '.join(doc['pollers'])} (runs at its next heartbeat)")
    return 0


def unack(url: str, token: str | None, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"event_id": args.id}
    if args.author:
        body["author"] = args.author
    doc = call(url, "POST", "/api/v1/unack", body, token)
    print(f"event #{doc['event_id']} no longer acknowledged: re-notification and escalation resume")
    return 0


def _target(text: str) -> dict[str, Any]:
    host, sep, service = text.partition("/")
    return {"host": host, "service": service or None}


def _event_or_target(text: str) -> dict[str, Any]:
    """`367768`, `#367768` or `ID#:367768` is an event ID; anything else HOST[/SERVICE]."""
    digits = text.removeprefix("#").removeprefix("ID#:").removeprefix("id#:")
    return {"event_id": int(digits)} if digits.isdigit() else _target(text)


def _what(doc: dict[str, Any]) -> str:
    """The host or host/service an answer is about (an event ID resolved by central)."""
    return doc["host"] if doc["service"] is None else f"{doc['host']}/{doc['service']}"


def comment(url: str, token: str | None, args: argparse.Namespace) -> int:
    doc = call(url, "POST", "/api/v1/comments", {**_event_or_target(args.target), "text": " ".join(args.text)}, token)
    print(f"noted on {_what(doc)}" + (f" [ID#:{doc['event_id']}]" if doc.get("event_id") else ""))
    return 0


def dis(url: str, token: str | None, args: argparse.Namespace) -> int:
    body = {**_event_or_target(args.target), "enabled": False}
    if args.duration:
        body["duration"] = args.duration
    doc = call(url, "POST", "/api/v1/notifications", body, token)
    until = "until `checkd ena`" if doc["until"] is None else \
        f"until {time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(doc['until']))}"
    print(f"notifications for {_what(doc)} disabled {until}")
    return 0


def ena(url: str, token: str | None, args: argparse.Namespace) -> int:
    doc = call(url, "POST", "/api/v1/notifications", {**_event_or_target(args.target), "enabled": True}, token)
    print(f"notifications for {_what(doc)} enabled")
    return 0


def downtime(url: str, token: str | None, args: argparse.Namespace) -> int:
    series = "?series=1" if args.series else ""
    if args.cancel is not None:
        doc = call(url, "DELETE", f"/api/v1/downtimes/{args.cancel}{series}", None, token)
        print(f"cancelled downtime{'s' if len(doc['ids']) > 1 else ''} #{', #'.join(map(str, doc['ids']))}")
        return 0
    if args.change is not None:
        body: dict[str, Any] = {"series": bool(args.series)}
        if args.end:
            body["end"] = _when(args.end)
        if args.message is not None:
            body["comment"] = args.message
        doc = call(url, "PATCH", f"/api/v1/downtimes/{args.change}", body, token)
        for d in doc["downtimes"]:
            print(f"downtime #{d['id']} {_what(d)} now {_clock(d['start'])} - {_clock(d['end'])}")
        return 0
    if (args.hostgroup or args.site) and args.duration is None:
        args.target, args.duration = None, args.target          # `checkd downtime --hostgroup web 2h`
    if not args.duration:
        raise ApiError("give a duration, e.g. checkd downtime web1 2h")
    if args.hostgroup or args.site or (args.target and any(c in args.target for c in "*?[")) or args.services:
        body = {"hostgroups": args.hostgroup, "sites": args.site}
        if args.target:
            body["hosts"] = [args.target.partition("/")[0]]
        if args.services or "/" in (args.target or ""):
            body["services"] = [args.services or args.target.partition("/")[2]]
        duration = args.duration
    elif args.target:
        body, duration = _target(args.target), args.duration
    else:
        raise ApiError("say what: HOST[/SERVICE], a pattern, --hostgroup or --site")
    body.update(duration=duration, comment=args.message or "")
    if args.start:
        body["start"] = _when(args.start)
    if args.flexible:
        body["flexible"] = args.flexible
    doc = call(url, "POST", "/api/v1/downtimes", body, token)
    made = doc.get("downtimes") or [doc]
    kind = f"flexible ({args.flexible} from the first failure) " if args.flexible else ""
    ids = ", #".join(str(d["id"]) for d in made[:20]) + (" ..." if len(made) > 20 else "")
    what = args.target if len(made) == 1 and args.target else f"{len(made)} checks"
    begins = f" from {_clock(doc['start'])}" if doc["start"] > time.time() + 60 else ""
    series = f" (series {doc['series']}: cancel all with --cancel {doc['id']} --series)" if len(made) > 1 else ""
    print(f"downtime{'s' if len(made) > 1 else ''} #{ids} {kind}for {what}{begins} until {_clock(doc['end'])}{series}")
    return 0


def downtimes(url: str, token: str | None, args: argparse.Namespace) -> int:
    query = urllib.parse.urlencode({**({"host": args.host} if args.host else {}),
                                    **({} if args.all else {"ended": "hide"})})
    doc = call(url, "GET", f"/api/v1/downtimes?{query}", token=token)
    if not doc["downtimes"]:
        print("no downtimes")
    for d in doc["downtimes"]:
        state = "in effect" if d["active"] else d["phase"]
        flex = f" flexible {d['duration'] / 60:g}m" if d["flexible"] else ""
        print(f"#{d['id']} {_what(d)} {_clock(d['start'])} - {_clock(d['end'])}{flex} {state} by {d['author']}"
              f"{': ' + d['comment'] if d['comment'] else ''} [series {d['series']}]")
    return 0


HISTORY_FILTERS = ("host", "service", "hostgroup", "site", "state", "kind", "since", "until", "text", "author",
                   "limit", "offset")


def history(url: str, token: str | None, args: argparse.Namespace) -> int:
    """What happened, newest first: one line per history row (docs/history.md)."""
    pairs: list[tuple[str, Any]] = []
    for key in HISTORY_FILTERS:
        value = getattr(args, key)
        if key in ("since", "until") and value:
            value = _local_time(value)
        pairs += [(key, v) for v in value] if isinstance(value, list) else [(key, value)] if value is not None else []
    doc = call(url, "GET", f"/api/v1/history?{urllib.parse.urlencode(pairs)}", token=token)
    if not doc["history"]:
        print("nothing in the history matches")
    for r in doc["history"]:
        state = f" {r['state']}" if r["state"] else ""
        who = f" by {r['author']}" if r["author"] else ""
        text = " ".join((r["output"] or "").split())
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r['ts']))} {r['kind']}{state} {_what(r)} "
              f"[ID#:{r['event_id']}]{who}{': ' + text if text else ''}")
    if doc["more"]:
        print(f"… more: --offset {doc['offset'] + doc['limit']}")
    return 0


def _local_time(text: str) -> str:
    """A date and time as a Unix time, in this machine's time zone (central would read it
    in its own); a duration or a Unix time as it is."""
    try:
        return str(datetime.datetime.fromisoformat(text.strip()).timestamp())
    except ValueError:
        return text


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(ts))


def _when(text: str) -> float:
    """`+1h` (from now), `2026-12-24 02:00` (local time), or a Unix time."""
    text = text.strip()
    try:
        if text.startswith("+"):
            return time.time() + parse_duration(text[1:])
        if text.replace(".", "", 1).isdigit():
            return float(text)
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ApiError(f"{text!r}: write +1h, '2026-12-24 02:00' (local time) or a Unix time") from None


def daemon_status(url: str, token: str | None = None) -> int:
    """`checkd status` without a target: the daemon's own metrics, for humans."""
    from checkd import metrics
    req = urllib.request.Request(url + "/metrics")
    if token:
        req.add_header("Authorization", f"Bearer {token}")      # central with `web: {read: login}`
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            m = metrics.parse(r.read().decode())
    except (urllib.error.URLError, OSError) as e:
        raise ApiError(f"cannot read {url}/metrics: {getattr(e, 'reason', e)}") from None
    if "checkd_results_total" in m or "checkd_results" in m:
        print(f"central {url}")
        print(f"  results stored:        {metrics.one(m, 'checkd_results'):.0f}")
        print(f"  open problems:         {metrics.one(m, 'checkd_open_events'):.0f}")
        print(f"  notifications sent:    {metrics.one(m, 'checkd_notifications_sent'):.0f}, "
              f"queued {metrics.one(m, 'checkd_notifications_queued'):.0f}")
        for labels, v in m.get("checkd_poller_silent_seconds", []):
            print(f"  poller {labels['poller']}: last heard {format_duration(v)} ago")
        for labels, v in m.get("checkd_site_takeover", []):
            if v:
                print(f"  site {labels['site']}: central polls it itself (its pollers are silent)")
    else:
        connected = metrics.one(m, "checkd_central_connected")
        print(f"poller {url}")
        print(f"  checks run:            {metrics.one(m, 'checkd_checks'):.0f} "
              f"({metrics.one(m, 'checkd_checks_configured'):.0f} configured)")
        print(f"  results waiting:       {metrics.one(m, 'checkd_spool_backlog'):.0f}")
        print(f"  central:               {'connected' if connected else 'UNREACHABLE'}"
              f"{', alerting on its own' if metrics.one(m, 'checkd_autonomous') else ''}")
    return 0


def status(url: str, token: str | None, args: argparse.Namespace) -> int:
    if not args.target:
        if args.config is not None and args.url is None:
            node = read_node(args.config)
            if node.role == "poller":
                if not node.status_listen:
                    raise ApiError(f"{args.config}: no status_listen: this poller serves no metrics")
                return daemon_status(f"http://{node.status_listen}")
        return daemon_status(url, token)
    want = _target(args.target)
    doc = call(url, "GET", f"/api/v1/status?host={urllib.parse.quote(want['host'])}", token=token)
    checks = doc["hosts"] + [s for s in doc["services"] if want["service"] in (None, s["service"])]
    if want["service"] is not None and len(checks) == 1:
        raise ApiError(f"unknown service {want['service']!r} on host {want['host']!r}")
    for c in checks:
        what = c["host"] if c["service"] is None else f"  {c['service']}"
        checked = "never checked" if c["last_check"] is None else f"checked {_ago(c['last_check'], doc['now'])} ago"
        event = f" [ID#:{c['event_id']}]" if c["event_id"] else ""
        print(f"{what}: {c['state']} ({c['state_type']}, {checked}){event}: {c['output']}")
    return 0


def deploy(url: str, token: str | None, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"action": args.action}
    for key in ("hosts", "hostgroups", "module", "revision", "engineer", "summary", "mute_for", "id"):
        value = getattr(args, key)
        if value:
            body[key] = value
    doc = call(url, "POST", "/api/v1/deployments", body, token)
    hosts = ", ".join(doc["hosts"])
    if args.action == "start":
        until = time.strftime("%H:%M:%S", time.localtime(doc["expires"]))
        # The id alone on stdout, for `id=$(checkd deploy start ...)`; the story on stderr.
        print(doc["id"])
        print(f"deployment {doc['id']}: {doc['module']} r{doc['revision']} on {hosts}; notifications muted "
              f"until finish, at most until {until}", file=sys.stderr)
    else:
        print(f"deployment {doc['id']} {doc['result']}: {doc['module']} r{doc['revision']} on {hosts}")
    return 0


HANDLERS = {"wassup": wassup, "history": history, "ack": ack, "unack": unack, "resched": resched, "dis": dis, "ena": ena,
            "downtime": downtime, "downtimes": downtimes, "comment": comment, "status": status, "deploy": deploy}


def main(args: argparse.Namespace) -> int:
    # Plugin output, comments and names (and central's error texts) are printed: their
    # control characters as escapes, so nothing that came over the wire drives the terminal.
    with contextlib.redirect_stdout(TerminalSafe(sys.stdout)), contextlib.redirect_stderr(TerminalSafe(sys.stderr)):
        try:
            url, token = endpoint(args)
            return HANDLERS[args.command](url, token, args)
        except ApiError as e:
            print(f"checkd {args.command}: {e}", file=sys.stderr)
            return 1

