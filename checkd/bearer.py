"""Bearer tokens on the daemons' HTTP APIs (central's, and a poller's operator calls):
compared in constant time (hmac.compare_digest) against every configured one, so the
answer time does not tell how much of a guess was right."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping

from aiohttp import web


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def match(token: str, candidates: Mapping[str, str]) -> str | None:
    """The name whose token equals `token`; every candidate is compared (no early exit)."""
    found = None
    given = token.encode()
    for name, secret in candidates.items():
        if hmac.compare_digest(given, secret.encode()):
            found = name
    return found


def authorised(request: web.Request, tokens: Mapping[str, str], refusal: str) -> str:
    """The name whose token the request carries, or 401 with `refusal`."""
    token = bearer(request)
    name = match(token, tokens) if token else None
    if name is None:
        raise web.HTTPUnauthorized(text=json.dumps({"error": refusal}), content_type="application/json",
                                   headers={"WWW-Authenticate": "Bearer"})
    return name
