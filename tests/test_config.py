"""`checkd check-config` reports every mistake as FILE:LINE: ... and exits 1."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from checkd.config import ConfigError, load_node
from checkd.config.model import CommandKind

REPO = Path(__file__).resolve().parents[1]

BASE = """commands:
  check_dummy: "$PLUGINDIR$/check_dummy $ARG1$ '$ARG2$'"
  check_tcp: "$PLUGINDIR$/check_tcp -H $HOSTADDRESS$ -p $ARG1$"
contacts:
  - {name: ops, email: ops@example.com}
templates:
  - {name: generic, interval: 5m, retry_interval: 1m, max_attempts: 3}
hosts:
  - {name: db1.ladc1, address: 10.0.0.1}
  - {name: web1.ladc1, address: 10.0.0.2}
"""


POLLER = """\
poller:
  name: poller-ladc1
  site: ladc1
  central: http://127.0.0.1:8080
  token: secret
  state_dir: state
  objects: objects
"""


def write_tree(tmp: Path, objects: dict[str, str], node: str | None = None) -> Path:
    (tmp / "objects").mkdir()
    for name, text in objects.items():
        (tmp / "objects" / name).write_text(textwrap.dedent(text))
    node_file = tmp / "poller.yaml"
    node_file.write_text(node or POLLER)
    return node_file


def check_config(node_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checkd", "check-config", "-c", str(node_file)],
                          capture_output=True, text=True, timeout=60)


def assert_error(tmp: Path, objects: dict[str, str], file: str, line: int, *words: str) -> str:
    """Run the real CLI; the error must name FILE:LINE and contain `words`."""
    result = check_config(write_tree(tmp, objects))
    assert result.returncode == 1, result.stdout + result.stderr
    wanted = f"{tmp / 'objects' / file}:{line}: "
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(wanted)]
    assert lines, f"no error at {wanted} in:\n{result.stderr}"
    assert any(all(w in ln for w in words) for ln in lines), result.stderr
    return result.stderr


def test_shipped_example_configuration_is_accepted() -> None:
    for node in ("central.yaml", "poller-ladc1.yaml", "poller-nydc1.yaml"):
        result = check_config(REPO / "conf.d" / node)
        assert result.returncode == 0, result.stderr
        assert "OK:" in result.stdout


def test_valid_configuration_loads_into_objects(tmp_path: Path) -> None:
    node_file = write_tree(tmp_path, {"a.yaml": BASE + """
services:
  - {hosts: [db1.ladc1, web1.ladc1], description: Port, command: "check_tcp!3306", use: generic,
     interval: 0.5s, contacts: [ops]}
  - {host: db1.ladc1, description: Load, command: {exec: "/bin/echo $ARG1$"}}
"""})
    node, objs = load_node(node_file)
    assert node.role == "poller" and node.site == "ladc1"
    svc = objs.services[("db1.ladc1", "Port")]
    assert svc.schedule.interval == 0.5 and svc.schedule.retry_interval == 60 and svc.schedule.max_attempts == 3
    assert svc.check.command.name == "check_tcp" and svc.check.args == ("3306",)
    assert objs.hosts["db1.ladc1"].site == "ladc1"
    assert objs.services[("db1.ladc1", "Load")].check.command.kind is CommandKind.EXEC
    assert len(objs.services_of_site("ladc1")) == 3


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE + """
services:
  - host: db1.ladc1
    description: Port
    command: check_tcp!3306
    retry_intervall: 1m
"""}, "a.yaml", 16, "unknown key 'retry_intervall'", 'did you mean "retry_interval"')


def test_missing_template(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE + """
services:
  - {host: db1.ladc1, description: Port, command: "check_tcp!3306", use: generik}
"""}, "a.yaml", 13, "unknown template 'generik'", 'did you mean "generic"')


def test_undefined_command(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE + """
services:
  - {host: db1.ladc1, description: Port, command: "check_tpc!3306"}
"""}, "a.yaml", 13, "undefined command 'check_tpc'", 'did you mean "check_tcp"')


def test_undefined_contact_in_another_file(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE, "b.yaml": """
services:
  - {host: db1.ladc1, description: Port, command: "check_tcp!3306", contacts: [opps]}
"""}, "b.yaml", 3, "undefined contact 'opps'", 'did you mean "ops"')


def test_duplicate_service_names_the_first(tmp_path: Path) -> None:
    stderr = assert_error(tmp_path, {"a.yaml": BASE + """
services:
  - {host: db1.ladc1, description: Port, command: "check_tcp!3306"}
  - {hosts: [web1.ladc1, db1.ladc1], description: Port, command: "check_tcp!3307"}
