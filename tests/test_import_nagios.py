"""`checkd import-nagios` against Debian's own Nagios configuration and Nagios itself:
the imported directory loads, every service is there, and each check is scheduled
and run exactly as Nagios would (command line, interval, retry, attempts).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from checkd.config import load_objects
from checkd.config.macros import split_call
from checkd.config.model import SSHSettings
from checkd.nagios_import.emit import import_nagios
from checkd.nagios_import.parse import parse_object_file, read_resource
from checkd.nagios_import.resolve import split_list
from checkd.nagios_import.report import Report
from checkd.run.prepare import prepare
from tests.helpers import REPO

NAGIOS = shutil.which("nagios4") or "/usr/sbin/nagios4"
DEBIAN_CFG = Path("/etc/nagios4/nagios.cfg")


def checkd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checkd", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def require_nagios() -> None:
    if Path(NAGIOS).is_file() and DEBIAN_CFG.is_file():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("nagios4 and /etc/nagios4/nagios.cfg are required in CI (apt-get install nagios4-core)")
    pytest.skip("nagios4 is not installed")


@pytest.fixture
def debian_cfg() -> Iterator[Path]:
    """Debian's nagios.cfg (objects left where the package put them), writing its caches here."""
    require_nagios()
    # nagios4 run as root drops to the nagios user, who cannot enter pytest's private tmp_path.
    with tempfile.TemporaryDirectory(prefix="checkd-nagios-") as tmp:
        work = Path(tmp)
        work.chmod(0o777)
        yield _debian_copy(work)


def _debian_copy(work: Path) -> Path:
    text = DEBIAN_CFG.read_text()
    text = re.sub(r"(?m)^precached_object_file=.*$", f"precached_object_file={work}/objects.precache", text)
    text = re.sub(r"(?m)^object_cache_file=.*$", f"object_cache_file={work}/objects.cache", text)
    cfg = work / "nagios.cfg"
    cfg.write_text(text)
    return cfg


