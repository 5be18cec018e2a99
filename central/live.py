"""The configuration in force: node file, objects and tokens, swapped whole by a
reload. Parts keep the one Live object and read it at each use, so none holds a
configuration a SIGHUP has replaced (central/app.py reload())."""

from __future__ import annotations

import dataclasses

from central.auth import Auth
from checkd.config.model import Objects
from checkd.config.node import NodeConfig


@dataclasses.dataclass(slots=True)
class Live:
    node: NodeConfig
    objs: Objects
    auth: Auth

    @classmethod
    def of(cls, node: NodeConfig, objs: Objects) -> Live:
        return cls(node, objs, auth_of(node))

    def replace(self, node: NodeConfig, objs: Objects) -> None:
        """A reload: all three at once, between two requests (one event loop)."""
        self.node, self.objs, self.auth = node, objs, auth_of(node)


def auth_of(node: NodeConfig) -> Auth:
    return Auth(node.pollers, node.api_tokens, node.deploy_tokens, node.submitters)
