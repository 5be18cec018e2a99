"""`COMMAND [ts] NAME;args`: the Nagios external commands operators use, each done by
central/operations.py like the same action from the API (stored, in the problem's
history, told to the pollers). The author is the command's author field, else the
AuthUser, else "livestatus"; recorded as that name alone, as the API and chat record theirs,
so a search by author finds an operator's actions whichever way they came."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from checkd.actions import OpError
from central.livestatus.lql import CommandLine, LqlError
from central.operations import Operations

log = logging.getLogger(__name__)
Handler = Callable[[Operations, list[str], str], Awaitable[str]]


def _int(value: str, what: str) -> int:
    try:
        return int(float(value))
    except (ValueError, OverflowError):     # "inf" too
        raise LqlError(400, f"{what}: expected a number, got {value!r}") from None


def _target(ops: Operations, host: str, service: str | None) -> tuple[str, str | None]:
    try:
        return ops.target(host, service)
    except OpError as e:
        raise LqlError(404, str(e)) from None


async def _ack(ops: Operations, args: list[str], who: str, service: bool, expire: bool = False) -> str:
    host, svc = _target(ops, args[0], args[1] if service else None)
    rest = args[2:] if service else args[1:]
    sticky = rest[0].strip() == "2"                 # Nagios: 2 sticky, 0 or 1 until the state changes
    expires = float(_int(rest[3], "end_time")) if expire else None
    ev = ops.engine.store.open_event((host, svc))
    if ev is None:
        raise LqlError(400, f"{host}{'/' + svc if svc else ''} has no problem to acknowledge")
    await ops.ack(ev.id, _author(rest[-2], who), rest[-1], sticky, expires)
    return f"event {ev.id} acknowledged"


async def _unack(ops: Operations, args: list[str], who: str, service: bool) -> str:
    host, svc = _target(ops, args[0], args[1] if service else None)
    ev = ops.engine.store.open_event((host, svc))
    if ev is None or not ev.acknowledged:
        raise LqlError(400, f"{host}{'/' + svc if svc else ''} has no acknowledged problem")
    await ops.unack(ev.id, _author("", who))
    return f"event {ev.id} no longer acknowledged"


async def _downtime(ops: Operations, args: list[str], who: str, service: bool) -> str:
    host, svc = _target(ops, args[0], args[1] if service else None)
    start, end, fixed, _trigger, duration, author, comment = (args[2:] if service else args[1:])[:7]
    flexible = fixed.strip() == "0"
    dt = await ops.add_downtime(host, svc, float(_int(start, "start_time")), float(_int(end, "end_time")),
                                _author(author, who), comment, flexible,
                                float(_int(duration, "duration")) if flexible else 0.0)
    return f"downtime {dt.id}"


async def _del_downtime(ops: Operations, args: list[str], who: str, service: bool) -> str:
    did = _int(args[0], "downtime_id")
    dt = ops.engine.store.downtimes.get(did)
    if dt is None or (dt.service is not None) != service:
        raise LqlError(404, f"no {'service' if service else 'host'} downtime {did}")
    await ops.delete_downtime(did, _author("", who))
    return f"downtime {did} deleted"


async def _check(ops: Operations, args: list[str], who: str, service: bool) -> str:
    host, svc = _target(ops, args[0], args[1] if service else None)
    owners = await ops.reschedule(host, svc, _author("", who))
    return f"check requested from {', '.join(owners)}"


async def _notifications(ops: Operations, args: list[str], who: str, service: bool, enabled: bool) -> str:
    host, svc = _target(ops, args[0], args[1] if service else None)
    await ops.set_notifications(host, svc, enabled, None, _author("", who))
    return f"notifications {'enabled' if enabled else 'disabled'}"


async def _comment(ops: Operations, args: list[str], who: str, service: bool) -> str:
    host, svc = _target(ops, args[0], args[1] if service else None)
    rest = args[2:] if service else args[1:]
    await ops.add_comment(host, svc, _author(rest[1], who), rest[2])
    return "comment added"


def _author(given: str, who: str) -> str:
    return given.strip() or who


# name -> (handler, arguments of a host's / a service's form)
COMMANDS: dict[str, tuple[Handler, int]] = {
    "ACKNOWLEDGE_SVC_PROBLEM": (lambda o, a, w: _ack(o, a, w, True), 7),
    "ACKNOWLEDGE_HOST_PROBLEM": (lambda o, a, w: _ack(o, a, w, False), 6),
    "ACKNOWLEDGE_SVC_PROBLEM_EXPIRE": (lambda o, a, w: _ack(o, a, w, True, expire=True), 8),
    "ACKNOWLEDGE_HOST_PROBLEM_EXPIRE": (lambda o, a, w: _ack(o, a, w, False, expire=True), 7),
    "REMOVE_SVC_ACKNOWLEDGEMENT": (lambda o, a, w: _unack(o, a, w, True), 2),
    "REMOVE_HOST_ACKNOWLEDGEMENT": (lambda o, a, w: _unack(o, a, w, False), 1),
    "SCHEDULE_SVC_DOWNTIME": (lambda o, a, w: _downtime(o, a, w, True), 9),
    "SCHEDULE_HOST_DOWNTIME": (lambda o, a, w: _downtime(o, a, w, False), 8),
    "SCHEDULE_HOST_SVC_DOWNTIME": (lambda o, a, w: _downtime(o, a, w, False), 8),     # a host's covers them
    "DEL_SVC_DOWNTIME": (lambda o, a, w: _del_downtime(o, a, w, True), 1),
    "DEL_HOST_DOWNTIME": (lambda o, a, w: _del_downtime(o, a, w, False), 1),
    "SCHEDULE_FORCED_SVC_CHECK": (lambda o, a, w: _check(o, a, w, True), 3),
    "SCHEDULE_SVC_CHECK": (lambda o, a, w: _check(o, a, w, True), 3),
    "SCHEDULE_FORCED_HOST_CHECK": (lambda o, a, w: _check(o, a, w, False), 2),
    "SCHEDULE_HOST_CHECK": (lambda o, a, w: _check(o, a, w, False), 2),
    "DISABLE_SVC_NOTIFICATIONS": (lambda o, a, w: _notifications(o, a, w, True, False), 2),
    "ENABLE_SVC_NOTIFICATIONS": (lambda o, a, w: _notifications(o, a, w, True, True), 2),
    "DISABLE_HOST_NOTIFICATIONS": (lambda o, a, w: _notifications(o, a, w, False, False), 1),
    "ENABLE_HOST_NOTIFICATIONS": (lambda o, a, w: _notifications(o, a, w, False, True), 1),
    "DISABLE_HOST_SVC_NOTIFICATIONS": (lambda o, a, w: _notifications(o, a, w, False, False), 1),
    "ENABLE_HOST_SVC_NOTIFICATIONS": (lambda o, a, w: _notifications(o, a, w, False, True), 1),
    "ADD_SVC_COMMENT": (lambda o, a, w: _comment(o, a, w, True), 5),
    "ADD_HOST_COMMENT": (lambda o, a, w: _comment(o, a, w, False), 4),
}


async def run(ops: Operations, cmd: CommandLine, peer: str) -> str:
    """Do the command; what was done (for the log). LqlError when it cannot be done."""
    found = COMMANDS.get(cmd.name)
    if found is None:
        raise LqlError(400, f"command {cmd.name} is not supported; supported: {', '.join(sorted(COMMANDS))}")
    handler, nargs = found
    args = cmd.args
    if len(args) > nargs and (cmd.name.startswith(("ACKNOWLEDGE", "ADD_")) or cmd.name.endswith("_DOWNTIME")):
        args = args[:nargs - 1] + [";".join(args[nargs - 1:])]      # a comment may hold a ';'
    if len(args) != nargs:
        raise LqlError(400, f"{cmd.name} takes {nargs} arguments separated by ';', got {len(cmd.args)}")
    who = cmd.auth_user or "livestatus"
    try:
        done = await handler(ops, args, who)
    except OpError as e:
        raise LqlError(e.status if e.status in (400, 404) else 400, str(e)) from None
    log.info("livestatus: %s from %s: %s", cmd.text[:300], peer, done)
    return done
