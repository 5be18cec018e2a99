"""`wassup`: open problems as a few compact lines, worst first, for a phone screen.

Shared by the Jabber bot and `checkd wassup`; both hand in the problem
objects of GET /api/v1/problems.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from checkd.durations import format_duration

# Worst first: hosts down before services, CRITICAL before UNKNOWN before WARNING.
RANK = {"DOWN": 0, "UNREACHABLE": 1, "CRITICAL": 2, "UNKNOWN": 3, "WARNING": 4}
OUTPUT_CHARS = 60
CHAT_LINES = 10


def worst_first(p: dict[str, Any]) -> tuple[int, float, int]:
    """Sort key: the worst state first, then the newest problem (the web overview shares it)."""
    return (RANK.get(p["state"], 5), -p["since"], p["id"])


def target(p: dict[str, Any]) -> str:
    return p["host"] if p["service"] is None else f"{p['host']}/{p['service']}"


def line(p: dict[str, Any], now: float, folded: int = 0) -> str:
    flags = [f for f, on in (("ACK", p["acknowledged"]), ("muted", p["muted"]), ("flapping", p["flapping"]))
             if on]
    if folded:
        flags.append(f"+{folded} service{'s' if folded > 1 else ''}")
    out = " ".join((p.get("output") or "").split())
    if len(out) > OUTPUT_CHARS:
        out = out[:OUTPUT_CHARS - 1] + "…"
    return (f"{p['state']} {target(p)} {format_duration(max(0.0, now - p['since']))} [ID#:{p['id']}]"
            f"{' ' + ' '.join(flags) if flags else ''}{': ' + out if out else ''}")


def render(problems: list[dict[str, Any]], now: float, limit: int | None = CHAT_LINES) -> str:
    """The reply: a count by state, then one line per problem. Services of a host that is
    down are folded into the host's line; beyond `limit` lines, the rest is counted."""
    if not problems:
        return "all quiet: no open problems"
    folded = Counter(p["parent_id"] for p in problems if p.get("suppressed"))
    shown = [p for p in problems if not p.get("suppressed")]
    shown.sort(key=worst_first)
    counts = Counter(p["state"] for p in shown)
    head = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda i: RANK.get(i[0], 5)))
    total = len(shown)
    lines = [f"{total} problem{'s' if total != 1 else ''} ({head}), worst first:"]
    for p in shown[:limit]:
        lines.append(line(p, now, folded.get(p["id"], 0)))
    if limit is not None and total > limit:
        lines.append(f"… and {total - limit} more (`wassup all` lists every one)")
    return "\n".join(lines)
