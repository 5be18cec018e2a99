"""Dependencies and first_notification_delay in the objects config: loaded into one
Dependency per (master, dependent) pair, mistakes reported as FILE:LINE with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkd.config import load_node
from checkd.config.model import Dependency, Where
from tests.test_config import assert_error, write_tree

BASE = """commands:
  check_tcp: "$PLUGINDIR$/check_tcp -H $HOSTADDRESS$ -p $ARG1$"
timeperiods:
  - {name: workhours, monday: "09:00-17:00"}
hostgroups:
  - {name: web, members: [web1.ladc1, web2.ladc1]}
hosts:
  - {name: db1.ladc1, command: "check_tcp!22"}
  - {name: web1.ladc1}
  - {name: web2.ladc1}
  - {name: db9.nydc1}
services:
  - {host: db1.ladc1, description: MySQL, command: "check_tcp!3306", first_notification_delay: 5m}
  - {hostgroups: [web], description: Shop, command: "check_tcp!80", servicegroups: [shop]}
  - {host: db9.nydc1, description: MySQL, command: "check_tcp!3306"}
"""


def test_dependencies_load_one_per_pair_with_their_defaults(tmp_path: Path) -> None:
    _, objs = load_node(write_tree(tmp_path, {"a.yaml": BASE + """\
dependencies:
  - master: {host: db1.ladc1, service: MySQL}
    dependent: {hostgroups: [web], service: Shop}
    execution_failure_criteria: [critical]
    inherits_parent: true
    period: workhours
  - {master: {host: db1.ladc1}, dependent: [{host: web1.ladc1}, {host: web2.ladc1}]}
  - {master: {host: db9.nydc1, service: MySQL}, dependent: {servicegroups: [shop]},
     notification_failure_criteria: [none]}
"""}))
    where = lambda line: Where(str(tmp_path / "objects" / "a.yaml"), line)  # noqa: E731
    mysql = ("db1.ladc1", "MySQL")
    assert objs.dependencies[("web2.ladc1", "Shop")] == (
        Dependency(mysql, ("web2.ladc1", "Shop"), frozenset({"critical", "unknown"}), frozenset({"critical"}),
                   True, "workhours", where(17)),
        Dependency(("db9.nydc1", "MySQL"), ("web2.ladc1", "Shop"), frozenset(), frozenset(), False, None,
                   where(23)))
    assert objs.dependencies[("web1.ladc1", None)] == (
        Dependency(("db1.ladc1", None), ("web1.ladc1", None), frozenset({"down", "unreachable"}), where=where(22)),)
    assert set(objs.dependencies) == {("web1.ladc1", "Shop"), ("web2.ladc1", "Shop"), ("web1.ladc1", None),
                                      ("web2.ladc1", None)}
    assert objs.services[mysql].notify.first_notification_delay == 300
    assert objs.services[("web1.ladc1", "Shop")].notify.first_notification_delay == 0


@pytest.mark.parametrize("dependencies, line, words", [
    ("  - {master: {host: db1.ladc, service: MySQL}, dependent: {host: web1.ladc1, service: Shop}}\n", 17,
     ["master: undefined host 'db1.ladc'", 'did you mean "db1.ladc1"']),
    ("  - {master: {host: db1.ladc1, service: MySQl}, dependent: {host: web1.ladc1, service: Shop}}\n", 17,
     ["master: host 'db1.ladc1' has no service 'MySQl'", 'did you mean "MySQL"']),
    ("  - {master: {host: db1.ladc1, service: MySQL}}\n", 17, ["dependency without dependent: add e.g."]),
    ("  - {master: {host: db1.ladc1, service: MySQL}, dependent: {host: web1.ladc1, service: Shop},\n"
     "     notification_failure_criteria: [down]}\n", 18,
     ["'down' is not a state of service db1.ladc1/MySQL (the master)", "use ok, warning, critical, unknown"]),
    ("  - {master: {host: web1.ladc1, service: Shop}, dependent: {host: db1.ladc1, service: MySQL}}\n"
     "  - {master: {host: db1.ladc1, service: MySQL}, dependent: {host: web1.ladc1, service: Shop}}\n", 18,
     ["cycle in notification dependencies: db1.ladc1/MySQL -> web1.ladc1/Shop -> db1.ladc1/MySQL"]),
    ("  - {master: {host: db9.nydc1, service: MySQL}, dependent: {host: web1.ladc1, service: Shop},\n"
     "     execution_failure_criteria: [critical]}\n", 18,
     ["execution_failure_criteria across sites: web1.ladc1/Shop (ladc1) would wait for db9.nydc1/MySQL (nydc1)",
      "drop execution_failure_criteria"]),
    ("  - {master: {host: db1.ladc1}, dependent: {host: web1.ladc1}, period: workhour}\n", 17,
     ["undefined timeperiod 'workhour'", 'did you mean "workhours"']),
])
def test_dependency_mistakes(tmp_path: Path, dependencies: str, line: int, words: list[str]) -> None:
    assert_error(tmp_path, {"a.yaml": BASE + "dependencies:\n" + dependencies}, "a.yaml", line, *words)
