"""JSON in and out of the daemons' HTTP APIs (central's, and a poller's operator calls):
a body parsed, or a 400 saying where it broke; errors as {"error": ...} with their status."""

from __future__ import annotations

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
    cls = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 409: web.HTTPConflict, 404: web.HTTPNotFound,
           415: web.HTTPUnsupportedMediaType, 422: web.HTTPUnprocessableEntity}[status]
    return cls(text=json.dumps(body), content_type="application/json")


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
