"""From a configured host or service to the exact thing to run: macros expanded.

Expansion happens per run (not at load) because run-time macros like
$SERVICESTATE$ and $TIMET$ change; everything else about the command is fixed.
Checks and event handlers (checkd.event_handlers) are prepared the same way.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

from checkd.config.macros import RUNTIME, expand
from checkd.config.model import CheckSpec, CommandKind, Host, Objects, Service, SSHSettings
from checkd.run.exec import command_argv
from checkd.states import StateType, state_name

# Nagios' illegal_macro_output_chars (its sample nagios.cfg): taken out of output macros, so
# plugin output in single quotes in a command line run by /bin/sh cannot end the quoting.
_UNSAFE_OUTPUT = str.maketrans("", "", "`~$&|'\"<>")


@dataclasses.dataclass(frozen=True, slots=True)
class PreparedCheck:
    kind: CommandKind
    timeout: float
    argv: tuple[str, ...] = ()          # exec
    line: str = ""                      # exec and ssh: the expanded command line
    plugin: str = ""                    # embedded
    args: tuple[str, ...] = ()          # embedded
    address: str = ""                   # ssh
    ssh: SSHSettings | None = None      # ssh


def macro_values(objs: Objects, host: Host, service: Service | None, args: tuple[str, ...],
                 runtime: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every macro a command of `host`/`service` may use, with its value now."""
    values = dict(objs.macros)
    values.update(HOSTNAME=host.name, HOSTADDRESS=host.address, HOSTALIAS=host.alias or host.name,
                  HOSTDISPLAYNAME=host.alias or host.name, SITE=host.site, HOSTNOTES=host.notes,
                  HOSTNOTESURL=host.runbook, TIMET=str(int(time.time())))
    values.update({f"_HOST{k.upper()}": v for k, v in host.vars.items()})
    if service is not None:
        values.update(SERVICEDESC=service.description, SERVICEDISPLAYNAME=service.description,
                      SERVICENOTES=service.notes, SERVICENOTESURL=service.runbook)
        values.update({f"_SERVICE{k.upper()}": v for k, v in service.vars.items()})
    # $ARGn$ may itself contain $USER1$-style macros (Nagios expands them there too).
    values.update({f"ARG{i}": expand(a, values) for i, a in enumerate(args, start=1)})
    values.update(runtime or {})
    return values


def is_static(objs: Objects, host: Host, service: Service | None) -> bool:
    """True when the check's command line is the same on every run (no run-time macros),
    so the scheduler may prepare it once."""
    spec = service.check if service is not None else host.check
    if spec is None:
        return False
    text = " ".join([spec.command.line, *spec.command.args, *spec.args])
    return not any(f"${name}$" in text for name in (*RUNTIME, "TIMET"))


def state_macros(kind: str, status: int, state_type: StateType, attempt: int, max_attempts: int,
                 output: str = "", last_check: float = 0.0, long_output: str = "",
                 perfdata: str = "") -> dict[str, str]:
    """$SERVICESTATE$, $SERVICESTATETYPE$, $SERVICEATTEMPT$, $SERVICEOUTPUT$, ... of one state
    (`kind` "SERVICE"), or the $HOST...$ ones (`kind` "HOST")."""
    return {f"{kind}STATE": state_name(None if kind == "HOST" else kind, status),
            f"{kind}STATEID": str(status), f"{kind}STATETYPE": state_type.value, f"{kind}ATTEMPT": str(attempt),
            f"MAX{kind}ATTEMPTS": str(max_attempts), f"LAST{kind}CHECK": str(int(last_check)),
            f"{kind}OUTPUT": output.translate(_UNSAFE_OUTPUT),
            f"LONG{kind}OUTPUT": long_output.translate(_UNSAFE_OUTPUT),
            f"{kind}PERFDATA": perfdata.translate(_UNSAFE_OUTPUT)}


def prepare(objs: Objects, host: Host, service: Service | None, default_ssh: SSHSettings,
            runtime: Mapping[str, str] | None = None) -> PreparedCheck:
    """The check of `service` (or of `host` when service is None), ready to run."""
    spec = service.check if service is not None else host.check
    if spec is None:
        raise ValueError(f"host {host.name} has no check command")
    return prepare_call(objs, host, service, spec, (service or host).schedule.timeout, default_ssh, runtime)


def prepare_call(objs: Objects, host: Host, service: Service | None, spec: CheckSpec, timeout: float,
                 default_ssh: SSHSettings, runtime: Mapping[str, str] | None = None) -> PreparedCheck:
    """A command call of `host`/`service` (its check, or an event handler) with its macros
    expanded, ready to run within `timeout`."""
    cmd = spec.command
    # A command's own timeout caps the object's: the shorter one wins.
    timeout = min(timeout, cmd.timeout) if cmd.timeout else timeout
    values = macro_values(objs, host, service, spec.args, runtime)
    if cmd.kind is CommandKind.EMBEDDED:
        return PreparedCheck(cmd.kind, timeout, plugin=cmd.plugin, args=tuple(expand(a, values) for a in cmd.args))
    line = expand(cmd.line, values)
    if cmd.kind is CommandKind.SSH:
        return PreparedCheck(cmd.kind, timeout, line=line, address=host.address, ssh=host.ssh or default_ssh)
    return PreparedCheck(cmd.kind, timeout, argv=tuple(command_argv(line)), line=line)
