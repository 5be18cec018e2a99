"""`POST /api/v1/decisions`: what central decided about a poller's site, for the
poller's own alerting (checkd/engine/decisions.py). The poller asks every heartbeat
interval with the version it holds; the answer is the whole document when it differs,
else only the version (a few bytes: most asks change nothing)."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from central import validate
from checkd.api_json import json_response
from checkd.engine import decisions

if TYPE_CHECKING:
    from central.live import Live
    from checkd.config.model import Objects
    from checkd.engine.store import Store


class DecisionsApi:
    def __init__(self, live: Live, store: Store, told: Mapping[int, Collection[str]]):
        self.live, self.store, self.told = live, store, told
        self._hosts: tuple[Objects | None, dict[str, frozenset[str]]] = (None, {})

    def hosts_of(self, site: str) -> frozenset[str]:
        """The site's hosts, worked out once per configuration (a reload swaps the objects)."""
        objs = self.live.objs
        known, by_site = self._hosts
        if known is not objs:
            by_site = {}
            self._hosts = (objs, by_site)
        hosts = by_site.get(site)
        if hosts is None:
            hosts = by_site[site] = frozenset(h.name for h in objs.hosts_of_site(site))
        return hosts

    async def decisions(self, request: web.Request) -> web.Response:
        auth = self.live.auth.poller(request)
        body = await request.read()
        doc = validate.parse_json(body) if body.strip() else {}
        known = doc.get("known") if type(doc) is dict else None
        if known is not None and type(known) is not int:
            raise validate.bad_request("known: expected the integer version the poller holds")
        answer = decisions.for_site(self.store, self.told, self.hosts_of(auth.site), time.time())
        if answer["version"] == known:
            return json_response({"version": known, "unchanged": True})
        return json_response(answer)
