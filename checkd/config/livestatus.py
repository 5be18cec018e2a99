"""`livestatus:` in central's node file: where central answers Livestatus queries
(docs/livestatus.md). Off unless configured. The unix socket's permissions are the
authentication, as with Nagios; TCP only with an allowlist of addresses or networks.

    livestatus: {socket: /run/checkd/live, mode: "0660", group: nagios,
                 tcp: {listen: "127.0.0.1:6557", allow: ["127.0.0.1/32"]}}
"""

from __future__ import annotations

import dataclasses
import grp
import ipaddress
from pathlib import Path
from typing import Any

from checkd.config import fields as f
from checkd.config.errors import Problems
from checkd.config.yamlsource import Node

KEYS = {"socket": f.text, "mode": f.raw, "group": f.text, "tcp": f.raw, "timeout": f.positive_duration,
        "max_request": f.positive_int}
TCP_KEYS = {"listen": f.text, "allow": f.names}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True)
class LivestatusConfig:
    socket: Path | None = None
    mode: int = 0o660
    group: str | None = None
    listen: tuple[str, int] | None = None           # TCP
    allow: tuple[Network, ...] = ()
    timeout: float = 10.0                           # a client silent this long mid-request is dropped
    max_request: int = 1 << 20                      # bytes of one request


def read_livestatus(value: Any, node: Node, base: Path, problems: Problems) -> LivestatusConfig | None:
    if value is None:
        return None
    if not isinstance(value, Node):
        problems.add(*node.where_of("livestatus"), 'livestatus: expected a mapping, e.g. {socket: /run/checkd/live}')
        return None
    d = f.convert(value, KEYS, problems, "livestatus")
    kw: dict[str, Any] = {k: d[k] for k in ("timeout", "max_request") if k in d}
    if "socket" in d:
        # Its directory is not checked here: /run/checkd exists only while the unit runs
        # (RuntimeDirectory=); a missing one stops central at start with one line.
        kw["socket"] = base / d["socket"]
    if "mode" in d:
        try:
            # YAML reads an unquoted 0660 as the octal number already; "0660" is a string.
            mode = d["mode"] if type(d["mode"]) is int else int(str(d["mode"]), 8)
            if not 0 <= mode <= 0o777:
                raise ValueError
            kw["mode"] = mode
        except ValueError:
            problems.add(*value.where_of("mode"), f'livestatus: mode: expected octal permissions such as "0660" '
                         f'(quoted), got {value["mode"]!r}')
    if "group" in d:
        try:
            grp.getgrnam(d["group"])
            kw["group"] = d["group"]
        except KeyError:
            problems.add(*value.where_of("group"), f"livestatus: group: no group {d['group']!r} on this machine")
    tcp = value.get("tcp")
    if tcp is not None:
        _tcp(tcp, value, kw, problems)
    if "socket" not in kw and "listen" not in kw:
        problems.add(value.file, value.line, "livestatus: give socket: (a unix socket path) and/or "
                     "tcp: {listen: HOST:PORT, allow: [...]}")
    return LivestatusConfig(**kw)


def _tcp(tcp: Any, parent: Node, kw: dict[str, Any], problems: Problems) -> None:
    if not isinstance(tcp, Node):
        problems.add(*parent.where_of("tcp"), 'livestatus: tcp: expected {listen: "127.0.0.1:6557", allow: [...]}')
        return
    d = f.convert(tcp, TCP_KEYS, problems, "livestatus: tcp")
    host, _, port = d.get("listen", "").rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        problems.add(*tcp.where_of("listen"), 'livestatus: tcp: listen: expected HOST:PORT, e.g. "127.0.0.1:6557"')
    else:
        kw["listen"] = (host.strip("[]"), int(port))
    if not d.get("allow"):
        problems.add(*tcp.where_of("allow") if "allow" in tcp else (tcp.file, tcp.line),
                     "livestatus: tcp: allow: list the addresses or networks that may connect, e.g. "
                     '["127.0.0.1/32", "10.0.0.0/8"] (Livestatus has no passwords)')
        return
    nets = []
    for item in d["allow"]:
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            problems.add(*tcp.where_of("allow"), f"livestatus: tcp: allow: {item!r} is not an address or network")
    kw["allow"] = tuple(nets)
