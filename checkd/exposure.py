"""What a node file exposes and to whom: short tokens, a listener beyond loopback without
TLS, pages and reads served to anyone who reaches the port. Warnings, not errors (a lab
may mean it); `checkd check-config` prints them and the daemons log them at start
(docs/security.md, "Before central leaves loopback").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from checkd.config.node import NodeConfig

MIN_TOKEN = 16          # characters; `openssl rand -hex 16` gives 32


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False            # a name, 0.0.0.0, ::: reachable from elsewhere


def _tokens(node: NodeConfig) -> Iterator[tuple[str, str]]:
    for key in ("api_tokens", "deploy_tokens", "read_tokens"):
        for name, token in getattr(node, key).items():
            yield f"{key}: {name}", token
    for p in node.pollers.values():
        yield f"pollers: {p.name}", p.token
    for s in node.submitters.values():
        yield f"submitters: {s.name}", s.token
    if node.role == "poller" and node.token:
        yield "token", node.token


def warnings(node: NodeConfig) -> list[str]:
    """Each names the setting and the fix."""
    out = [f"{node.file}: warning: {what}: the token has {len(token)} characters; a guessable token is the "
           f"whole of checkd's access control: use {MIN_TOKEN} or more random ones (`openssl rand -hex 16`)"
           for what, token in _tokens(node) if len(token) < MIN_TOKEN]
    if node.role == "central":
        host, port = node.listen
        if not loopback(host):
            if not node.section("tls").get("cert"):
                out.append(f"{node.file}: warning: listen: {host}:{port} is reachable beyond this machine without "
                           "TLS: tokens, session cookies and acks cross the network in clear; add `tls: {cert: ..., "
                           "key: ...}` or listen on 127.0.0.1 behind a TLS proxy")
            if node.section("web").get("read", "open") == "open":
                out.append(f"{node.file}: warning: listen: {host}:{port} serves the pages, the read API and "
                           "/metrics to anyone who reaches it (web: read: open); set `web: {read: login}` and "
                           "give readers read_tokens:, or keep the port on a trusted network")
    elif node.status_listen and node.api_tokens and not loopback(node.status_listen.rpartition(":")[0]):
        out.append(f"{node.file}: warning: status_listen: {node.status_listen} takes operator calls (api_tokens) "
                   "beyond this machine without TLS: the tokens cross the network in clear; listen on 127.0.0.1 "
                   "and reach it over SSH, or put a TLS proxy in front")
    return out
