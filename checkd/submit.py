"""`checkd submit HOST [SERVICE] STATE OUTPUT`: one passive result to central, for scripts and
cron jobs, over central's NRDP endpoint (POST /nrdp/, JSONDATA) with a submitter's token.
Silent on success, like send_nrdp; a refusal or an unreachable central is one line on stderr
and exit 1 (docs/passive.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from checkd.client import ApiError, endpoint
from checkd.states import HostStatus, Status


def state_number(text: str, host_check: bool) -> int:
    """`2`, `critical`, `CRITICAL` (for a host: `0`-`2`, `up`, `down`, `unreachable`)."""
    names = HostStatus if host_check else Status
    word = text.strip().upper()
    if word.isdigit() and int(word) in {s.value for s in names}:
        return int(word)
    if word in names.__members__:
        return int(names[word])
    choices = ", ".join(s.name.lower() for s in names)
    raise ApiError(f"state {text!r}: one of {choices} (or {min(names).value}-{max(names).value})")


def document(args: argparse.Namespace) -> dict[str, Any]:
    """NRDP's JSON for the one result the command line describes."""
    host, *rest = args.check
    if len(rest) == 2:
        service, (state, output) = None, rest
    elif len(rest) == 3:
        service, state, output = rest
    else:
        raise ApiError("give HOST [SERVICE] STATE OUTPUT")
    first, newline, rest = output.partition("\n")     # perfdata goes on the first line, as a plugin's
    text = output if not args.perfdata else f"{first} | {args.perfdata}{newline}{rest}"
    item: dict[str, Any] = {"checkresult": {"type": "host" if service is None else "service"}, "hostname": host,
                            "state": str(state_number(state, service is None)), "output": text}
    if service is not None:
        item["servicename"] = service
    return {"checkresults": [item]}


def post(url: str, token: str, doc: dict[str, Any]) -> dict[str, Any]:
    """POST /nrdp/ as a form, as NRDP's clients do; its answer's `result`."""
    body = urllib.parse.urlencode({"token": token, "cmd": "submitcheck", "JSONDATA": json.dumps(doc)}).encode()
    req = urllib.request.Request(url + "/nrdp/", data=body, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            payload = r.read()
    except urllib.error.HTTPError as e:
        payload = e.read()          # 413 comes with NRDP's result document too
        if not payload:
            raise ApiError(f"central answered {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise ApiError(f"cannot reach central at {url}: {e.reason}") from None
    try:
        result = json.loads(payload)["result"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(f"{url}/nrdp/ did not answer as NRDP does: {payload[:200]!r}") from None
    return result


def main(args: argparse.Namespace) -> int:
    try:
        url, token = endpoint(args)
        if not token:
            raise ApiError("no token: give --token, --token-file, $CHECKD_SUBMIT_TOKEN or $CHECKD_TOKEN "
                           "(a submitters: token of central)")
        result = post(url, token, document(args))
        if result.get("status") != 0:
            info = result.get("information")
            raise ApiError(f"central refused it: {result.get('message')}" + (f": {info}" if info else ""))
    except ApiError as e:
        print(f"checkd submit: {e}", file=sys.stderr)
        return 1
    return 0
