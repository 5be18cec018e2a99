"""The checkd command as an operator uses it: run-checks and the demo's first step."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO, require_plugins


def checkd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checkd", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_run_checks_prints_parsed_results_of_one_site() -> None:
    require_plugins()
    result = checkd("run-checks", "-c", "conf.d/poller-ladc1.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(ln.startswith("CRITICAL") and "mysql17.ladc1/MySQL port" in ln and "Connection refused" in ln
               for ln in lines)
    assert any(ln.startswith("OK") and "Mysql Health Slave Check" in ln for ln in lines)
    assert any("load1=" in ln for ln in lines), "perfdata of the embedded check_load is shown"
    assert "nydc1" not in result.stdout, "a poller runs only its own site's checks"


def test_run_checks_of_one_service_and_an_unknown_one() -> None:
    require_plugins()
    one = checkd("run-checks", "-c", "conf.d/poller-nydc1.yaml", "web2.nydc1/Ticket queue")
    assert one.returncode == 0 and one.stdout.startswith("WARNING") and len(one.stdout.splitlines()) == 1
    bad = checkd("run-checks", "-c", "conf.d/poller-nydc1.yaml", "web2.nydc1/Nope")
    assert bad.returncode != 0 and "no check 'web2.nydc1/Nope'" in bad.stderr


def test_demo_once_shows_every_example_check() -> None:
    require_plugins()
    result = checkd("demo", "--once")
    assert result.returncode == 0, result.stderr
    assert "web2.nydc1/Ticket queue" in result.stdout and "mysql17.ladc1/MySQL port" in result.stdout


def test_unknown_subcommand_and_bad_config_exit_non_zero() -> None:
    assert checkd("frobnicate").returncode == 2
    missing = checkd("poller", "-c", "/nonexistent.yaml")
    assert missing.returncode == 1 and "/nonexistent.yaml:0: cannot read file" in missing.stderr


def test_check_config_warns_when_the_failover_timing_cannot_be_met(tmp_path) -> None:
    """site_stale_after shorter than a poller's reconnect, or no start grace: a restart of central
    would take over a site whose poller is only reconnecting (docs/failover.md, "Timing")."""
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "o.yaml").write_text(
        "sites:\n  - {name: nydc1, stale_after: 8s}\n  - {name: ladc1}\n"
        "hosts:\n  - {name: db1.ladc1, address: 127.0.0.1}\n  - {name: web2.nydc1, address: 127.0.0.1}\n")
    central = tmp_path / "central.yaml"
    central.write_text("central:\n  state_dir: state\n  objects: objects\n"
                       "  freshness:\n    site_stale_after: 30s\n    start_grace: 2s\n")
    poller = tmp_path / "poller.yaml"
    poller.write_text("poller:\n  name: p\n  site: ladc1\n  central: http://127.0.0.1:1\n  token: t-0123456789abcdef\n"
                      "  state_dir: state\n  objects: objects\n  heartbeat_interval: 20s\n")
    good = tmp_path / "poller-ok.yaml"
    good.write_text(poller.read_text().replace("20s", "5s"))

    c = checkd("check-config", "-c", str(central))
    assert c.returncode == 0, c.stderr          # warnings, not errors
    lines = c.stderr.splitlines()
    assert len(lines) == 2, c.stderr
    assert lines[0].startswith(f"{tmp_path}/objects/o.yaml:2: warning: site nydc1 is stale after 8s") \
        and "Raise stale_after above 10s" in lines[0]
    assert lines[1].startswith(f"{central}:6: warning: start_grace 2s") and "at least 10s" in lines[1]

    p = checkd("check-config", "-c", str(poller))
    assert p.returncode == 0 and p.stderr.startswith(f"{poller}:8: warning: heartbeat_interval 20s"), p.stderr
    assert "take 40s to be heard" in p.stderr and "below 15s" in p.stderr
    ok = checkd("check-config", "-c", str(good))
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
