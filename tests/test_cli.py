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
