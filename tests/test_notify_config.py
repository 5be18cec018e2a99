"""Notification settings as check-config sees them, and who is told (recipients)."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

from checkd.engine.notify import recipients as rc
from checkd.engine.notify.notification import Kind
from checkd.config import load_objects
from tests.central_proc import write_config
from tests.helpers import REPO
from tests.notify_env import node_extra, objects


def check_config(node: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checkd", "check-config", "-c", str(node)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_a_broken_template_override_is_named_with_file_and_line(tmp_path):
    node = write_config(tmp_path, 8080, objects=objects(), extra=node_extra(2525))
    assert check_config(node).returncode == 0
    override = tmp_path / "templates" / "email"
    override.mkdir(parents=True)
    (override / "notification.txt.j2").write_text("Hello\n{{ n.subject }\n")
    out = check_config(node)
    assert out.returncode == 1
    assert f"{override / 'notification.txt.j2'}:2: email template:" in out.stderr


def test_a_missing_templates_directory_is_refused(tmp_path):
    node = write_config(tmp_path, 8080, objects=objects(), extra=node_extra(2525, notify="templates: nowhere"))
    out = check_config(node)
    assert out.returncode == 1
    assert f"{node}:" in out.stderr and "notify: templates: directory" in out.stderr and "nowhere" in out.stderr


def test_levels_audience_and_options(tmp_path):
    (tmp_path / "o.yaml").write_text(objects())
    objs = load_objects(tmp_path)
    svc = objs.services[("db1.ladc1", "Mysql Health Slave Check")]
    levels = rc.levels(objs, svc.notify)
    assert [(lv.number, lv.after, lv.contacts) for lv in levels] == [(1, 0.0, ("ops", "night")), (2, 4.0, ("boss",))]
    now = datetime.datetime(2026, 11, 26, 3, 0).timestamp()
    assert [(c.name, lvl) for c, lvl in rc.audience(objs, levels, 2, now)] == [("ops", 1), ("night", 1), ("boss", 2)]
    night = objs.contacts["night"]
    assert not rc.reachable(objs, night, Kind.PROBLEM, "x", 2, now)        # period `never`
    ops = objs.contacts["ops"]
    assert rc.reachable(objs, ops, Kind.PROBLEM, "x", 2, now)
    assert rc.reachable(objs, ops, Kind.RECOVERY, None, 0, now)
    assert rc.option_for(Kind.PROBLEM, None, 1) == "down" and rc.option_for(Kind.PROBLEM, "x", 1) == "warning"


def test_subject_tags_and_sub_addresses_are_checked_with_file_and_line(tmp_path):
    good = write_config(tmp_path, 8080, objects=objects(ops_email="ops+{label}@example.com"),
                        extra=node_extra(2525, email='subject: "[checkd {label} {site}] {subject}"'))
    assert check_config(good).returncode == 0, check_config(good).stderr
    node = write_config(tmp_path, 8080, objects=objects(), extra=node_extra(2525, email='subject: "{subject} {lable}"'))
    out = check_config(node)
    assert out.returncode == 1
    email_line = next(i for i, line in enumerate(node.read_text().splitlines(), 1) if "subject:" in line)
    assert (f'{node}:{email_line}: email: subject: unknown placeholder {{lable}} (did you mean "label"?); '
            "known: {subject}, {label}, {type}, {state}, {site}") in out.stderr
    node = write_config(tmp_path, 8080, objects=objects(ops_email="ops@{label}.example.com"), extra=node_extra(2525))
    out = check_config(node)
    assert out.returncode == 1
    objects_file = tmp_path / "objects" / "objects.yaml"
    ops_line = next(i for i, line in enumerate(objects_file.read_text().splitlines(), 1) if "name: ops" in line)
    assert (f"{objects_file}:{ops_line}: email: put {{label}} before the @, e.g. ops+{{label}}@example.com "
            "(a sub-address)") in out.stderr
    node = write_config(tmp_path, 8080, objects=objects(), extra=node_extra(2525, email='subject: "[checkd {label}]"'))
    assert "email: subject: must contain {subject}" in check_config(node).stderr
