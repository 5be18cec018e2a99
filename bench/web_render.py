"""Render time of the NOC overview with many open problems.

    .venv/bin/python bench/web_render.py [--problems 5000] [--rounds 30] [--no-browser]

A real `python -m checkd central` process (tests/central_proc.py) with a
generated config (--problems services on 6-service hosts over 2 sites, plus 20%
more that stay OK), fed as real pollers feed it: HARD CRITICAL / WARNING /
UNKNOWN results over POST /api/v1/results, then one problem in ten
acknowledged over the API. Then, over HTTP on 127.0.0.1:

- `GET /?limit=all`: the whole overview with every one of the problems listed;
- `GET /`: the overview as it opens (totals and sites over all problems, the
  500 worst and newest rows, then "... and 4,500 more");
- `GET /` with `X-Checkd-Live: 1`: the live part the page's script fetches, when
  something changed (a new ETag every time: one result posted before each);
- the same with `If-None-Match` when nothing changed (304, no rendering);
- `GET /?state=CRITICAL&site=ladc1`: a filtered view;
- gzip: the whole overview as a browser fetches it (Accept-Encoding: gzip).

Times are wall time of the whole request at the client (median, p90, max over
--rounds), so they include aiohttp, the view model, Jinja2 and the transfer.
With Chromium (the default), also how long the browser takes from navigation
to the load event and to the first paint of that page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.central_proc import CentralProc, result  # noqa: E402

SITES = ("ladc1", "nydc1")          # the sites of tests/central_proc.py's pollers
PER_HOST = 6
TARGET_MS = 300.0


def objects(problems: int) -> tuple[str, list[tuple[str, str, str]]]:
    """The objects file and (host, service, site) of every service."""
    total = int(problems * 1.2)
    hosts = (total + PER_HOST - 1) // PER_HOST
    lines = ["commands:", "  check_dummy: \"/usr/lib/nagios/plugins/check_dummy $ARG1$\"", "hostgroups:"]
    lines += [f"  - {{name: g{g}}}" for g in range(7)]
    lines.append("hosts:")
    services: list[tuple[str, str, str]] = []
    for h in range(hosts):
        site = SITES[h % len(SITES)]
        name = f"h{h:05d}.{site}"
        lines.append(f"  - {{name: {name}, address: 127.0.0.1, site: {site}, hostgroups: [g{h % 7}]}}")
        for s in range(PER_HOST):
            services.append((name, f"Service {s} check", site))
    services = services[:total]
    lines.append("services:")
    for host, svc, _ in services:
        lines.append(f"  - {{host: {host}, description: {svc}, command: \"check_dummy!0\"}}")
    return "\n".join(lines) + "\n", services


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[float, int, int]:
    req = urllib.request.Request(url, headers=headers or {})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:     # 304 comes as an "error"
        body, status = e.read(), e.code
    return (time.perf_counter() - t) * 1000, status, len(body)


def stats(ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   max {ms[-1]:7.1f} ms"


def stat_dict(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"median": statistics.median(ms), "p90": ms[min(len(ms) - 1, int(len(ms) * 0.9))], "max": ms[-1]}


async def in_browser(url: str, rounds: int) -> tuple[list[float], list[float], int]:
    from tests.browser import Browser
    loads, paints = [], []
    async with Browser() as b:
        page = await b.page(1920, 1080)
        for _ in range(rounds):
            await page.goto(url, timeout=60)
            n = json.loads(await page.eval("JSON.stringify(performance.getEntriesByType('navigation')[0])"))
            paint = await page.eval("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
            loads.append(n["loadEventEnd"] - n["startTime"])
            if paint:
                paints.append(paint)
        rows = await page.eval("document.querySelectorAll('table.problems tbody tr').length")
    return loads, paints, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = ap.parse_args()
    figs: dict[str, Any] = {"bench": "web_render", "problems": args.problems, "rounds": args.rounds,
                            "target_ms": TARGET_MS, "requests": {}, "browser": {}}

    text, services = objects(args.problems)
    with tempfile.TemporaryDirectory() as d:
        c = CentralProc(Path(d), objects=text)
        c.start(timeout=60)
        try:
            states = (2, 1, 3, 2)
            seq = {name: 0 for name in ("poller-ladc1", "poller-nydc1")}
            batch: dict[str, list[dict[str, Any]]] = {"poller-ladc1": [], "poller-nydc1": []}
            now = time.time()
            for i, (host, svc, site) in enumerate(services):
                poller = f"poller-{site}"
                seq[poller] += 1
                status = states[i % 4] if i < args.problems else 0
                out = f"CHECK {['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'][status]} - value {i} is out of range " \
                      f"(threshold {i % 100}) <b>not bold</b>"
                batch[poller].append(result(seq[poller], host, svc, status, out, finished=now - (len(services) - i),
                                            site=site))
            for poller, items in batch.items():
                for k in range(0, len(items), 500):
                    code, answer = c.post_results(poller, [{k2: v for k2, v in r.items() if k2 != "site"}
                                                           for r in items[k:k + 500]])
                    assert code == 200, str(answer)[:500]
            problems = c.get("/api/v1/problems")["problems"]
            assert len(problems) == args.problems, len(problems)
            for p in problems[::10]:
                c.write("POST", "/api/v1/ack", {"event_id": p["id"], "comment": "bench"})

            url = c.url + "/"
            fetch(url)                                          # warm-up: templates compiled
            every = [fetch(url + "?limit=all") for _ in range(args.rounds)]
            full = [fetch(url) for _ in range(args.rounds)]
            assert all(s == 200 for _, s, _ in full + every)
            gz = [fetch(url + "?limit=all", {"Accept-Encoding": "gzip"}) for _ in range(args.rounds)]
            changed = []
            host, svc, _ = services[0]
            for r in range(args.rounds):
                seq["poller-ladc1"] += 1
                c.post_results("poller-ladc1", [result(seq["poller-ladc1"], host, svc, 2, f"changed {r}")])
                changed.append(fetch(url, {"X-Checkd-Live": "1"}))
            etag = urllib.request.urlopen(urllib.request.Request(url, headers={"X-Checkd-Live": "1"})) \
                .headers["ETag"]
            same = [fetch(url, {"X-Checkd-Live": "1", "If-None-Match": etag}) for _ in range(args.rounds)]
            assert all(s == 304 for _, s, _ in same), [s for _, s, _ in same]
            filtered = [fetch(url + "?state=CRITICAL&site=ladc1") for _ in range(args.rounds)]

            print(f"checkd web overview, {args.problems} open problems ({len(problems[::10])} acknowledged), "
                  f"{len(services)} services; {platform.python_version()}, {os.cpu_count()} CPUs")
            def line(what: str, runs: list[tuple[float, int, int]]) -> None:
                print(f"{what:<44} {runs[0][2] / 1e3:6.0f} kB   {stats([t for t, _, _ in runs])}")
                figs["requests"][what] = {"kb": runs[0][2] / 1e3, **stat_dict([t for t, _, _ in runs])}
            line("GET /?limit=all (all rows)", every)
            line("  the same, gzip", gz)
            line("GET / (500 rows and '... 4,500 more')", full)
            line("live part, changed", changed)
            line("live part, unchanged (304)", same)
            line("filtered: ?state=CRITICAL&site=ladc1", filtered)
            p90 = sorted(t for t, _, _ in every)[min(len(every) - 1, int(len(every) * 0.9))]
            print(f"target: p90 of the overview with all {args.problems} rows < {TARGET_MS:.0f} ms: "
                  f"{p90:.0f} ms, {'PASS' if p90 < TARGET_MS else 'FAIL'}")
            if not args.no_browser:
                for what, u in (("default", url), ("all rows", url + "?limit=all")):
                    loads, paints, rows = asyncio.run(in_browser(u, min(args.rounds, 5)))
                    print(f"Chromium 1920x1080, {what} ({rows} rows): load event {stats(loads)}")
                    figs["browser"][what] = {"rows": rows, **stat_dict(loads)}
                    if paints:
                        print(f"{'':<36}first contentful paint {stats(paints)}")
        finally:
            c.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(figs) + "\n")


if __name__ == "__main__":
    main()
