"""The timing rule between a poller's reconnect and central's judgement of silence.

A poller heartbeats every `heartbeat_interval`, also while its deliveries back off, so it is
heard within `reconnect_bound` of central answering. Central calls a site stale after
`site_stale_after` of silence, and not at all within `start_grace` of its own start. Both
numbers must exceed the bound, or a restart of central takes over a site that is merely
reconnecting. check-config warns where they don't (docs/failover.md, "Timing").
"""

from __future__ import annotations

from checkd.config.model import Objects
from checkd.config.node import NodeConfig

DEFAULT_HEARTBEAT = NodeConfig.heartbeat_interval
DEFAULT_STALE_AFTER = 30.0      # 3 x the pollers' default 5 s heartbeat, + 15 s
# Every live poller is heard by then: within reconnect_bound (10 s at the default heartbeat),
# and within 30 s for a poller of an older checkd that only retries at its backoff cap.
DEFAULT_START_GRACE = 30.0


def connect_timeout(heartbeat_interval: float) -> float:
    """How long a poller's connect to central may take before it counts as failed."""
    return max(1.0, heartbeat_interval)


ANSWER_TIMEOUT = 30.0           # seconds a poller waits for central's answer to one post
ANSWER_TIMEOUT_PAIR = 10.0      # ... when it knows two centrals: a stalled one (a frozen VM that
                                # still accepts connections) must not hold its results for long


def answer_timeout(centrals: int) -> float:
    return ANSWER_TIMEOUT_PAIR if centrals > 1 else ANSWER_TIMEOUT


def reconnect_bound(heartbeat_interval: float) -> float:
    """The longest a poller takes to be heard by a central that has just begun to answer:
    one heartbeat interval until its next probe, plus that probe's connect timeout."""
    return heartbeat_interval + connect_timeout(heartbeat_interval)


def warnings(node: NodeConfig, objs: Objects) -> list[str]:
    """Where this node's settings break the rule, each naming the setting and the fix."""
    if node.role == "poller":
        return _poller(node, objs)
    return _central(node, objs)


def _poller(node: NodeConfig, objs: Objects) -> list[str]:
    bound = reconnect_bound(node.heartbeat_interval)
    site = objs.sites.get(node.site)
    if site is not None and site.stale_after:
        stale, where = site.stale_after, f"site {node.site}'s stale_after ({site.where})"
    else:
        stale, where = DEFAULT_STALE_AFTER, "central's default freshness.site_stale_after, unless set there"
    if bound < stale:
        return []
    return [f"{node.where('heartbeat_interval')}: warning: heartbeat_interval {node.heartbeat_interval:g}s: after "
            f"an outage this poller can take {bound:g}s to be heard by central, not less than the "
            f"{stale:g}s of {where}: central would take site {node.site} over while the poller reconnects. "
            f"Lower heartbeat_interval below {_max_heartbeat(stale):g}s or raise the site's stale_after."]


def _central(node: NodeConfig, objs: Objects) -> list[str]:
    bound = reconnect_bound(DEFAULT_HEARTBEAT)
    fresh = node.section("freshness")
    out = []
    default_stale = float(fresh.get("site_stale_after", DEFAULT_STALE_AFTER))
    sites = sorted({h.site for h in objs.hosts.values()} - {"central"})
    for name in sites:
        site = objs.sites.get(name)
        stale = site.stale_after if site is not None and site.stale_after else default_stale
        if stale > bound:
            continue
        where = site.where if site is not None and site.stale_after else node.where("freshness.site_stale_after")
        out.append(f"{where}: warning: site {name} is stale after {stale:g}s, but a poller with the default "
                   f"heartbeat_interval ({DEFAULT_HEARTBEAT:g}s) can take {bound:g}s to be heard again after an "
                   f"outage: central would take the site over while its poller reconnects. Raise stale_after "
                   f"above {bound:g}s (or lower the pollers' heartbeat_interval and keep it above their bound).")
    grace = float(fresh.get("start_grace", DEFAULT_START_GRACE))
    if grace < bound and sites:
        out.append(f"{node.where('freshness.start_grace')}: warning: start_grace {grace:g}s: after a restart "
                   f"central may judge a site stale before its poller has reconnected (up to {bound:g}s at the "
                   f"default heartbeat_interval of {DEFAULT_HEARTBEAT:g}s), and tell a problem the poller told "
                   f"already. Set start_grace to at least {bound:g}s (default {DEFAULT_START_GRACE:g}s).")
    return out


def _max_heartbeat(stale: float) -> float:
    """The heartbeat_interval whose reconnect bound reaches `stale` (stay below it)."""
    return stale / 2 if stale >= 2.0 else max(0.0, stale - 1.0)
