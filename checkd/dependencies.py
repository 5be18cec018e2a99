"""Whether a check's dependencies fail now (Nagios' check_service_dependencies): the
notification stages ask over the engine's store (checkd/engine/notify/stages.py), the
scheduler over its own check states before a timer runs a check. Which dependencies
exist is the configuration's business (checkd/config/dependencies.py).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from checkd.config.model import Dependency, Objects
from checkd.result import CheckKey
from checkd.states import state_name
from checkd.timeperiods import active_at


class DependencyKind(enum.Enum):
    NOTIFICATION = "notification"       # the dependent's problems are not told
    EXECUTION = "execution"             # the dependent's scheduled checks do not run


@dataclasses.dataclass(frozen=True, slots=True)
class Seen:
    """A master's latest result as one node knows it."""

    status: int
    hard: bool


StateOf = Callable[[CheckKey], "Seen | None"]   # None: never checked (pending)


def state_word(objs: Objects, key: CheckKey, state_of: StateOf) -> str:
    """The master's state as failure criteria name it ("critical", "down", "pending").
    A SOFT problem counts as the OK before it: as in Nagios without soft_state_dependencies,
    a dependency fails on HARD states only (stages.py waits for a settling master instead)."""
    host, service = key
    if service is None and objs.hosts[host].check is None:
        return "up"                     # a host without a check is UP
    seen = state_of(key)
    if seen is None:
        return "pending"
    return state_name(service, seen.status if seen.hard else 0).lower()


def failing(objs: Objects, key: CheckKey, kind: DependencyKind, state_of: StateOf, now: float,
            site: str | None = None) -> Dependency | None:
    """The first dependency of `key` that fails now: its master in one of its failure states
    for `kind`, or, with inherits_parent, one of the master's own dependencies failing.
    A dependency outside its period does not count. `site`: the one site whose states this
    node knows (a poller); dependencies on other sites' checks are passed over (None: all)."""
    return _failing(objs, key, kind, state_of, now, site, frozenset())


def _failing(objs: Objects, key: CheckKey, kind: DependencyKind, state_of: StateOf, now: float, site: str | None,
             walked: frozenset[CheckKey]) -> Dependency | None:
    for dep in objs.dependencies.get(key, ()):
        if not _applies(objs, dep, now, site):
            continue
        states = dep.notification_failure if kind is DependencyKind.NOTIFICATION else dep.execution_failure
        if state_word(objs, dep.master, state_of) in states:
            return dep
        # `walked`: the configuration refuses cycles; a reload racing a check must not loop either.
        if dep.inherits_parent and dep.master not in walked and \
                _failing(objs, dep.master, kind, state_of, now, site, walked | {key}) is not None:
            return dep
    return None


def settling(objs: Objects, key: CheckKey, state_of: StateOf, now: float,
             site: str | None = None) -> Dependency | None:
    """A dependency whose master is failing SOFT in one of its notification failure states:
    its problem may be about to turn HARD and hold this one."""
    for dep in objs.dependencies.get(key, ()):
        if not _applies(objs, dep, now, site):
            continue
        seen = state_of(dep.master)
        if seen is not None and not seen.hard and seen.status != 0 and \
                state_name(dep.master[1], seen.status).lower() in dep.notification_failure:
            return dep
    return None


def _applies(objs: Objects, dep: Dependency, now: float, site: str | None) -> bool:
    master = objs.hosts.get(dep.master[0])
    if master is None or (site is not None and master.site != site):
        return False
    return active_at(dep.period, now, objs.timeperiods)
