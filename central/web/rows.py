"""The overview's problem rows as HTML, written in Python rather than in the
Jinja2 template: with 5,000 open problems the template loop alone took ~250 ms
of the 300 ms budget. A row changes only when its problem does, so rendered
rows are kept and reused; only the duration is filled in at every render.

Every piece of text is escaped here (html.escape, quotes included), exactly as
the autoescaping template would.
"""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup

from checkd.durations import format_duration

ICON = '<svg class="i" aria-hidden="true"><use href="#i-{}"/></svg>'
KEEP = 3                        # rows kept: this many times the open problems (or 3,000)
OUTPUT_CHARS = 300              # of the first output line in a row; the service page has all of it


def row_key(p: dict[str, Any]) -> tuple[Any, ...]:
    """Everything a row shows but its duration: the cache key, and what the ETag digests."""
    return (p["id"], p["state"], p["host"], p["service"], p["output"], p["site"], p["taken_over"], p["url"],
            p["since"], p["acknowledged"], p["ack_author"], p["ack_comment"], p["muted"], p["suppressed"],
            p["flapping"], p["handled"], p["host_url"])


def _row(p: dict[str, Any]) -> tuple[str, str]:
    """(before the duration, after it)."""
    state = p["state"]
    host = escape(p["host"])
    host_cell = f'<a href="{escape(p["host_url"])}">{host}</a>' if p["url"] else host
    if p["service"] is None:
        svc_cell = "<i>host</i>"
    elif p["url"]:
        svc_cell = f'<a href="{escape(p["url"])}">{escape(p["service"])}</a>'
    else:
        svc_cell = escape(p["service"])
    handled = []
    if p["acknowledged"]:
        handled.append(f'<span class="ackd">{ICON.format("ack")}ACK {escape(p["ack_author"] or "")}</span>')
        if p["ack_comment"]:
            handled.append(f'<small>{escape(p["ack_comment"])}</small>')
    if p["muted"]:
        handled.append(f'<span class="mutedtag">{ICON.format("muted")}muted</span>')
    if p["suppressed"]:
        handled.append("<span>host down</span>")
    if p["flapping"]:
        handled.append("<span>flapping</span>")
    out = p["output"] if len(p["output"]) <= OUTPUT_CHARS else p["output"][:OUTPUT_CHARS - 1] + "…"
    eid = p["id"]
    before = (f'<tr class="s-{state.lower()}{" handled" if p["handled"] else ""}" id="ev-{eid}">'
              f'<td class="state"><span class="badge">{ICON.format(state)}{state}</span></td>'
              f'<td class="host">{host_cell}</td><td class="svc">{svc_cell}</td>'
              f'<td class="dur"><time data-since="{p["since"]}">')
    after = (f'</time></td><td class="out">{escape(out)}</td>'
             f'<td class="site">{escape(p["site"])}{" <small>(central)</small>" if p["taken_over"] else ""}</td>'
             f'<td class="eid"><a href="/event/{eid}">#{eid}</a></td>'
             f'<td class="ack">{" ".join(handled)}</td></tr>\n')
    return before, after


class Rows:
    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], tuple[str, str]] = {}

    def render(self, problems: list[dict[str, Any]], keys: list[tuple[Any, ...]], now: float) -> Markup:
        cache, parts = self._cache, []
        for p, key in zip(problems, keys):
            row = cache.get(key)
            if row is None:
                row = cache[key] = _row(p)
            parts += (row[0], format_duration(max(0.0, now - p["since"])), row[1])
        if len(cache) > KEEP * max(len(problems), 1000):
            self._cache = {k: cache[k] for k in keys}      # forget rows of problems long gone
        return Markup("".join(parts))
