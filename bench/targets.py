"""The targets of issue 12 and of the issues it builds on, judged against the medians of
one bench/run.py run: PASS, MISS, or NOT MEASURED (the benchmark failed or was not run).
"""
from __future__ import annotations

from typing import Any

PASS, MISS, NONE = "PASS", "MISS", "NOT MEASURED"


def _get(d: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def _t(section: str, target: str, value: Any, ok: bool | None, figure: str, source: str) -> dict[str, Any]:
    verdict = NONE if value is None else (PASS if ok else MISS)
    return {"section": section, "target": target, "verdict": verdict,
            "figure": figure if value is not None else "not measured in this run", "source": source}


def evaluate(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    data = {name: r.get("data") for name, r in results.items()}
    p = data.get("poller")
    out = []

    r = _get(p, "ratios")
    x = _get(r, "exec_vs_nagios")
    out.append(_t("poller", "exec checks/s >= 1.5x the better of nagios4 default and tuned (check_workers=8)", x,
                  x is not None and x >= 1.5,
                  f"{_get(r, 'exec_peak') or 0:,.0f} vs {_get(r, 'nagios_best_peak') or 0:,.0f}/s = {x or 0:.2f}x",
                  "issue 12"))
    x = _get(r, "exec_vs_raw")
    out.append(_t("poller", "exec checks/s >= 70% of the raw spawn limit", x, x is not None and x >= 0.70,
                  f"{_get(r, 'exec_peak') or 0:,.0f} vs {_get(p, 'raw', 'per_s') or 0:,.0f}/s = {x or 0:.0%}",
                  "issue 12"))
    x = _get(r, "exec_vs_nagios_worst")
    sizes = _get(r, "exec_vs_nagios_by_size") or {}
    out.append(_t("poller", "exec checks/s >= the better nagios4 (default, check_workers=8) at every size from 10k",
                  x, x is not None and x >= 1.0,
                  ", ".join(f"{int(n):,}: {v:.2f}x" for n, v in sorted(sizes.items(), key=lambda kv: int(kv[0]))),
                  "issue 26"))
    x = _get(r, "exec_saturated_vs_raw")
    out.append(_t("poller", "exec checks/s >= 90% of the raw spawn limit at saturation (every size scheduled past it)",
                  x, x is not None and x >= 0.90,
                  f"slowest saturated size {_get(r, 'exec_saturated') or 0:,.0f} vs "
                  f"{_get(r, 'raw_at_saturated') or 0:,.0f}/s, the limit measured right after it = {x or 0:.0%}"
                  if _get(r, "raw_at_saturated") else
                  f"slowest saturated size {x * (_get(p, 'raw', 'per_s') or 0) if x else 0:,.0f} vs "
                  f"{_get(p, 'raw', 'per_s') or 0:,.0f}/s = {x or 0:.0%}", "issue 26"))
    x = _get(r, "embedded_vs_script")
    out.append(_t("poller", "embedded checks/s >= 20x the same plugin forked as a Python script", x,
                  x is not None and x >= 20,
                  f"{_get(r, 'embedded_peak') or 0:,.0f} vs {_get(r, 'script_peak') or 0:,.1f}/s = {x or 0:.0f}x",
                  "issue 12"))

    n = int(_get(r, "startup_size") or 0)      # a median of sizes: a float
    x = _get(r, "rss_vs_nagios") if n >= 100_000 else None      # --quick runs smaller sizes only
    out.append(_t("poller", "poller RSS at 100,000 services <= 2x nagios4's (same run)", x,
                  x is not None and x <= 2,
                  f"{_get(r, 'rss_mb') or 0:,.0f} vs {_get(r, 'nagios_rss_mb') or 0:,.0f} MB = {x or 0:.2f}x",
                  "issue 26"))
    x = _get(r, "first_result_s") if n >= 100_000 else None
    out.append(_t("poller", "first check result within 3 s of the poller's start at 100,000 services", x,
                  x is not None and x <= 3, f"{x or 0:.1f} s", "issue 26"))

    # p99 latency at 10k services checked once a minute; without that run (--quick), the
    # 10k-services-every-10-s row stands in: six times the rate, a stricter test.
    m = data.get("poller_minute")
    src, where = (m, "10,000 services every 60 s") if _get(m, "rows", "checkd exec", "10000") else \
        (p, "10,000 services every 10 s (6x the target's rate; the 1-minute run is in --full only)")
    e = _get(src, "rows", "checkd exec", "10000", "latency_p99")
    em = _get(src, "rows", "checkd embedded", "10000", "latency_p99")
    out.append(_t("poller", "p99 check latency < 100 ms at 10k services per minute", e,
                  e is not None and e < 0.1 and (em is None or em < 0.1),
                  f"exec {(e or 0) * 1000:.0f} ms, embedded {(em or 0) * 1000:.0f} ms at {where}", "issue 12"))

    s = data.get("ssh")
    x = _get(s, "ratio_checks_per_s")
    out.append(_t("ssh", "ssh checks/s >= 10x check_by_ssh", x, x is not None and x >= 10,
                  f"{x or 0:.1f}x checks/s, {_get(s, 'ratio_cpu') or 0:.1f}x less CPU per check", "issue 12"))

    i = data.get("ingest")
    x = _get(i, "results_per_s")
    out.append(_t("ingest", "central ingest >= 50,000 results/s with durable acks", x, x is not None and x >= 50_000,
                  f"{x or 0:,.0f} results/s", "central issue"))
    x = _get(i, "rss_mb")
    out.append(_t("ingest", "central RSS at 100k services < 600 MB", x, x is not None and x < 600,
                  f"{x or 0:,.0f} MB with {_get(i, 'services') or 0:,.0f} services configured", "central issue"))

    x = _get(data.get("ingest_pg"), "results_per_s")
    out.append(_t("ingest", "central ingest on PostgreSQL >= 30,000 results/s with durable commits", x,
                  x is not None and x >= 30_000,
                  f"{x or 0:,.0f} results/s (SQLite in the same run: {_get(i, 'results_per_s') or 0:,.0f})",
                  "issue 20"))

    c = _get(data.get("rrd"), "modes", "rrdcached")
    x = _get(c, "updates_per_s")
    out.append(_t("rrd", "RRD updates >= 20,000/s through rrdcached, none dropped", x,
                  x is not None and x >= 20_000 and not _get(c, "dropped"),
                  f"{x or 0:,.0f}/s, dropped {_get(c, 'dropped') or 0:,.0f}", "issue 8"))
    x = _get(c, "ingest_per_s")
    out.append(_t("rrd", "ingest with graphs on stays >= 50,000 results/s", x, x is not None and x >= 50_000,
                  f"{x or 0:,.0f} results/s", "issue 8"))
    x = _get(c, "render_idle", "p50")
    out.append(_t("rrd", "graph render p50 < 150 ms", x, x is not None and x < 0.150,
                  f"{(x or 0) * 1000:.0f} ms (idle), {(_get(c, 'render_loaded', 'p50') or 0) * 1000:.0f} ms "
                  f"during the update rounds", "issue 8"))

    n = data.get("notify")
    a, b = _get(n, "mail", "p99"), _get(n, "jabber", "p99")
    out.append(_t("notify", "notification latency p99 < 1 s at 100 problems/s, email and Jabber", a,
                  a is not None and b is not None and a < 1 and b < 1 and bool(_get(n, "pass")),
                  f"email {(a or 0) * 1000:.0f} ms, Jabber {(b or 0) * 1000:.0f} ms", "issue 5"))

    n = data.get("notify_storm")
    a, b = _get(n, "mail", "p99"), _get(n, "jabber", "p99")
    out.append(_t("notify_storm", "mail p99 < 1 s at 1,000 problems in one second (Jabber too)", a,
                  a is not None and b is not None and a < 1 and b < 1 and bool(_get(n, "pass")),
                  f"email {(a or 0) * 1000:.0f} ms ({(a or 0) / 1:.2f}x the target), Jabber {(b or 0) * 1000:.0f} ms "
                  f"({(b or 0) / 1:.2f}x)", "issue 26"))

    st = data.get("startup")
    x = _get(st, "wall")
    out.append(_t("startup", "central start-up (exec -> first HTTP answer) < 5 s at 100k services and 1M history rows",
                  x, x is not None and x < 5 and (_get(st, "services") or 0) >= 100_000,
                  f"{x or 0:.2f} s median ({(x or 0) / 5:.2f}x the target) at {_get(st, 'services') or 0:,.0f} services, "
                  f"{_get(st, 'history_rows') or 0:,.0f} history rows", "issue 26"))

    w = data.get("web")
    x = _get(w, "requests", "GET /?limit=all (all rows)", "p90")
    out.append(_t("web", "NOC overview with 5,000 open problems rendered < 300 ms", x, x is not None and x < 300,
                  f"{x or 0:.0f} ms p90 with all {_get(w, 'problems') or 0:,.0f} rows", "issue 10"))

    f = data.get("failover")
    x, st = _get(f, "times", "takeover", "median"), _get(f, "settings", "site_stale_after")
    out.append(_t("failover", "takeover within the freshness threshold + one check interval (0.5 s)", x,
                  x is not None and st is not None and x <= st + 0.5,
                  f"{x or 0:.2f} s with site_stale_after {st or 0:g} s", "issue 7"))
    x, bound = _get(f, "times", "restart_handover", "median"), _get(f, "settings", "reconnect_bound")
    out.append(_t("failover", "a restarted central hears a reconnecting poller within its reconnect bound", x,
                  x is not None and bound is not None and x <= bound,
                  f"{x or 0:.2f} s, bound {bound or 0:g} s", "issue 18"))
    h = data.get("ha_failover")
    x = _get(h, "ack", "max")
    out.append(_t("ha_failover", "central pair on PostgreSQL: kill -9 of the active -> first poller ack < 15 s (every round)",
                  x, x is not None and x < 15,
                  f"max {x or 0:.1f} s, median {_get(h, 'ack', 'median') or 0:.1f} s over {_get(h, 'rounds') or 0:.0f} "
                  f"rounds (first mail: median {_get(h, 'mail', 'median') or 0:.1f} s)", "issue 20"))
    s = data.get("soak")
    grow, keep = _get(s, "growth_after_keep_mb"), _get(s, "keep_days")
    sizes = [d["db_mb"] for d in (_get(s, "days") or [])]
    out.append(_t("soak", "30 days at 10k services, 1% flapping: the database stops growing once the retention "
                          "age is reached (growth after it < 10% of its size)", grow,
                  grow is not None and bool(sizes) and grow < 0.1 * sizes[-1],
                  f"{sizes[-1] if sizes else 0:.0f} MB on the last day, +{grow or 0:.1f} MB after day "
                  f"{keep or 0:.0f} (retention {keep or 0:.0f} days)", "issue 23"))
    d1, d30 = _get(s, "measured", "1"), _get(s, "measured", str(int(_get(s, "simulated_days") or 30)))
    worst = max(((d30 or {}).get(k, 0) / v) for k, v in (d1 or {}).items() if k.endswith("_ms") and v) \
        if d1 and d30 else None
    out.append(_t("soak", "the NOC page, problems API, history search and availability report flat from day 1 to "
                          "day 30 (at most 1.5x)", worst, worst is not None and worst <= 1.5,
                  f"worst ratio day 30 / day 1: {worst or 0:.2f}", "issue 23"))
    return out
