#!/usr/bin/env python3
"""check_demo_link: made-up traffic and latency of a network link, for `make demo`'s
weather map (docs/weathermap.md). Not a real check: it measures nothing.

`-C 10G --load 0.4 --swing 0.35 --period 600 --rtt 62`: each direction's rate
swings around `load` of the capacity over `period` seconds (and slowly over two
weeks, so last week differs from this one), with a little noise; perfdata `out`,
`in` (bits per second, unitless like most interface plugins) and `rtt` (ms).
The values are a function of the time alone, so history can be drawn back in time.
"""

from __future__ import annotations

import math
import random
import time

from checkd.pluginapi import ArgumentParser, CheckError, Outcome, Perf, evaluate, run_script

PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}
FORTNIGHT = 14 * 86400


def capacity(text: str) -> float:
    unit = text[-1:] if text[-1:] in PREFIX else ""
    try:
        return float(text[:-1] if unit else text) * PREFIX[unit]
    except ValueError:
        raise CheckError(f"check_demo_link: -C: a speed like 10G or 100M, got {text!r}") from None


def sample(t: float, cap: float, load: float, swing: float, period: float, rtt: float,
           phase: float = 0.0) -> tuple[float, float, float]:
    """(out bits/s, in bits/s, rtt ms) at time `t`."""
    noise = random.Random(int(t // 10) * 7919 + int(phase * 1000))
    trend = 1.0 + 0.15 * math.sin(2 * math.pi * t / FORTNIGHT)
    wave = math.sin(2 * math.pi * (t / period + phase))
    share_out = load * trend + swing * wave + noise.uniform(-0.03, 0.03)
    share_in = 0.6 * load * trend + 0.5 * swing * math.sin(2 * math.pi * (t / period + phase + 0.3)) \
        + noise.uniform(-0.03, 0.03)
    latency = rtt * (1 + 0.08 * max(0.0, wave)) + noise.uniform(0, 0.05 * rtt)
    return cap * min(1.05, max(0.0, share_out)), cap * min(1.05, max(0.0, share_in)), latency


def check(args: list[str]) -> Outcome:
    parser = ArgumentParser(prog="check_demo_link")
    parser.add_argument("-C", "--capacity", required=True, help="bits per second: 10G, 100M")
    parser.add_argument("--load", type=float, default=0.4, help="mean share of the capacity")
    parser.add_argument("--swing", type=float, default=0.3, help="how far it swings around the mean")
    parser.add_argument("--period", type=float, default=600.0, help="seconds of one swing")
    parser.add_argument("--phase", type=float, default=0.0, help="0-1: where in the swing it starts")
    parser.add_argument("--rtt", type=float, default=20.0, help="base round-trip time, ms")
    parser.add_argument("-w", "--warning", default="90", help="percent of capacity (a Nagios range)")
    parser.add_argument("-c", "--critical", default="100", help="percent of capacity (a Nagios range)")
    opts = parser.parse_args(args)
    cap = capacity(opts.capacity)
    out, in_, rtt = sample(time.time(), cap, opts.load, opts.swing, opts.period, opts.rtt, opts.phase)
    pct = 100.0 * max(out, in_) / cap
    status = evaluate(pct, opts.warning, opts.critical)
    return Outcome(status, f"out {out / 1e6:.0f} Mb/s, in {in_ / 1e6:.0f} Mb/s ({pct:.0f}% of {opts.capacity}), "
                           f"rtt {rtt:.1f} ms",
                   [Perf("out", round(out), "", min=0, max=cap), Perf("in", round(in_), "", min=0, max=cap),
                    Perf("rtt", round(rtt, 2), "ms", min=0)], label="LINK", sep=" - ")


if __name__ == "__main__":
    run_script(check)
