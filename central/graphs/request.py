"""What a graph request may ask for, checked before anything touches a file:
the time range (named periods 4h/day/week/month/year, or start/end as Unix times,
`now`, `-1d`, `now-4h`), the image size, the deployments drawn, and the metric.
Anything absurd is a 400 with the reason; unknown hosts, services and metrics are
404s (api.py).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping

from checkd.durations import parse_duration

PERIODS = {"4h": 4 * 3600, "day": 86400, "week": 7 * 86400, "month": 31 * 86400, "year": 365 * 86400}
DEFAULT_RANGE = 86400
MIN_RANGE = 60
MAX_RANGE = 5 * 365 * 86400
FUTURE = 86400                  # an end this far after now is a mistake
WIDTH = (100, 3000)
HEIGHT = (50, 1500)
DEFAULT_SIZE = (800, 250)


class BadRequest(ValueError):
    """The reason a request cannot be answered, for the 400's body."""


class DeployScope(enum.Enum):
    """`?deploys=`: which deployments a graph draws as vertical lines."""

    ALL = "all"                 # every one in the window, the graph's own host's set apart
    HOST = "host"               # only those that touched the graph's host
    NONE = "none"


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    start: int
    end: int
    width: int
    height: int
    deploys: DeployScope = DeployScope.ALL


def parse_time(text: str, now: float, what: str) -> float:
    t = text.strip()
    if t == "now":
        return now
    try:
        value = float(t)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise BadRequest(f"{what}: not a time: {text!r}")
        return now + value if t.startswith("-") else value     # -86400: seconds before now
    rel = t[3:] if t.startswith("now") else t
    if rel.startswith("-"):
        try:
            return now - parse_duration(rel[1:])
        except ValueError:
            pass
    raise BadRequest(f"{what}: expected a Unix time, now, -DURATION or now-DURATION (e.g. -1d), got {text!r}")


def _size(query: Mapping[str, str], key: str, limits: tuple[int, int], default: int) -> int:
    if key not in query:
        return default
    try:
        value = int(query[key])
    except ValueError:
        raise BadRequest(f"{key}: expected a whole number of pixels, got {query[key]!r}") from None
    if not limits[0] <= value <= limits[1]:
        raise BadRequest(f"{key}: {value} is outside {limits[0]}-{limits[1]}")
    return value


def _scope(query: Mapping[str, str]) -> DeployScope:
    text = query.get("deploys", DeployScope.ALL.value)
    try:
        return DeployScope(text)
    except ValueError:
        raise BadRequest(f"deploys: one of {', '.join(s.value for s in DeployScope)}, got {text!r}") from None


def window(query: Mapping[str, str], now: float, size: tuple[int, int] = DEFAULT_SIZE) -> Window:
    """The checked range, size and deployments of `?period=&start=&end=&width=&height=&deploys=`."""
    end = parse_time(query["end"], now, "end") if "end" in query else now
    if "period" in query:
        if "start" in query:
            raise BadRequest("give period or start, not both")
        span = PERIODS.get(query["period"])
        if span is None:
            raise BadRequest(f"period: one of {', '.join(PERIODS)}, got {query['period']!r}")
        start = end - span
    else:
        start = parse_time(query["start"], now, "start") if "start" in query else end - DEFAULT_RANGE
    if end > now + FUTURE:
        raise BadRequest("end: more than a day in the future")
    if end - start < MIN_RANGE:
        raise BadRequest(f"the range must be at least {MIN_RANGE}s (start before end)")
    if end - start > MAX_RANGE:
        raise BadRequest(f"the range must be at most {MAX_RANGE // 86400} days")
    if start < 0:
        raise BadRequest("start: before 1970")
    return Window(int(start), int(end), _size(query, "width", WIDTH, size[0]), _size(query, "height", HEIGHT, size[1]),
                  _scope(query))
