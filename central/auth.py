"""Who is calling: pollers by their own bearer token, API writers by an api_tokens entry.

Tokens are compared in constant time (hmac.compare_digest) against every
configured one, so the answer time does not tell how much of a guess was right.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping

from aiohttp import web

from checkd.config.node import PollerAuth


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _match(token: str, candidates: Mapping[str, str]) -> str | None:
    """The name whose token equals `token`; every candidate is compared (no early exit)."""
    found = None
    given = token.encode()
    for name, secret in candidates.items():
        if hmac.compare_digest(given, secret.encode()):
            found = name
    return found


class Auth:
    def __init__(self, pollers: Mapping[str, PollerAuth], api_tokens: Mapping[str, str],
                 deploy_tokens: Mapping[str, str] | None = None):
        self.pollers = dict(pollers)
        self._poller_tokens = {p.name: p.token for p in pollers.values()}
        self._api_tokens = dict(api_tokens)
        # The deploy hook's tokens, or an operator's: never a poller's.
        self._deploy_tokens = {**{f"api:{k}": v for k, v in api_tokens.items()}, **(deploy_tokens or {})}

    def poller(self, request: web.Request) -> PollerAuth:
        """The poller this request comes from, or 401."""
        return self.pollers[_authorised(request, self._poller_tokens, "unknown or missing poller token")]

    def deployer(self, request: web.Request) -> str:
        """The deploy_tokens (or api_tokens) name of a deployment call, or 401."""
        name = _authorised(request, self._deploy_tokens, "deployments need a token from deploy_tokens")
        return name.removeprefix("api:")

    def writer(self, request: web.Request) -> str:
        """The api_tokens name of a write call, or 401."""
        return _authorised(request, self._api_tokens, "write calls need a token from api_tokens")


def _authorised(request: web.Request, tokens: Mapping[str, str], refusal: str) -> str:
    """The name whose token the request carries, or 401 with `refusal`."""
    token = bearer(request)
    name = _match(token, tokens) if token else None
    if name is None:
        raise web.HTTPUnauthorized(text=json.dumps({"error": refusal}), content_type="application/json",
                                   headers={"WWW-Authenticate": "Bearer"})
    return name
