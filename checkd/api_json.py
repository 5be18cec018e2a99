"""JSON in and out of the daemons' HTTP APIs (central's, and a poller's operator calls):
a body parsed, or a 400 saying where it broke; errors as {"error": ...} with their status;
answers never carry a bare NaN or Infinity (not JSON: clients choke on it)."""

from __future__ import annotations

import functools
import json
from typing import Any

from aiohttp import web

try:
    # A quarter of ingest's CPU went to decoding batches: orjson does it 3x faster than json.
    # Optional, because Debian 12 has no package of it (docs/packaging.md).
    from orjson import loads as _fast_loads
except ImportError:         # pragma: no cover - the packaged build on Debian 12
    _fast_loads = json.loads


def bad_request(error: str, items: list[dict[str, Any]] | None = None, status: int = 400) -> web.HTTPException:
    body: dict[str, Any] = {"error": error}
    if items is not None:
        body["items"] = items
    if status == 413:
        return web.HTTPRequestEntityTooLarge(0, text=json.dumps(body), content_type="application/json")
    cls = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 409: web.HTTPConflict, 404: web.HTTPNotFound,
           415: web.HTTPUnsupportedMediaType, 422: web.HTTPUnprocessableEntity}[status]
    return cls(text=json.dumps(body), content_type="application/json")


def bad_input(e: ValueError) -> web.HTTPException:
    """A checkd.bounds refusal as its answer: 413 for text over its cap, else 400."""
    from checkd.bounds import TooLong
    return bad_request(str(e), status=413 if isinstance(e, TooLong) else 400)


# Every JSON answer: a NaN or Infinity that got into memory fails loudly here (a logged 500)
# instead of reaching clients as invalid JSON.
dumps = functools.partial(json.dumps, allow_nan=False)
json_response = functools.partial(web.json_response, dumps=dumps)


def parse_json(body: bytes) -> Any:
    try:
        return _fast_loads(body)
    except (ValueError, RecursionError):
        pass        # json decides what is wrong: its messages, and NaN reaches the per-item checks
    try:
        return json.loads(body)
    except UnicodeDecodeError as e:
        raise bad_request(f"body is not UTF-8: {e.reason} at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise bad_request(f"broken JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise bad_request("broken JSON: nested too deeply") from None
