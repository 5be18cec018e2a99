#!/usr/bin/env python3
"""check_procs: count processes, read from /proc, against thresholds.

Mirrors monitoring-plugins' check_procs: `-w`/`-c` Nagios ranges on the count,
filters `-C` command name, `-a` argument substring, `-u` user, `-s` state
letters; text `PROCS OK: 4 processes with command name 'bash'`, perfdata procs.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
from collections.abc import Iterator

from checkd.pluginapi import ArgumentParser, CheckError, Outcome, Perf, evaluate, run_script


@dataclasses.dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    command: str   # the kernel's comm, as ps shows it
    args: str      # the command line, NULs as spaces
    state: str     # one letter: R, S, D, Z, T, ...
    uid: int


def _processes() -> Iterator[Proc]:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
            uid = entry.stat().st_uid
        except OSError:
            continue  # the process ended while we looked: it is not counted
        # comm is in parentheses and may itself hold spaces or parentheses.
        command = stat[stat.index("(") + 1:stat.rindex(")")]
        state = stat[stat.rindex(")") + 2:].split(" ", 1)[0]
        yield Proc(int(entry.name), command, cmdline or f"[{command}]", state, uid)


def _user(text: str) -> tuple[int, str]:
    try:
        entry = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
    except (KeyError, ValueError):
        raise CheckError(f"check_procs: unknown user {text!r}") from None
    return entry.pw_uid, entry.pw_name


def check(args: list[str]) -> Outcome:
    parser = ArgumentParser(prog="check_procs")
    parser.add_argument("-w", "--warning", help="range of process counts")
    parser.add_argument("-c", "--critical", help="range of process counts")
    parser.add_argument("-C", "--command", help="exact command name")
    parser.add_argument("-a", "--argument-array", dest="argument", help="substring of the command line")
    parser.add_argument("-u", "--user", help="user name or UID")
    parser.add_argument("-s", "--state", help="any of these state letters (R, S, D, Z, T, ...)")
    opts = parser.parse_args(args)
    uid, user = _user(opts.user) if opts.user else (None, "")

    filters = []
    if opts.command is not None:
        filters.append(f"command name '{opts.command}'")
    if uid is not None:
        filters.append(f"UID = {uid} ({user})")
    if opts.state:
        filters.append(f"STATE = {opts.state}")
    if opts.argument is not None:
        filters.append(f"args '{opts.argument}'")

    me = os.getpid()  # like check_procs, never count the process doing the counting
    count = sum(1 for p in _processes()
                if p.pid != me
                and (opts.command is None or p.command == opts.command)
                and (opts.argument is None or opts.argument in p.args)
                and (uid is None or p.uid == uid)
                and (not opts.state or p.state in opts.state))
    status = evaluate(count, opts.warning, opts.critical)
    text = f"{count} process{'' if count == 1 else 'es'}"
    if filters:
        text += " with " + ", ".join(filters)
    perf = [Perf("procs", count, "", opts.warning, opts.critical, min=0)]
    return Outcome(status, text, perf, label="PROCS")


if __name__ == "__main__":
    run_script(check)
