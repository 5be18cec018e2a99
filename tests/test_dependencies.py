"""A dependency end to end: real central and poller processes, checks reading their state
from files the test writes, aiosmtpd receiving the mail. The shop's page waits while the
database it depends on is CRITICAL and goes out once the database is back and the shop
still fails. (The rules, timeline by timeline: tests/test_engine.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.state_checks import OBJECTS as STATE_CHECKS
from tests.state_checks import Site, running_site

# Beside state_checks' database checks: MySQL (state file `db`), and the shop on web1 (`shop`)
# that depends on it.
OBJECTS = STATE_CHECKS.replace("hosts:\n", """\
templates:
  - {{name: quick, interval: 0.5s, retry_interval: 0.3s, max_attempts: 2, contacts: [ops]}}
hosts:
  - {{name: web1.ladc1, address: 127.0.0.1, contacts: [ops]}}
""") + """\
  - {{host: db1.ladc1, description: MySQL, command: "from_file!db", use: quick}}
  - {{host: web1.ladc1, description: Shop, command: "from_file!shop", use: quick}}
dependencies:
  - {{master: {{host: db1.ladc1, service: MySQL}}, dependent: {{host: web1.ladc1, service: Shop}},
     notification_failure_criteria: [critical]}}
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from running_site(tmp_path, objects=OBJECTS, files=("repl", "backup", "db", "shop"))


def arrived(site: Site, mail: Any) -> float:
    return site.sink.arrival[site.sink.messages.index(mail)]


def test_the_shop_is_paged_after_its_database_recovers_not_while_it_is_critical(site: Site) -> None:
    site.central.start()
    site.start_poller()
    wait_for(lambda: all(s["last_check"] for s in site.central.get("/api/v1/status")["services"]), 20,
             "central's first results")
    site.set("db", 2)
    [db_problem] = wait_for(lambda: site.mails("PROBLEM", "MySQL"), 20, "the database's page")
    site.set("shop", 2)                 # the database took the shop down
    wait_for(lambda: site.problems("Shop"), 10, "the shop's problem at central")
    time.sleep(1.5)                     # three more checks of each, and a second of ticks
    assert site.mails("PROBLEM", "Shop") == [], "paged for the shop while its database is CRITICAL"
    assert site.problems("Shop")

    site.set("db", 0)
    [db_back] = wait_for(lambda: site.mails("RECOVERY", "MySQL"), 20, "the database's recovery")
    [shop] = wait_for(lambda: site.mails("PROBLEM", "Shop"), 10, "the shop's page once the database is back")
    assert shop["Subject"].startswith("web1.ladc1/Shop CRITICAL [ID#:")
    assert arrived(site, shop) >= arrived(site, db_back) > arrived(site, db_problem)
    assert [m["Subject"] for m in site.sink.messages if "Shop" in m["Subject"]] == [shop["Subject"]], \
        "told once, and no recovery of a problem nobody heard of"
