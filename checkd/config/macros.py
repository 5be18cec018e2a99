"""Nagios macros in command lines: $HOSTADDRESS$, $ARG1$, $USER1$, $_HOSTVAR$ ...

Expansion happens once per check when its command is resolved; the same
table tells check-config which macros exist, so a typo is caught at load.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

MACRO_RE = re.compile(r"\$([A-Za-z0-9_]*)\$")

# Macros known at scheduling time. Nagios has many more (state history, ...);
# those that depend on run-time state are listed so configs using them load.
STATIC = {"HOSTNAME", "HOSTADDRESS", "HOSTALIAS", "HOSTDISPLAYNAME", "SERVICEDESC",
          "SERVICEDISPLAYNAME", "SITE", "PLUGINDIR", "CHECKD_PLUGINDIR", "TIMET",
          "HOSTNOTES", "SERVICENOTES", "HOSTNOTESURL", "SERVICENOTESURL"}
# The state macros (checkd.run.prepare.state_macros) are filled for checks (the state before
# the run) and for event handlers (the state the result brought).
RUNTIME = {"HOSTSTATE", "HOSTSTATEID", "SERVICESTATE", "SERVICESTATEID", "HOSTOUTPUT",
           "SERVICEOUTPUT", "LASTSERVICECHECK", "LASTHOSTCHECK", "SERVICEATTEMPT", "HOSTATTEMPT",
           "HOSTSTATETYPE", "SERVICESTATETYPE", "LONGHOSTOUTPUT", "LONGSERVICEOUTPUT",
           "HOSTPERFDATA", "SERVICEPERFDATA", "MAXHOSTATTEMPTS", "MAXSERVICEATTEMPTS"}


def unknown_macros(line: str, user_macros: Mapping[str, str]) -> list[str]:
    """Macro names in `line` that can never expand (for check-config)."""
    bad = []
    for name in MACRO_RE.findall(line):
        if (name == "" or name in STATIC or name in RUNTIME or name in user_macros
                or re.fullmatch(r"ARG\d+", name) or name.startswith(("_HOST", "_SERVICE", "_CONTACT"))):
            continue
        bad.append(name)
    return bad


def expand(line: str, values: Mapping[str, str]) -> str:
    """Replace every $NAME$ with its value; unknown ones become empty, `$$` is `$`.

    Single pass, so a value containing `$ARG1$` is never expanded again
    (plugin output and args can't inject macros).
    """
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        return "$" if name == "" else values.get(name, "")
    return MACRO_RE.sub(sub, line)


@functools.lru_cache(maxsize=4096)
def split_call(call: str) -> tuple[str, tuple[str, ...]]:
    """`check_tcp!3306!-w 1` -> ("check_tcp", ("3306", "-w 1")); `\\!` is a literal `!`.
    Remembered: a big config calls the same few commands on every host."""
    parts = re.split(r"(?<!\\)!", call)
    return parts[0].strip(), tuple(p.replace("\\!", "!") for p in parts[1:])
