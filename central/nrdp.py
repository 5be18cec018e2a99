"""POST /nrdp/: NRDP's submission protocol (send_nrdp.sh/.py/.php, `checkd submit`): form fields
`token`, `cmd=submitcheck` and XMLDATA or JSONDATA in, NRDP's result document out (XML, or JSON
for JSON data). Refusals are HTTP 200 with status -1 as in NRDP: its clients read the message,
and send_nrdp.sh's `curl -f` would hide it behind "could not connect" (docs/passive.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from aiohttp import web

from central.nrdp_data import Bad, parse_json, parse_xml
from central.passive import Refused
from checkd import __version__
from checkd.auth_limit import FAILED

if TYPE_CHECKING:
    from central.live import Live
    from central.passive import Passive

log = logging.getLogger(__name__)

XML_FIELDS, JSON_FIELDS = ("xml", "xmldata", "XMLDATA"), ("json", "jsondata", "JSONDATA")   # NRDP's order: first wins


def _xml(doc: Mapping[str, Any], depth: int = 0) -> str:
    """NRDP's layout (generate_xml_from_arr): four spaces a level, one element a line."""
    pad = " " * (4 * depth)
    out = []
    for key, value in doc.items():
        if isinstance(value, Mapping):
            out.append(f"{pad}<{key}>\n{_xml(value, depth + 1)}{pad}</{key}>\n")
        else:
            out.append(f"{pad}<{key}>{escape(str(value), {chr(34): '&quot;', chr(39): '&apos;'})}</{key}>\n")
    return "".join(out)


def answer(doc: Mapping[str, Any], as_json: bool, status: int = 200) -> web.Response:
    if as_json:
        return web.Response(text=json.dumps(doc, separators=(",", ":")), status=status,
                            content_type="application/json")
    return web.Response(text='<?xml version="1.0" encoding="utf-8"?>\n' + _xml(doc), status=status,
                        content_type="text/xml", charset="utf-8")


def error(message: str, as_json: bool, information: str = "", status: int = 200) -> web.Response:
    result: dict[str, Any] = {"status": -1, "message": message}
    if information:
        result["information"] = information
    return answer({"result": result}, as_json, status)


def _first(form: Mapping[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return ""


class Nrdp:
    def __init__(self, live: Live, passive: Passive):
        self.live, self.passive = live, passive

    async def _form(self, request: web.Request) -> dict[str, Any]:
        """The query string, then the body's fields over it (PHP's $_GET, then $_POST)."""
        form: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            form.update(await request.post())
        return form

    async def handle(self, request: web.Request) -> web.Response:
        try:
            form = await self._form(request)
        except web.HTTPRequestEntityTooLarge:
            log.warning("nrdp: a request from %s over max_body (%d bytes) refused", request.remote,
                        self.live.node.max_body)
            return error("REQUEST TOO LARGE", False, f"the body is over central's max_body "
                                                     f"({self.live.node.max_body} bytes); send fewer results at once",
                         status=413)
        except ValueError as e:         # a broken multipart body
            return error("NO DATA", False, f"the form cannot be read: {e}")
        xml, data = _first(form, XML_FIELDS), _first(form, JSON_FIELDS)
        as_json = not xml and bool(data)
        cmd = str(form.get("cmd", "")).strip().lower()
        if cmd == "hello":
            return answer({"response": {"status": 0, "message": "OK", "product": "checkd", "version": __version__}},
                          as_json)
        token = str(form.get("token", "")).strip()
        if not token:
            return error("NO TOKEN", as_json)
        if not self.live.node.submitters:
            return error("NO TOKENS", as_json, "central has no submitters: configured (docs/passive.md)")
        sub = self.live.auth.submitter(token)
        if sub is None:
            request[FAILED] = True          # counted and logged per client by checkd/auth_limit.py
            return error("BAD TOKEN", as_json)
        if cmd == "submitcmd":
            return error("COMMANDS DISABLED", as_json, "checkd takes check results only")
        if cmd != "submitcheck" or request.method != "POST":
            return error("NO COMMAND", as_json, "POST cmd=submitcheck with XMLDATA or JSONDATA")
        if not xml and not data:
            return error("NO DATA", as_json, "give the check results in XMLDATA or JSONDATA")
        try:
            items = parse_xml(xml) if xml else parse_json(data)
            stored = await self.passive.submit(sub, items)
        except (Bad, Refused) as e:
            if isinstance(e, Bad):
                log.warning("nrdp: submitter %s sent data that cannot be read (%s): %s", sub.name, e.message,
                            e.information)
            return error(e.message, as_json, e.information)
        return answer({"result": {"status": 0, "message": "OK", "meta": {"output": f"{stored} checks processed"}}},
                      as_json)
