#!/usr/bin/env python3
"""check_disk: free space on mounted file systems.

Mirrors monitoring-plugins' check_disk (2.3): `-w 10% -c 5%` (free percent) or
`-w 100 -c 50 -u GB` (free amount), `-p PATH` (repeatable), text in MiB/GiB
and perfdata `/=USEDB;WARN;CRIT;0;TOTAL` in bytes, as the Debian 12 one prints.
"""

from __future__ import annotations

import os

from checkd.pluginapi import ArgumentParser, CheckError, Outcome, Perf, Status, run_script, worst

# -u takes the old decimal-looking names but, like check_disk, means powers of 1024.
_UNITS = {"kB": ("KiB", 1 << 10), "MB": ("MiB", 1 << 20), "GB": ("GiB", 1 << 30), "TB": ("TiB", 1 << 40),
          "KiB": ("KiB", 1 << 10), "MiB": ("MiB", 1 << 20), "GiB": ("GiB", 1 << 30), "TiB": ("TiB", 1 << 40)}


def _threshold(text: str, unit: int, total_bytes: int) -> float:
    """A minimum of free bytes: `10%` of the usable size, or `100` units."""
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100 * total_bytes
        return float(text) * unit
    except ValueError:
        raise CheckError(f"check_disk: bad threshold {text!r}") from None


def _one(path: str, warn: str, crit: str, unit_name: str, unit: int) -> tuple[Status, str, Perf | None]:
    try:
        st = os.statvfs(path)
    except OSError as e:
        return Status.CRITICAL, f"{path} is not accessible: {e.strerror}", None
    total = st.f_blocks * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    usable = used + avail  # space reserved for root is neither free nor usable
    free_pct = int(avail * 100 / usable) if usable else 100
    inodes_usable = st.f_files - st.f_ffree + st.f_favail
    inode_pct = int(st.f_favail * 100 / inodes_usable) if inodes_usable else 100

    warn_free, crit_free = _threshold(warn, unit, total), _threshold(crit, unit, total)
    if avail < crit_free:
        status = Status.CRITICAL
    elif avail < warn_free:
        status = Status.WARNING
    else:
        status = Status.OK
    text = f"{path} {avail // unit}{unit_name} ({free_pct}% inode={inode_pct}%)"
    perf = Perf(path, used, "B", str(int(total - warn_free)), str(int(total - crit_free)), 0, total)
    return status, text, perf


def check(args: list[str]) -> Outcome:
    parser = ArgumentParser(prog="check_disk")
    parser.add_argument("-w", "--warning", required=True, help="minimum free: PERCENT% or amount in -u units")
    parser.add_argument("-c", "--critical", required=True, help="minimum free: PERCENT% or amount in -u units")
    parser.add_argument("-p", "--path", action="append", help="mount point or path (repeatable)")
    parser.add_argument("-u", "--units", default="MB", choices=sorted(_UNITS))
    opts = parser.parse_args(args)
    unit_name, unit = _UNITS[opts.units]
    results = [_one(p, opts.warning, opts.critical, unit_name, unit) for p in opts.path or ["/"]]

    broken = [text for _, text, perf in results if perf is None]
    if broken:  # like check_disk: an inaccessible path is reported alone
        return Outcome(Status.CRITICAL, broken[0], label="DISK", sep=" - ")
    text = "free space: " + " ".join(f"{text};" for _, text, _ in results)
    perfdata = [p for _, _, p in results if p is not None]
    return Outcome(worst([s for s, _, _ in results]), text, perfdata, label="DISK", sep=" - ")


if __name__ == "__main__":
    run_script(check)
