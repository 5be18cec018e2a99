#!/usr/bin/env python3
"""check_load: the 1, 5 and 15 minute load averages against thresholds.

Mirrors monitoring-plugins' check_load: `-w 5,4,3 -c 10,8,6`, `-r` to divide
by the number of CPUs, perfdata load1/load5/load15 (and scaled_load* with -r).
"""

from __future__ import annotations

import os

from checkd.pluginapi import ArgumentParser, CheckError, Outcome, Perf, Status, evaluate, run_script, worst


def _triple(text: str, option: str) -> list[float]:
    """`5` or `5,4,3`: one threshold for each of load1, load5, load15."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise CheckError(f"check_load: {option} thresholds must be numbers, got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise CheckError(f"check_load: {option} takes one or three values, got {text!r}")
    return values


def check(args: list[str]) -> Outcome:
    parser = ArgumentParser(prog="check_load")
    parser.add_argument("-w", "--warning", required=True, help="WLOAD1,WLOAD5,WLOAD15")
    parser.add_argument("-c", "--critical", required=True, help="CLOAD1,CLOAD5,CLOAD15")
    parser.add_argument("-r", "--percpu", action="store_true", help="divide the load by the number of CPUs")
    opts = parser.parse_args(args)
    warn, crit = _triple(opts.warning, "-w"), _triple(opts.critical, "-c")
    loads = os.getloadavg()
    cpus = os.cpu_count() or 1
    scaled = [load / cpus for load in loads] if opts.percpu else list(loads)

    states, perf = [], []
    for minutes, load, value, w, c in zip((1, 5, 15), loads, scaled, warn, crit):
        thresholds = (f"{w:.3f}", f"{c:.3f}")
        states.append(evaluate(value, *thresholds))
        if opts.percpu:
            perf.append(Perf(f"load{minutes}", round(load, 3), min=0))
            perf.append(Perf(f"scaled_load{minutes}", round(value, 3), "", *thresholds, min=0))
        else:
            perf.append(Perf(f"load{minutes}", round(load, 3), "", *thresholds, min=0))

    text = "total load average: " + ", ".join(f"{v:.2f}" for v in loads)
    if opts.percpu:
        text = "scaled load average: " + ", ".join(f"{v:.2f}" for v in scaled) + " - " + text
    return Outcome(worst(states), text, perf, label="LOAD", sep=" - ")


if __name__ == "__main__":
    run_script(check)
