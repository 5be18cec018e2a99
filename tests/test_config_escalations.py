"""Escalations in the objects config: loaded into Notify, mistakes reported as FILE:LINE."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkd.config import load_node
from checkd.config.model import Escalation, Where
from tests.test_config import assert_error, check_config, write_tree

BASE = """commands:
  check_tcp: "$PLUGINDIR$/check_tcp -H $HOSTADDRESS$ -p $ARG1$"
contacts:
  - {name: ops, email: ops@example.com}
  - {name: boss, email: boss@example.com, webhook: "https://hooks.example.com/checkd"}
contact_groups:
  - {name: managers, members: [boss]}
timeperiods:
  - {name: workhours, monday: "09:00-17:00"}
hosts:
  - {name: db1.ladc1, address: 10.0.0.1}
"""


def test_escalations_load_in_order_with_their_defaults(tmp_path: Path) -> None:
    node_file = write_tree(tmp_path, {"a.yaml": BASE + """
templates:
  - name: escalating
    escalations:
      - {after: 10m, contacts: [boss]}
      - {after: 1h, contact_groups: managers, every: 30m, period: workhours}
services:
  - {host: db1.ladc1, description: Port, command: "check_tcp!3306", contacts: [ops], use: escalating}
  - host: db1.ladc1
    description: Web
    command: "check_tcp!80"
    escalations:
      - after: 90s
        contacts: [ops, boss]
"""})
    assert check_config(node_file).returncode == 0
    _, objs = load_node(node_file)
    file = str(tmp_path / "objects" / "a.yaml")
    port = objs.services[("db1.ladc1", "Port")].notify
    assert port.contacts == ("ops",)
    assert port.escalations == (
        Escalation(after=600, contacts=("boss",), where=Where(file, 16)),
        Escalation(after=3600, contact_groups=("managers",), every=1800, period="workhours", where=Where(file, 17)),
    )
    web = objs.services[("db1.ladc1", "Web")].notify
    assert web.escalations == (Escalation(after=90, contacts=("ops", "boss"), where=Where(file, 24)),)
    assert objs.hosts["db1.ladc1"].notify.escalations == ()
    assert objs.contacts["boss"].webhook == "https://hooks.example.com/checkd"


def test_hosts_take_escalations_too(tmp_path: Path) -> None:
    _, objs = load_node(write_tree(tmp_path, {"a.yaml": BASE + """
  - {name: db2.ladc1, escalations: [{after: 5m, contact_groups: [managers]}]}
"""}))
    assert objs.hosts["db2.ladc1"].notify.escalations[0].contact_groups == ("managers",)


def service_with(escalations: str) -> dict[str, str]:
    """BASE plus one service whose escalations start on line 14."""
    return {"a.yaml": BASE + """services:
  - host: db1.ladc1
    description: Port
    command: "check_tcp!3306"
    escalations:
""" + escalations}


@pytest.mark.parametrize("escalations, line, words", [
    ("      - {after: 10 minutes, contacts: [ops]}\n", 17, ["after: bad duration '10 minutes'"]),
    ("      - {after: 10m, contacts: [ops], every: -5m}\n", 17, ["every: bad duration"]),
    ("      - {contacts: [ops]}\n", 17, ["escalation without after"]),
    ("      - {after: 10m}\n", 17, ["escalation names no one"]),
    ("      - {after: 10m, contacts: [ops], evry: 5m}\n", 17, ["unknown key 'evry'", 'did you mean "every"']),
    ("      - {after: 1h, contacts: [ops]}\n      - {after: 30m, contacts: [boss]}\n", 18,
     ["after 30m must be later than the level before (1h)"]),
    ("      - {after: 10m, contacts: [bos]}\n", 17, ["undefined contact 'bos'", 'did you mean "boss"', "in escalation"]),
    ("      - {after: 10m, contact_groups: [manager]}\n", 17,
     ["undefined contact group 'manager'", 'did you mean "managers"', "in escalation"]),
    ("      - {after: 10m, contacts: [ops], period: workhour}\n", 17,
     ["undefined timeperiod 'workhour'", 'did you mean "workhours"', "in escalation"]),
    ("      10m\n", 16, ["escalations: expected a list of mappings"]),
    ("      - ops\n", 17, ["escalations: every entry must be a mapping"]),
])
def test_escalation_mistakes(tmp_path: Path, escalations: str, line: int, words: list[str]) -> None:
    assert_error(tmp_path, service_with(escalations), "a.yaml", line, *words)


def test_escalation_mistakes_in_a_template_point_at_the_template(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE, "t.yaml": """
templates:
  - name: escalating
    escalations:
      - {after: 10m, contacts: [nobody]}
services:
  - {host: db1.ladc1, description: Port, command: "check_tcp!3306", use: escalating}
"""}, "t.yaml", 5, "undefined contact 'nobody' in escalation")


def test_a_webhook_must_be_an_http_url(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE, "b.yaml": """
contacts:
  - {name: chat, webhook: "hooks.example.com/x"}
"""}, "b.yaml", 3, "webhook: expected an http:// or https:// URL")
