"""The packaging files that must follow the code: the man page names every
command, the Debian version is the Python one, and the example node files are
the ones the units start. Fast; tests/test_package.py builds and runs the real thing."""

from __future__ import annotations

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


def split_like_the_build(tmp_path: Path) -> tuple[Path, Path]:
    """checkd's and checkd-central's dist-packages as debian/rules makes them, from the checkout."""
    poller, central = tmp_path / "checkd", tmp_path / "checkd-central"
    site = "usr/lib/python3/dist-packages/"
    for line in (REPO / "debian/checkd.install").read_text().splitlines():
        if line.startswith(site) and not line.endswith(".dist-info"):
            source = REPO / line[len(site):]
            target = poller / line[len(site):]
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
    shutil.copytree(REPO / "central", central / "central", ignore=shutil.ignore_patterns("__pycache__"))
    for path in (poller / "central").rglob("*"):
        if path.is_file():
            (central / path.relative_to(poller)).unlink()
    return poller, central


def check_split(poller: Path, central: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "debian/check-split"), str(poller), str(central)],
                          capture_output=True, text=True, timeout=60)


def test_checkd_package_has_every_central_module_the_poller_and_cli_import(tmp_path: Path) -> None:
    poller, central = split_like_the_build(tmp_path)
    done = check_split(poller, central)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (central / "central/main.py").is_file() and not (poller / "central/main.py").exists()


def test_split_check_names_a_module_left_in_checkd_central(tmp_path: Path) -> None:
    poller, central = split_like_the_build(tmp_path)
    shutil.move(poller / "central/events.py", central / "central/events.py")
    done = check_split(poller, central)
    assert done.returncode == 1
    assert "checkd/autonomy.py imports central.events, which only checkd-central ships" in done.stdout
