"""Who is calling: pollers by their own bearer token, API writers by an api_tokens entry,
passive results by a submitters entry.

Tokens are compared in constant time against every configured one
(checkd/bearer.py), so the answer time does not tell how much of a guess was right.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from checkd.bearer import authorised, match
from checkd.config.node import PollerAuth
from checkd.config.submitters import Submitter


class Auth:
    def __init__(self, pollers: Mapping[str, PollerAuth], api_tokens: Mapping[str, str],
                 deploy_tokens: Mapping[str, str] | None = None, submitters: Mapping[str, Submitter] | None = None):
        self.pollers = dict(pollers)
        self._poller_tokens = {p.name: p.token for p in pollers.values()}
        self._api_tokens = dict(api_tokens)
        # The deploy hook's tokens, or an operator's: never a poller's.
        self._deploy_tokens = {**{f"api:{k}": v for k, v in api_tokens.items()}, **(deploy_tokens or {})}
        self.submitters = dict(submitters or {})
        self._submitter_tokens = {s.name: s.token for s in self.submitters.values()}

    def poller(self, request: web.Request) -> PollerAuth:
        """The poller this request comes from, or 401."""
        return self.pollers[authorised(request, self._poller_tokens, "unknown or missing poller token")]

    def deployer(self, request: web.Request) -> str:
        """The deploy_tokens (or api_tokens) name of a deployment call, or 401."""
        name = authorised(request, self._deploy_tokens, "deployments need a token from deploy_tokens")
        return name.removeprefix("api:")

    def writer(self, request: web.Request) -> str:
        """The api_tokens name of a write call, or 401."""
        return authorised(request, self._api_tokens, "write calls need a token from api_tokens")

    def submitter(self, token: str) -> Submitter | None:
        """The submitter whose token this is (NRDP sends it as a form field, not a header)."""
        name = match(token, self._submitter_tokens) if token else None
        return None if name is None else self.submitters[name]