"""}, "a.yaml", 14, "duplicate service ('db1.ladc1', 'Port')")
    assert "first defined at" in stderr and "a.yaml:13" in stderr


def test_cycle_in_templates(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE, "b.yaml": """
templates:
  - {name: t1, use: t2}
  - {name: t2, use: t1}
services:
  - {host: db1.ladc1, description: Port, command: "check_tcp!3306", use: t1}
"""}, "b.yaml", 3, "template cycle: t1 -> t2 -> t1")


def test_cycle_in_parents(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE + """
  - {name: sw1.ladc1, parents: [sw2.ladc1]}
  - {name: sw2.ladc1, parents: [sw1.ladc1]}
"""}, "a.yaml", 13, "cycle in parents: sw1.ladc1 -> sw2.ladc1 -> sw1.ladc1")


def test_bad_duration(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE + """
services:
  - {host: db1.ladc1, description: Port, command: "check_tcp!3306", interval: 5 minutes}
"""}, "a.yaml", 13, "interval: bad duration '5 minutes'", "write e.g.")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    assert_error(tmp_path, {"a.yaml": BASE + """
services:
  - {host: db1.ladc1, description: Port, command: "check_tcp!3306"
  - {host: db1.ladc1
"""}, "a.yaml", 14, "YAML syntax error")


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    result = check_config(write_tree(tmp_path, {"a.yaml": BASE + """
services:
  - {host: db9.ladc1, description: A, command: "check_tcp!1"}
  - {host: db1.ladc1, description: B, command: "nope!1", timeout: -3s}
  - {host: db1.ladc1, description: C, command: "check_tcp!1", max_attempts: 0}
"""}))
    assert result.returncode == 1
    assert "undefined host 'db9.ladc1'" in result.stderr
    assert "undefined command 'nope'" in result.stderr
    assert "max_attempts" in result.stderr and "3 problem" in result.stderr or "4 problem" in result.stderr


@pytest.mark.parametrize("snippet, words", [
    ("hosts:\n  - {name: lonely, address: 1.2.3.4}\n", "has no site"),
    ("hostz: []\n", 'did you mean "hosts"'),
    ("commands:\n  x: {exec: /bin/true, ssh: /bin/true}\n", "exactly one of exec:, embedded:, ssh:"),
    ("commands:\n  x: \"$PLUGINDIR$/check_x -p $USER7$\"\n", "unknown macro $USER7$"),
    ("commands:\n  x: {embedded: no_such_plugin}\n", "embedded plugin 'no_such_plugin' not found"),
    ("timeperiods:\n  - {name: t, monday: \"9-17\"}\n", "bad time range"),
    ("hosts:\n  - {name: h.ladc1, ssh: {known_hosts: none}}\n", "host key checking cannot be turned off"),
])
def test_other_mistakes(tmp_path: Path, snippet: str, words: str) -> None:
    result = check_config(write_tree(tmp_path, {"z.yaml": snippet}))
    assert result.returncode == 1
    assert words in result.stderr and str(tmp_path / "objects" / "z.yaml") + ":" in result.stderr


def test_node_file_mistakes_name_the_node_file(tmp_path: Path) -> None:
    node_file = write_tree(tmp_path, {"a.yaml": BASE}, node="poller:\n  nmae: x\n  objects: objects\n  state_dir: s\n")
    result = check_config(node_file)
    assert result.returncode == 1
    assert f"{node_file}:2: unknown key 'nmae' in poller (did you mean \"name\"?)" in result.stderr
    assert "missing `site: ...`" in result.stderr


def load_error(node_file: Path) -> str:
    """What load_node refuses `node_file` with."""
    with pytest.raises(ConfigError) as e:
        load_node(node_file)
    return str(e.value)


def test_config_error_lists_problems_sorted(tmp_path: Path) -> None:
    node_file = write_tree(tmp_path, {"a.yaml": "services: 3\n"})
    with pytest.raises(ConfigError) as e:
        load_node(node_file)
    assert str(e.value).startswith(str(tmp_path / "objects" / "a.yaml") + ":1: services: expected a list")


@pytest.mark.parametrize("section, words", [
    ("email: {from: c@example.com}", "email: give smtp_host (an SMTP relay) or maildir"),
    ("email: {smtp_host: 127.0.0.1, from: c@example.com, starttls: true, tls: true}", "starttls and tls exclude"),
    ("email: {smtp_host: 127.0.0.1, from: c@example.com, username: u}", "username and password"),
    ("email: {smtp_host: 127.0.0.1}", "missing `from:"),
    ("jabber: {jid: bot@localhost}", "jabber: needs jid and password"),
    ("email: {smtp_host: 127.0.0.1, from: c@example.com, smtp_prot: 25}", 'did you mean "smtp_port"'),
])
def test_channel_settings_are_checked_at_load(tmp_path: Path, section: str, words: str) -> None:
    node = ("central:\n  listen: 127.0.0.1:8080\n  state_dir: s\n  objects: objects\n"
            f"  {section}\n")
    node_file = write_tree(tmp_path, {"a.yaml": BASE}, node=node)
    result = check_config(node_file)
    assert result.returncode == 1
    assert f"{node_file}:5: " in result.stderr and words in result.stderr, result.stderr


def test_event_handler_mistakes_name_their_lines(tmp_path: Path) -> None:
    node = POLLER + "  event_handlers: {timeout: 10s,\n                   global_service: restart_al}\n"
    node_file = write_tree(tmp_path, {"a.yaml": BASE, "b.yaml": """\
commands:
  restart_all: "/bin/true"
templates:
  - {name: handled, event_handler: "restart_it!1", event_handler_enabled: false}
services:
  - {host: db1.ladc1, description: A, command: "check_tcp!1", use: handled}
"""}, node=node)
    b_yaml = tmp_path / "objects" / "b.yaml"
    # Inherited from the template: reported where the template sets it.
    assert f"{b_yaml}:4: undefined command 'restart_it'" in load_error(node_file)
    b_yaml.write_text(b_yaml.read_text().replace("restart_it!1", "restart_all!1"))
    assert load_error(node_file) == (f"{node_file}:9: event_handlers: global_service: undefined command 'restart_al' "
                                     f"(did you mean \"restart_all\"?); define it under commands: in the "
                                     f"objects ({tmp_path / 'objects'})")
    node_file.write_text(node.replace("restart_al}", "restart_all!x}"))
    _, objs = load_node(node_file)
    svc = objs.services["db1.ladc1", "A"]
    assert svc.event_handler is not None and svc.event_handler.command.name == "restart_all"
    assert svc.event_handler.args == ("1",) and svc.event_handler_enabled is False


def test_mistakes_deep_in_a_big_object_file_name_their_lines(tmp_path: Path) -> None:
    """A generated file of 10,000 services is read from the YAML event stream: each
    mistake still names its own line, and nothing is checked before all are reported."""
    lines = [BASE, "services:\n"]
    lines += [f"  - {{host: db1.ladc1, description: s{i}, command: check_dummy!0!ok, interval: 1m}}\n"
              for i in range(10000)]
    lines[2 + 6789] = "  - {host: db1.ladc1, description: s6789, command: check_dummy!0!ok, interval: soon}\n"
    lines[2 + 9000] = "  - {host: db1.ladc1, description: s9000, command: check_dumy, interval: 1m, interval: 2m}\n"
    node_file = write_tree(tmp_path, {"big.yaml": "".join(lines)})
    first = BASE.count("\n") + 2                        # the line of s0
    result = check_config(node_file)
    assert result.returncode == 1
    where = tmp_path / "objects" / "big.yaml"
    assert f"{where}:{first + 9000}: duplicate key 'interval'" in result.stderr
    with pytest.raises(ConfigError) as e:               # the same file without the duplicate key
        (tmp_path / "objects" / "big.yaml").write_text("".join(lines).replace(", interval: 2m}", "}"))
        load_node(node_file)
    problems = [(p.line, p.message) for p in e.value.problems]
    assert [line for line, _ in problems] == [first + 6789, first + 9000], problems
    assert "bad duration 'soon'" in problems[0][1] and 'did you mean "check_dummy"' in problems[1][1]


def test_a_repeated_service_definition_is_read_once_with_each_entrys_mistakes(tmp_path: Path) -> None:
    """Entries that differ only in host and description share what the rest says (read once,
    config/load.py); each entry's own mistakes still name its line, and values that Python
    holds equal but YAML does not (1, 1.0, true) are not shared."""
    lines = [BASE, "services:\n"]
    lines += [f"  - {{host: db1.ladc1, description: s{i}, command: check_dummy!0!ok, max_attempts: 1}}\n"
              for i in range(6)]
    lines[2 + 2] = "  - {host: db9.ladc1, description: s2, command: check_dummy!0!ok, max_attempts: 1}\n"
    lines[2 + 3] = "  - {host: db1.ladc1, description: '', command: check_dummy!0!ok, max_attempts: 1}\n"
    lines[2 + 4] = "  - {host: db1.ladc1, description: s4, command: check_dummy!0!ok, max_attempts: true}\n"
    node_file = write_tree(tmp_path, {"gen.yaml": "".join(lines)})
    first = BASE.count("\n") + 2
    with pytest.raises(ConfigError) as e:
        load_node(node_file)
    problems = [(p.line, p.message) for p in e.value.problems]
    assert [line for line, _ in problems] == [first + 2, first + 3, first + 4], problems
    assert "undefined host 'db9.ladc1'" in problems[0][1] and 'did you mean "db1.ladc1"' in problems[0][1]
    assert "service without a description" in problems[1][1]
    assert "max_attempts" in problems[2][1]
    (tmp_path / "objects" / "gen.yaml").write_text("".join(
        [BASE, "services:\n"] + [f"  - {{host: {h}, description: s{i}, command: check_dummy!0!ok, max_attempts: 2}}\n"
                                 for i, h in enumerate(["db1.ladc1", "web1.ladc1", "db1.ladc1"])]))
    _, objs = load_node(node_file)
    assert sorted(objs.services) == [("db1.ladc1", "s0"), ("db1.ladc1", "s2"), ("web1.ladc1", "s1")]
    s0, s1 = objs.services[("db1.ladc1", "s0")], objs.services[("web1.ladc1", "s1")]
    assert (s1.host, s1.description, s1.where.line) == ("web1.ladc1", "s1", first + 1)
    assert s0.schedule == s1.schedule and s0.schedule.max_attempts == 2 and s0.check == s1.check


def test_plain_words_are_what_pyyaml_makes_of_them(tmp_path: Path) -> None:
    """A plain scalar whose first character no implicit resolver of PyYAML claims is taken as
    its text without asking the resolver (yamlsource._resolved); every other one is resolved.
    Both readers (one-line entries and the event stream) agree with yaml.safe_load."""
    import yaml

    from checkd.config.yamlsource import load_yaml
    firsts = "ABFLNOTYZabfnotyz019_/$"
    rests = ["", "rue", "alse", "es", "ES", "o", "O", "n", "N", "ff", "FF", "ull", "ULL", "x1F", "b101", "e3",
             ".5", "_000", "024-01-01", "2", "1.bench", "!1"]
    words = [f + r for f in firsts for r in rests]
    one_line = "hosts:\n" + "".join(f"  - {{name: n{i}, v: {w}}}\n" for i, w in enumerate(words))
    block = "hosts:\n" + "".join(f"  - name: n{i}\n    v: {w}\n" for i, w in enumerate(words))
    for text in (one_line, block):
        path = tmp_path / "a.yaml"
        path.write_text(text)
        got = [(e["v"], type(e["v"])) for e in load_yaml(path)["hosts"]]
        want = [(e["v"], type(e["v"])) for e in yaml.safe_load(text)["hosts"]]
        assert got == want
    assert {t for _, t in got} >= {str, bool, int, float, type(None)}


def test_anchors_and_merge_keys_are_read(tmp_path: Path) -> None:
    """Files using anchors and `<<:` merge keys (read by PyYAML's own composer) still load,
    and still point at the right lines."""
    node_file = write_tree(tmp_path, {"a.yaml": BASE + """\
defaults: &defaults {interval: 2m, max_attempts: 5}
services:
  - {<<: *defaults, host: db1.ladc1, description: Load, command: "check_dummy!0!ok"}
  - {<<: *defaults, host: db1.ladc1, description: Disk, command: "check_dummy!0!ok", retry: 1m}
"""})
    with pytest.raises(ConfigError) as e:
        load_node(node_file)
    assert [(p.line, p.message.split(" in ")[0]) for p in e.value.problems] == [
        (11, "unknown section 'defaults'"), (14, "unknown key 'retry'")], e.value.problems


def test_one_line_entries_read_as_yaml_says(tmp_path: Path) -> None:
    """Lists of one-line entries are read without the YAML parser (config/yamlflow.py): the
    values keep YAML's types, and what follows them keeps its lines."""
    from checkd.config.yamlsource import load_yaml
    path = tmp_path / "a.yaml"
    path.write_text("hosts:\n"
                    "  - {name: a, address: yes, x: null, y: 0x1F, z: 1_000, w: 1.5, v: a~b, u: off, t: 10.0s}\n"
                    "\n"
                    "  - {name: b c!1, on: 2}\n"
                    "services:\n"
                    "- {host: a}\n"
                    "other: {k: [1, 2]}\n")
    doc = load_yaml(path)
    assert doc["hosts"][0] == {"name": "a", "address": True, "x": None, "y": 31, "z": 1000, "w": 1.5, "v": "a~b",
                               "u": False, "t": "10.0s"}
    assert doc["hosts"][1] == {"name": "b c!1", True: 2} and doc["hosts"][1].line == 4
    assert (doc.line_of("services"), doc["services"].line, doc.line_of("other")) == (5, 6, 7)
    path.write_text("hosts:\n  - {name: a}\n  - {name: b, name: c}\n")
    with pytest.raises(ConfigError, match=r"a.yaml:3: duplicate key 'name' \(first at line 3\)"):
        load_yaml(path)
