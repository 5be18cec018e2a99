#!/usr/bin/env python3
"""check_file_age: how old (and how small) a file is.

Mirrors monitoring-plugins' check_file_age: `-f FILE -w SECONDS -c SECONDS`
(defaults 240 and 600), `-W`/`-C` minimum sizes, perfdata age and size.
"""

from __future__ import annotations

import os
import time

from checkd.pluginapi import ArgumentParser, CheckError, Outcome, Perf, Status, evaluate, run_script, worst


def check(args: list[str]) -> Outcome:
    parser = ArgumentParser(prog="check_file_age")
    parser.add_argument("-f", "--file", required=True)
    parser.add_argument("-w", "--warning-age", default="240", help="seconds (a Nagios range)")
    parser.add_argument("-c", "--critical-age", default="600", help="seconds (a Nagios range)")
    parser.add_argument("-W", "--warning-size", type=int, default=0, help="minimum size in bytes")
    parser.add_argument("-C", "--critical-size", type=int, default=0, help="minimum size in bytes")
    parser.add_argument("-i", "--ignore-missing", action="store_true", help="OK when the file is missing")
    opts = parser.parse_args(args)

    try:
        st = os.stat(opts.file)
    except FileNotFoundError:
        status = Status.OK if opts.ignore_missing else Status.CRITICAL
        return Outcome(status, f"File not found - {opts.file}", label="FILE_AGE")
    except OSError as e:
        raise CheckError(f"check_file_age: cannot stat {opts.file}: {e.strerror}") from None

    age = int(time.time() - st.st_mtime)
    size = st.st_size
    age_status = evaluate(age, opts.warning_age, opts.critical_age)
    if size < opts.critical_size:
        size_status = Status.CRITICAL
    elif size < opts.warning_size:
        size_status = Status.WARNING
    else:
        size_status = Status.OK
    perf = [Perf("age", age, "s", opts.warning_age, opts.critical_age),
            Perf("size", size, "B", str(opts.warning_size), str(opts.critical_size), min=0)]
    text = f"{opts.file} is {age} seconds old and {size} bytes"
    return Outcome(worst([age_status, size_status]), text, perf, label="FILE_AGE")


if __name__ == "__main__":
    run_script(check)
