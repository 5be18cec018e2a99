"""Sites follow the DNS domain: `checkd check-config --sites` and `run-checks` as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, require_plugins
from tests.test_config import assert_error, write_tree

OBJECTS = """\
commands:
  dummy: "$PLUGINDIR$/check_dummy $ARG1$ '$ARG2$'"
sites:
  - {name: ladc1, domains: [ladc1.example.com]}
  - {name: nydc1, domains: [nydc1.example.com, nydc1.example.net]}
  - {name: corp, domains: example.com}
hosts:
  - {name: db1.ladc1.example.com, address: 127.0.0.1}
  - {name: DB2.LADC1.Example.Com., address: 127.0.0.1}
  - {name: mysql17.ladc1, address: 127.0.0.1}
  - {name: web1.nydc1.example.net, address: 127.0.0.1}
  - {name: www.example.com, address: 127.0.0.1}
  - {name: moved.ladc1.example.com, address: 127.0.0.1, site: nydc1}
services:
  - {hosts: [db1.ladc1.example.com, mysql17.ladc1, web1.nydc1.example.net, moved.ladc1.example.com],
     description: Ping, command: "dummy!0!pong"}
"""


def checkd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checkd", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)


def site_rows(stdout: str) -> dict[str, tuple[str, str]]:
    """host -> (site, rule) from the table check-config --sites prints."""
    lines = stdout.splitlines()
    assert lines[0].split() == ["HOST", "SITE", "RULE"], stdout
    rows = {}
    for line in lines[1:]:
        if ": OK: " in line:
            break
        host, site, rule = line.split(maxsplit=2)
        rows[host] = (site, rule)
    return rows


def test_check_config_sites_shows_each_host_and_the_rule_that_placed_it(tmp_path: Path) -> None:
    node = write_tree(tmp_path, {"o.yaml": OBJECTS})
    result = checkd("check-config", "-c", str(node), "--sites")
    assert result.returncode == 0, result.stderr
    rows = site_rows(result.stdout)
    objects = tmp_path / "objects" / "o.yaml"
    assert rows == {
        "db1.ladc1.example.com": ("ladc1", f"domain ladc1.example.com ({objects}:4)"),
        "DB2.LADC1.Example.Com.": ("ladc1", f"domain ladc1.example.com ({objects}:4)"),   # DNS ignores case
        "mysql17.ladc1": ("ladc1", "last label of the name"),                            # short names still work
        "web1.nydc1.example.net": ("nydc1", f"domain nydc1.example.net ({objects}:5)"),
        "www.example.com": ("corp", f"domain example.com ({objects}:6)"),               # the longest domain wins
        "moved.ladc1.example.com": ("nydc1", f"site: ({objects}:13)"),                   # site: always wins
    }
    assert result.stdout.splitlines()[-1].endswith("OK: 6 hosts, 4 services, 1 commands, 0 contacts")
    assert list(rows) == sorted(rows, key=lambda h: (rows[h][0], h)), "grouped by site"
    objects_only = checkd("check-config", "--objects", str(tmp_path / "objects"), "--sites")
    assert objects_only.returncode == 0 and site_rows(objects_only.stdout) == rows


def test_a_poller_runs_the_hosts_of_its_domain(tmp_path: Path) -> None:
    require_plugins()
    node = write_tree(tmp_path, {"o.yaml": OBJECTS})
    result = checkd("run-checks", "-c", str(node))
    assert result.returncode == 0, result.stderr
    ran = {line.split()[1].split("/")[0] for line in result.stdout.splitlines()}
    assert ran == {"db1.ladc1.example.com", "mysql17.ladc1"}, result.stdout


def test_an_fqdn_in_no_listed_domain_is_an_error_not_its_top_level_domain(tmp_path: Path) -> None:
    assert_error(tmp_path, {"o.yaml": """\
        sites:
          - {name: ladc1, domains: [ladc1.example.com]}
        hosts:
          - {name: db1.ladc1.example.com}
          - {name: db9.nydc1.example.com}
        """}, "o.yaml", 5, "host 'db9.nydc1.example.com' is in no site's domain",
        "add `domains: [nydc1.example.com]` to its site under sites:, or `site: ...` to the host")


def test_without_any_site_listed_an_fqdn_is_an_error_too(tmp_path: Path) -> None:
    stderr = assert_error(tmp_path, {"o.yaml": "hosts:\n  - {name: db1.ladc1.example.com}\n"},
                          "o.yaml", 2, "is in no site's domain", "`domains: [ladc1.example.com]`")
    assert "'com'" not in stderr


def test_mistakes_in_site_domains(tmp_path: Path) -> None:
    stderr = assert_error(tmp_path, {"o.yaml": """\
        sites:
          - {name: ladc1, domains: [ladc1.example.com]}
          - {name: ladc2, domains: [LADC1.example.com, "bad domain"]}
        hosts:
          - {name: 10.1.2.3}
        """}, "o.yaml", 3, "domain 'ladc1.example.com' is given to site 'ladc2' and to site 'ladc1'",
        "a domain belongs to one site")
    objects = tmp_path / "objects" / "o.yaml"
    assert f"{objects}:3: site 'ladc2': domains: 'bad domain' is not a DNS domain" in stderr
    assert f"{objects}:5: host '10.1.2.3' is named by an IP address: add `site: ...`" in stderr


def test_a_short_name_whose_last_label_is_no_listed_site_says_how_to_fix_it(tmp_path: Path) -> None:
    assert_error(tmp_path, {"o.yaml": """\
        sites:
          - {name: ladc1, domains: [ladc1.example.com]}
        hosts:
          - {name: example.com}
        """}, "o.yaml", 4, "host 'example.com' is in undefined site 'com' (the last label of its name)",
        "or give the host `site: ...`")