def nagios_precache(cfg: Path) -> dict[str, list[dict[str, str]]]:
    """Nagios' own resolved objects: `nagios4 -vp` writes every object with inheritance applied."""
    run = subprocess.run([NAGIOS, "-vp", str(cfg)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    out: dict[str, list[dict[str, str]]] = {}
    for d in parse_object_file(cfg.parent / "objects.precache", Report()):
        out.setdefault(d.type, []).append(d.attrs)
    return out


def nagios_command_line(call: str, host: dict[str, str], service: dict[str, str] | None,
                        commands: dict[str, str], user: dict[str, str]) -> str:
    """What Nagios runs for `call` (name!arg!arg): $ARGn$, $USERn$ and host/service macros."""
    name, args = split_call(call)
    values = {**user, "HOSTNAME": host["host_name"], "HOSTADDRESS": host.get("address", host["host_name"]),
              "HOSTALIAS": host.get("alias", host["host_name"])}
    if service:
        values["SERVICEDESC"] = service["service_description"]
    values.update({f"ARG{i}": re.sub(r"\$(USER\d+)\$", lambda m: user[m[1]], a) for i, a in enumerate(args, 1)})
    return re.sub(r"\$([A-Z0-9_]*)\$", lambda m: values.get(m[1], "") if m[1] else "$", commands[name])


def test_debian_configuration_imports_and_every_check_matches_nagios(debian_cfg: Path, tmp_path: Path) -> None:
    out = tmp_path / "objects"
    imported = checkd("import-nagios", str(debian_cfg), "-o", str(out))
    assert imported.returncode == 0, imported.stderr
    assert (out / "IMPORT-REPORT.txt").read_text() in imported.stdout
    checked = checkd("check-config", "--objects", str(out))
    assert checked.returncode == 0, checked.stderr

    nagios = nagios_precache(debian_cfg)
    objs = load_objects(out)
    commands = {c["command_name"]: c["command_line"] for c in nagios["command"]}
    user = read_resource(Path("/etc/nagios4/resource.cfg"), Report())
    hosts = {h["host_name"]: h for h in nagios["host"]}
    interval_length = 60
    assert {(s["host_name"], s["service_description"]) for s in nagios["service"]} == set(objs.services)
    assert set(hosts) == set(objs.hosts)
    rows = []
    for s in nagios["service"]:
        mine = objs.services[s["host_name"], s["service_description"]]
        host = objs.hosts[s["host_name"]]
        rows.append(((s["host_name"], s["service_description"]),
                     (nagios_command_line(s["check_command"], hosts[s["host_name"]], s, commands, user),
                      float(s["check_interval"]) * interval_length, float(s["retry_interval"]) * interval_length,
                      int(s["max_check_attempts"])),
                     (prepare(objs, host, mine, SSHSettings()).line, mine.schedule.interval,
                      mine.schedule.retry_interval, mine.schedule.max_attempts)))
    for h in nagios["host"]:
        mine_host = objs.hosts[h["host_name"]]
        rows.append(((h["host_name"], None),
                     (nagios_command_line(h["check_command"], h, None, commands, user),
                      float(h["check_interval"]) * interval_length, float(h["retry_interval"]) * interval_length,
                      int(h["max_check_attempts"])),
                     (prepare(objs, mine_host, None, SSHSettings()).line, mine_host.schedule.interval,
                      mine_host.schedule.retry_interval, mine_host.schedule.max_attempts)))
    for s in nagios["service"]:   # who is told, and when: implied inheritance from the host included
        mine = objs.services[s["host_name"], s["service_description"]]
        rows.append(((s["host_name"], s["service_description"], "notify"),
                     (sorted(split_list(s.get("contacts", ""))), sorted(split_list(s.get("contact_groups", ""))),
                      s.get("notification_period"), float(s.get("notification_interval", 0)) * interval_length),
                     (sorted(mine.notify.contacts), sorted(mine.notify.contact_groups),
                      mine.notify.notification_period, mine.notify.notification_interval)))
    assert len(rows) >= 9
    for what, theirs, ours in rows:
        assert ours == theirs, f"{what}: nagios {theirs} != checkd {ours}"
    assert all(h.site == "imported" for h in objs.hosts.values())


def test_debian_report_names_what_is_left_behind(debian_cfg: Path, tmp_path: Path) -> None:
    report = import_nagios(debian_cfg, tmp_path / "objects", site="lab").text()
    assert re.search(r"/etc/nagios4/objects/commands\.cfg:\d+: command 'notify-host-by-email' not carried over",
                     report)
    assert re.search(r"templates\.cfg:\d+: contact directive host_notification_commands", report)
    assert "exception 'monday -1 may'" in report
    assert all(h.site == "lab" for h in load_objects(tmp_path / "objects").hosts.values())


# Beside Debian's objects: a host and a service with first_notification_delay, a same-host
# service dependency, one across hosts from a host group, one on a service group, a host one.
DEPENDENCIES = """\
define host {
    use                     linux-server
    host_name               app1
    address                 127.0.0.2
    parents                 localhost
    first_notification_delay 5
}
define service {
    use                     local-service
    host_name               app1
    service_description     HTTP
    check_command           check_http
    first_notification_delay 2
}
define servicedependency {
    host_name                       localhost
    service_description             SSH
    dependent_service_description   HTTP,Current Users
    execution_failure_criteria      c
    notification_failure_criteria   w,c,u
    inherits_parent                 1
}
define servicedependency {
    hostgroup_name                  linux-servers
    service_description             PING
    dependent_host_name             app1
    dependent_service_description   HTTP
    notification_failure_criteria   c,p
}
define hostdependency {
    host_name                       localhost
    dependent_host_name             app1
    notification_failure_criteria   d,u
    dependency_period               workhours
}
define servicegroup {
    servicegroup_name               disks
    members                         localhost,Root Partition,localhost,Swap Usage
}
define servicedependency {
    host_name                       app1
    service_description             HTTP
    dependent_servicegroup_name     disks
    notification_failure_criteria   c
    execution_failure_criteria      n
}
"""
LETTER = {"ok": "o", "up": "o", "warning": "w", "critical": "c", "unknown": "u", "unreachable": "u", "down": "d",
          "pending": "p"}


def test_dependencies_and_first_notification_delay_match_nagios(debian_cfg: Path, tmp_path: Path) -> None:
    deps = debian_cfg.parent / "deps.cfg"
    deps.write_text(DEPENDENCIES)
    debian_cfg.write_text(debian_cfg.read_text() + f"cfg_file={deps}\n")
    out = tmp_path / "objects"
    report = import_nagios(debian_cfg, out).text()
    assert "dependency" not in report, report
    objs = load_objects(out)
    nagios = nagios_precache(debian_cfg)
    # Nagios' precache: one definition per (master, dependent) pair and kind of criteria.
    theirs = {(kind, (x["host_name"], x.get("service_description")),
               (x["dependent_host_name"], x.get("dependent_service_description")),
               frozenset(split_list(x[f"{kind}_failure_options"])), x["inherits_parent"] == "1",
               x.get("dependency_period"))
              for x in nagios["servicedependency"] + nagios["hostdependency"]
              for kind in ("notification", "execution") if f"{kind}_failure_options" in x}
    ours = {(kind, dep.master, dep.dependent, frozenset(LETTER[s] for s in states), dep.inherits_parent, dep.period)
            for found in objs.dependencies.values() for dep in found
            for kind, states in (("notification", dep.notification_failure), ("execution", dep.execution_failure))
            if states}
    assert len(theirs) == 8 and ours == theirs
    delays = {(h["host_name"], None): float(h["first_notification_delay"]) * 60 for h in nagios["host"]}
    delays |= {(s["host_name"], s["service_description"]): float(s["first_notification_delay"]) * 60
               for s in nagios["service"]}
    assert delays == {**{(h, None): o.notify.first_notification_delay for h, o in objs.hosts.items()},
                      **{k: o.notify.first_notification_delay for k, o in objs.services.items()}}
    assert delays[("app1", None)] == 300 and delays[("app1", "HTTP")] == 120


TRICKY = {
    "nagios.cfg": """
cfg_dir=objects
resource_file=resource.cfg
interval_length=30
""",
    "resource.cfg": "$USER1$=/opt/plugins\n$USER5$=s3cret\n",
    "objects/templates.cfg": """
define host {
    name            generic-host   ; a template
    check_interval  10
    max_check_attempts 4
    notification_interval 20
    register        0
}
define host {
    name            rack-a
    _RACK           a17
    notes_url       https://wiki.example.com/rack-a
    register        0
}
define service {
    name            generic-service
    check_interval  4
    retry_interval  1
    max_check_attempts 2
    notification_interval 10
    register        0
}
""",
    "objects/hosts.cfg": """
define host {
    use             rack-a,generic-host
    host_name       web1
    address         10.0.0.1
    hostgroups      web
    contacts        alice
}
define host {
    use             generic-host
    host_name       web2
    address         10.0.0.2
    event_handler   restart-httpd
    parents         web1
}
define host {
    use             generic-host
    host_name       db1
    address         10.0.0.3
}
define hostgroup {
    hostgroup_name  web
    members         web2
}
define hostgroup {
    hostgroup_name  everything
    members         *
}
""",
    "objects/services.cfg": """
define command {
    command_name    check_tcp
    command_line    $USER1$/check_tcp -H $HOSTADDRESS$ -p $ARG1$ -a $USER5$
}
define service {
    use                 generic-service
    hostgroup_name      everything,!web
    service_description TCP
    check_command       check_tcp!5432
}
define service {
    use                 generic-service
    host_name           *,!db1
    service_description HTTP
    check_command       check_tcp!80
}
define service {
    use                 generic-service
    host_name           db1
    service_description Replication
    check_command       check_tcp!5433
}
define serviceescalation {
    host_name           db1
    service_description Replication
    first_notification  3
    last_notification   0
    contact_groups      dba
}
define servicedependency {
    host_name           db1
    service_description TCP
    dependent_host_name web1
    dependent_service_description HTTP
}
define contact {
    contact_name        alice
    email               alice@example.com
    pager               555-0100
    contactgroups       dba
}
define contactgroup {
    contactgroup_name   dba
}
define timeperiod {
    timeperiod_name     office
    monday              09:00-17:00
    2026-12-24          00:00-00:00
    december 31         09:00-12:00
    day 1               10:00-11:00
}
""",
}


def test_tricky_configuration(tmp_path: Path) -> None:
    src = tmp_path / "nagios"
    for name, text in TRICKY.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text.lstrip("\n"))
    out = tmp_path / "objects"
    report = import_nagios(src / "nagios.cfg", out).text()
    objs = load_objects(out)

    assert sorted(h for h, _ in objs.services if _ == "TCP") == ["db1"], "everything minus the web group"
    assert sorted(h for h, _ in objs.services if _ == "HTTP") == ["web1", "web2"], "* minus db1"
    web1 = objs.hosts["web1"]
    assert (web1.schedule.interval, web1.schedule.max_attempts) == (300, 4), "10 * interval_length 30"
    assert web1.vars == {"RACK": "a17"} and web1.runbook == "https://wiki.example.com/rack-a"
    assert objs.hosts["web2"].parents == ("web1",)
    assert set(objs.host_groups["web"].members) == {"web1", "web2"}
    tcp = prepare(objs, objs.hosts["db1"], objs.services["db1", "TCP"], SSHSettings()).line
    assert tcp == "/opt/plugins/check_tcp -H 10.0.0.3 -p 5432 -a s3cret"
    escalation, = objs.services["db1", "Replication"].notify.escalations
    assert escalation.after == 600 and escalation.contact_groups == ("dba",), "(3 - 1) * 10 * 30s"
    assert objs.contact_groups["dba"].members == ("alice",)
    assert objs.timeperiods["office"].exceptions == {"2026-12-24": ()}
    # Nagios 4's implied inheritance: a service without contacts takes its host's.
    assert objs.services["web1", "HTTP"].notify.contacts == ("alice",)
    assert objs.services["web2", "HTTP"].notify.contacts == ()
    assert objs.services["web1", "HTTP"].notify.notification_interval == 300, "its own 10 * 30s, not the host's"

    templates = (out / "templates.yaml").read_text()
    assert "name: generic-host" in templates and "name: rack-a" in templates, "templates are kept"
    hosts_cfg, services_cfg = src / "objects/hosts.cfg", src / "objects/services.cfg"
    assert f"{hosts_cfg}:12: host directive event_handler 'restart-httpd' not carried over" in report
    tcp_db1 = objs.dependencies[("web1", "HTTP")][0]
    assert (tcp_db1.master, tcp_db1.notification_failure) == (("db1", "TCP"), frozenset()), "Nagios' default: none"
    assert f"{services_cfg}:39: contact directive pager '555-0100' not carried over" in report
    assert objs.timeperiods["office"].monthly == {(7, 1): ((600, 660),)}, "Nagios' `day 1` is carried over"
    assert "day 1" not in report
    assert (out / "IMPORT-REPORT.txt").read_text() == report
