"""The packaging files that must follow the code: the man page names every
command, the Debian version is the Python one, and the example node files are
the ones the units start. Fast; tests/test_package.py builds and runs the real thing."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

from checkd.cli import COMMANDS
from tests.helpers import REPO


def test_man_page_names_every_command() -> None:
    page = (REPO / "docs/checkd.1").read_text()
    described = set(re.findall(r"^\.B[IR]? \"?([a-z][a-z-]*)", page.replace("\\-", "-"), re.MULTILINE))
    assert set(COMMANDS) <= described, f"add to docs/checkd.1: {sorted(set(COMMANDS) - described)}"


def test_debian_version_is_the_python_version() -> None:
    changelog = (REPO / "debian/changelog").read_text().splitlines()[0]
    setup = re.search(r"^version = (\S+)$", (REPO / "setup.cfg").read_text(), re.MULTILINE)
    assert setup is not None
    assert changelog.startswith(f"checkd ({setup.group(1)}) "), (changelog, setup.group(1))


def test_units_start_the_installed_example_node_files() -> None:
    install = (REPO / "debian/checkd.install").read_text() + (REPO / "debian/checkd-central.install").read_text()
    for role in ("poller", "central"):
        text = (REPO / f"contrib/systemd/checkd-{role}.service").read_text()
        assert f"ExecStart=/usr/bin/checkd {role} -c /etc/checkd/{role}.yaml\n" in text
        assert f"contrib/systemd/checkd-{role}.service lib/systemd/system" in install
        assert f"contrib/etc/{role}.yaml etc/checkd" in install
        node = (REPO / f"contrib/etc/{role}.yaml").read_text()
        assert node.lstrip("# \n").startswith("checkd") and f"\n{role}:\n" in node


def check_split(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "debian/check-split"), str(root)],
                          capture_output=True, text=True, timeout=60)


def test_nothing_under_checkd_imports_central() -> None:
    # The checkd .deb (every poller host) ships the checkd package whole and no central.
    done = check_split(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    install = (REPO / "debian/checkd.install").read_text()
    assert "dist-packages/checkd\n" in install and "dist-packages/central" not in install


def test_split_check_names_a_checkd_module_that_imports_central(tmp_path: Path) -> None:
    shutil.copytree(REPO / "checkd", tmp_path / "checkd", ignore=shutil.ignore_patterns("__pycache__"))
    poller = tmp_path / "checkd/poller.py"
    poller.write_text(poller.read_text() + "\n\ndef later() -> None:\n    from central.app import Central\n")
    cli = tmp_path / "checkd/cli.py"
    cli.write_text(cli.read_text() + '\n\n@command("x", "y", "central.bot")\ndef _(p): pass\n')
    done = check_split(tmp_path)
    assert done.returncode == 1
    assert "checkd/poller.py imports central.app: the checkd package never imports central" in done.stdout
    assert "checkd/cli.py imports central.bot" in done.stdout


def test_every_source_folder_is_a_package() -> None:
    # setup.cfg's packages = find: skips a folder without __init__.py, so the
    # installed .deb would lack it while the checkout (namespace import) works.
    missing = [str(d.relative_to(REPO)) for top in ("checkd", "central")
               for d in [REPO / top, *(REPO / top).rglob("*")]
               if d.is_dir() and any(d.glob("*.py")) and not (d / "__init__.py").exists()]
    assert not missing, f"add an __init__.py to: {missing}"


def test_no_two_classes_share_a_name() -> None:
    # A traceback, a log line or a grep names a class: it must point at one place.
    seen: dict[str, list[str]] = {}
    for top in ("checkd", "central"):
        for path in sorted((REPO / top).rglob("*.py")):
            for node in ast.parse(path.read_text(), str(path)).body:
                if isinstance(node, ast.ClassDef):
                    seen.setdefault(node.name, []).append(str(path.relative_to(REPO)))
    shared = {name: where for name, where in seen.items() if len(where) > 1}
    assert not shared, f"rename one of each: {shared}"
