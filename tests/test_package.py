"""The Debian packages as an operator gets them: `make deb` builds them (lintian
clean), apt installs checkd alone (a poller host), then both with Debian's
Python libraries; the installed checkd checks /etc/checkd and runs a poller and
central with the system python3 as the checkd user, under the units' ExecStart
and ExecReload; then they are reinstalled and purged.

Needs root (it installs packages and the checkd user on this machine); runs
one at a time per machine (a lock). Outside CI it skips without root or the
build tools; in CI (CI=true) a missing piece fails. `pytest -m "not package"`
leaves it out.
"""

from __future__ import annotations

import configparser
import fcntl
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, free_port, missing, start_server

pytestmark = pytest.mark.package

LOCK = "/run/lock/checkd-package-test.lock"
UNITS = Path("/lib/systemd/system")
# What runs the installed code: Debian's python3 and tools, nothing from a venv or pyenv.
SYSTEM_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
DEBIAN_LIBRARIES = {
    "checkd": ["python3-aiohttp", "python3-yaml", "python3-jinja2", "python3-asyncssh",
               "python3-slixmpp", "python3-aiosmtplib"],
    "checkd-central": ["python3-rrdtool", "python3-uvloop", "python3-slixmpp", "python3-aiosmtplib"],
}


def run(argv: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def must(argv: list[str], timeout: float = 600, **kw) -> str:
    done = run(argv, timeout, **kw)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    return done.stdout


def apt_get(*args: str) -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", *args]
    done = run(argv, env=env)
    if done.returncode != 0 and "install" in args and "Unable to locate" in done.stdout + done.stderr:
        must(["apt-get", "update", "-q"], env=env)      # package lists never fetched on this machine
        done = run(argv, env=env)
    assert done.returncode == 0, f"apt-get {' '.join(args)}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    return done.stdout


def installed(package: str) -> bool:
    out = run(["dpkg-query", "-W", "-f=${Status}", package]).stdout
    return out.endswith(" installed")


def unit(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str              # systemd keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser["Service"]


def reload_lines(name: str) -> list[str]:
    """The unit's ExecReload= command lines, in order (configparser keeps only the last)."""
    return [line.split("=", 1)[1] for line in (UNITS / name).read_text().splitlines()
            if line.startswith("ExecReload=")]


def as_unit_user(service: configparser.SectionProxy, argv: list[str]) -> list[str]:
    """argv run the way the unit runs it: its User/Group, NoNewPrivileges and
    CAP_NET_RAW as the only (ambient) capability, with a clean environment."""
    assert service["NoNewPrivileges"] == "yes" and service["AmbientCapabilities"] == "CAP_NET_RAW"
    return ["setpriv", f"--reuid={service['User']}", f"--regid={service['Group']}", "--init-groups",
            "--no-new-privs", "--inh-caps=+net_raw", "--ambient-caps=+net_raw", "--bounding-set=-all,+net_raw",
            *argv]


@pytest.fixture(scope="module")
def machine() -> Iterator[None]:
    """Root, the build tools, and this machine's package test to ourselves."""
    if os.geteuid() != 0:
        missing("root (the package test installs .deb files)")
    for tool in ("dpkg-buildpackage", "dh", "pybuild", "lintian", "systemd-analyze", "setpriv", "apt-get"):
        if shutil.which(tool, path=SYSTEM_ENV["PATH"]) is None:
            missing(f"{tool} (contrib/install-debian-deps deb)")
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="module")
def debs(machine: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`make deb`: both .deb files, built outside the checkout; lintian fails the build."""
    out = tmp_path_factory.mktemp("deb")
    must(["make", "-s", "-C", str(REPO), "deb", f"DEB_DIR={out}"])
    found = {p.name.split("_")[0]: p for p in out.glob("*.deb")}
    assert set(found) == {"checkd", "checkd-central"}, sorted(out.iterdir())
    return found


@pytest.fixture(scope="module")
def poller_host(debs: dict[str, Path]) -> Iterator[dict[str, Path]]:
    """checkd alone, as on a poller host (after purging any left from before); purged at the end."""
    if installed("checkd") or installed("checkd-central"):
        apt_get("purge", "checkd", "checkd-central")
    apt_get("install", str(debs["checkd"]))
    yield debs
    if installed("checkd") or installed("checkd-central"):
        apt_get("purge", "checkd", "checkd-central")


@pytest.fixture(scope="module")
def system(poller_host: dict[str, Path]) -> dict[str, Path]:
    """Both packages installed by apt."""
    apt_get("install", str(poller_host["checkd"]), str(poller_host["checkd-central"]))
    return poller_host


def test_packages_depend_on_debians_python_libraries(debs: dict[str, Path]) -> None:
    for package, libraries in DEBIAN_LIBRARIES.items():
        depends = must(["dpkg-deb", "-f", str(debs[package]), "Depends"])
        for library in libraries:
            assert library in depends, f"{package} Depends: {depends}"
    assert "monitoring-plugins-basic" in must(["dpkg-deb", "-f", str(debs["checkd"]), "Recommends"])


def test_central_code_is_split_between_the_packages(debs: dict[str, Path]) -> None:
    def files(package: str) -> set[str]:
        listing = must(["dpkg-deb", "-c", str(debs[package])])
        return {line.split()[-1].lstrip(".") for line in listing.splitlines() if not line.endswith("/")}
    poller, central = files("checkd"), files("checkd-central")
    assert not poller & central
    site = "/usr/lib/python3/dist-packages"
    # The alerting engine is checkd's (the poller runs it too); the central daemon is checkd-central's.
    assert {f"{site}/checkd/engine/events.py", f"{site}/checkd/engine/notify/email.py", f"{site}/checkd/poller.py",
            "/usr/lib/checkd/plugins/check_load.py", "/usr/bin/checkd", "/usr/share/checkd/deploy-hook",
            "/lib/systemd/system/checkd-poller.service", "/etc/checkd/poller.yaml"} <= poller
    assert {f"{site}/central/main.py", f"{site}/central/app.py",
            "/lib/systemd/system/checkd-central.service", "/etc/checkd/central.yaml"} <= central


def test_a_poller_host_needs_only_the_checkd_package(poller_host: dict[str, Path]) -> None:
    assert not installed("checkd-central")
    service = unit("checkd-poller.service")
    must(as_unit_user(service, ["/usr/bin/checkd", "check-config", "-c", "/etc/checkd/poller.yaml"]),
         env=SYSTEM_ENV, cwd="/")
    # What the poller imports when it alerts on its own, and the CLI's API client.
    must(["/usr/bin/python3", "-c", "import checkd.poller, checkd.autonomy, checkd.client, checkd.engine.notify.channels"],
         env=SYSTEM_ENV, cwd="/")
    # An embedded plugin from /usr/lib/checkd/plugins and one from monitoring-plugins, as checkd.
    out = must(as_unit_user(service, ["/usr/bin/checkd", "run-checks", "-c", "/etc/checkd/poller.yaml",
                                      "web1.ladc1/Load", "web1.ladc1/Processes"]), env=SYSTEM_ENV, cwd="/")
    assert "LOAD" in out and "PROCS" in out, out
    done = run(["/usr/bin/checkd", "central", "-c", "/etc/checkd/poller.yaml"], env=SYSTEM_ENV, cwd="/")
    assert done.returncode == 1 and "needs the checkd-central package" in done.stderr, done.stderr


def test_installed_user_directories_and_config_modes(system: dict[str, Path]) -> None:
    user = pwd.getpwnam("checkd")
    assert user.pw_uid < 1000 and user.pw_dir == "/var/lib/checkd" and user.pw_shell.endswith("nologin")
    checkd_gid = grp.getgrnam("checkd").gr_gid
    for directory in ("/var/lib/checkd", "/var/spool/checkd"):
        st = os.stat(directory)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, checkd_gid, 0o750), directory
    # Node files and the token may hold secrets: root:checkd 0640, kept across upgrades (statoverride).
    for path in ("/etc/checkd/poller.yaml", "/etc/checkd/central.yaml", "/etc/checkd/poller.token"):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, checkd_gid, 0o640), path
    assert len(Path("/etc/checkd/poller.token").read_text().strip()) == 64
    conffiles = must(["dpkg-query", "-W", "-f=${Conffiles}\n", "checkd", "checkd-central"])
    for path in ("/etc/checkd/poller.yaml", "/etc/checkd/central.yaml", "/etc/checkd/objects/services.yaml"):
        assert path in conffiles


def test_installed_checkd_runs_on_the_system_python(system: dict[str, Path]) -> None:
    assert Path("/usr/bin/checkd").read_text().splitlines()[0] == "#!/usr/bin/python3"
    where = must(["/usr/bin/python3", "-c", "import checkd, central.main, aiohttp; "
                  "print(checkd.__file__, central.main.__file__, aiohttp.__file__)"], env=SYSTEM_ENV, cwd="/")
    assert where.split() == ["/usr/lib/python3/dist-packages/checkd/__init__.py",
                             "/usr/lib/python3/dist-packages/central/main.py",
                             "/usr/lib/python3/dist-packages/aiohttp/__init__.py"]


def test_installed_check_config_accepts_etc_checkd(system: dict[str, Path]) -> None:
    for role in ("poller", "central"):
        service = unit(f"checkd-{role}.service")
        out = must(as_unit_user(service, ["/usr/bin/checkd", "check-config", "-c", f"/etc/checkd/{role}.yaml"]),
                   env=SYSTEM_ENV, cwd="/")
        assert f"/etc/checkd/{role}.yaml ({role}): OK" in out


def test_units_pass_systemd_analyze_verify(system: dict[str, Path]) -> None:
    must(["systemd-analyze", "verify", str(UNITS / "checkd-poller.service"), str(UNITS / "checkd-central.service")],
         env=SYSTEM_ENV)
    for role in ("poller", "central"):
        service = unit(f"checkd-{role}.service")
        assert service["ExecStart"] == f"/usr/bin/checkd {role} -c /etc/checkd/{role}.yaml"
        assert (service["Type"], service["NotifyAccess"], service["WatchdogSec"]) == ("notify", "main", "30")
        assert service["User"] == "checkd" and service["ProtectSystem"] == "strict"


class NotifySocket:
    """What systemd listens on for Type=notify: datagrams with the sender's PID,
    read as they come (a full socket would block the daemon's sd_notify)."""

    def __init__(self, name: str):
        self.address = f"@checkd-package-test-{os.getpid()}-{name}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.address[1:])
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except TimeoutError:
                continue
            pid = next(struct.unpack("iII", d)[0] for level, kind, d in ancillary
                       if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
            self.messages += [(pid, line) for line in data.decode().splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._reader.join()
        self.sock.close()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def status(port: int) -> dict:
    return json.loads(get(f"http://127.0.0.1:{port}/api/v1/status"))


def test_poller_and_central_run_as_the_checkd_user(system: dict[str, Path]) -> None:
    # The installed /etc/checkd, on free ports (8080 may be a demo's).
    port, status_port = free_port(), free_port()
    conf = Path(tempfile.mkdtemp(prefix="checkd-package-test-", dir="/tmp"))
    for role in ("poller", "central"):
        text = Path(f"/etc/checkd/{role}.yaml").read_text()
        assert "127.0.0.1:8080" in text
        for default, free in (("127.0.0.1:8080", port), ("127.0.0.1:9101", status_port)):
            text = text.replace(default, f"127.0.0.1:{free}")
        (conf / f"{role}.yaml").write_text(text)
    for path in (conf, *conf.iterdir()):
        os.chown(path, 0, grp.getgrnam("checkd").gr_gid)
    conf.chmod(0o750)
    started: list[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes] | None]] = []
    sockets = {role: NotifySocket(role) for role in ("poller", "central")}
    try:
        for role in ("central", "poller"):
            service = unit(f"checkd-{role}.service")
            argv = service["ExecStart"].replace(f"/etc/checkd/{role}.yaml", str(conf / f"{role}.yaml")).split()
            env = {**SYSTEM_ENV, "NOTIFY_SOCKET": sockets[role].address, "WATCHDOG_USEC": "2000000"}
            # cwd / as under systemd: `python3 -m` children would import from a checkout in cwd.
            argv = ["env", "-i", "-C", "/", *(f"{k}={v}" for k, v in env.items()), *as_unit_user(service, argv)]
            log = conf / f"{role}.log"
            if role == "central":
                started.append(start_server(argv, "installed central", port, log, max_lifetime=180, wait=30))
            else:
                with open(log, "ab") as out:
                    started.append((subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL), None))
        central, poller = started[0][0], started[1][0]

        # Results from both kinds of plugin: monitoring-plugins' (exec) and checkd's own (embedded).
        want = {("web1.ladc1", "Processes"): "PROCS", ("web1.ladc1", "Load"): "LOAD"}
        deadline, seen = time.monotonic() + 45, {}
        while time.monotonic() < deadline:
            assert poller.poll() is None, (conf / "poller.log").read_text()[-3000:]
            doc = status(port)
            (me,) = [p for p in doc["pollers"] if p["name"] == "poller-ladc1"]
            seen = {(s["host"], s["service"]): s for s in doc["services"] if s["last_check"]}
            if me["connected"] and me["seq"] > 0 and all(k in seen for k in want):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"no results from the installed poller in 45 s: {me}, {sorted(seen)}\n"
                        + (conf / "poller.log").read_text()[-3000:])
        for key, prefix in want.items():
            assert seen[key]["output"].startswith(prefix) and seen[key]["status"] != 3, seen[key]
        wassup = must(["/usr/bin/checkd", "wassup", "--url", f"http://127.0.0.1:{port}"], env=SYSTEM_ENV)
        assert "Traceback" not in wassup
        # Metrics through Debian's python3-prometheus-client, and `checkd status` for people.
        assert "checkd_results_total" in get(f"http://127.0.0.1:{port}/metrics")
        assert "checkd_checks_total" in get(f"http://127.0.0.1:{status_port}/metrics")
        must(["/usr/bin/checkd", "status", "-c", str(conf / "poller.yaml")], env=SYSTEM_ENV)

        # systemd's side of Type=notify, NotifyAccess=main, WatchdogSec, and `systemctl reload`:
        # each ExecReload= line in turn ($MAINPID filled in), then RELOADING=1 and READY=1 again.
        time.sleep(1.5)
        for role, proc in (("central", central), ("poller", poller)):
            messages = sockets[role].messages
            assert (proc.pid, "READY=1") in messages, (role, messages)
            assert (proc.pid, "WATCHDOG=1") in messages, (role, messages)
            service = unit(f"checkd-{role}.service")
            for line in reload_lines(f"checkd-{role}.service"):
                argv = line.replace("$MAINPID", str(proc.pid)).replace(f"/etc/checkd/{role}.yaml",
                                                                       str(conf / f"{role}.yaml")).split()
                must(as_unit_user(service, argv), env=SYSTEM_ENV, cwd="/")
            deadline = time.monotonic() + 20
            while sum(m == (proc.pid, "READY=1") for m in sockets[role].messages) < 2:
                assert time.monotonic() < deadline, (role, sockets[role].messages)
                time.sleep(0.1)
            assert (proc.pid, "RELOADING=1") in sockets[role].messages

        for proc in (poller, central):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=40) == 0
    finally:
        for proc, watchdog in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if watchdog is not None:
                os.killpg(watchdog.pid, signal.SIGKILL)
                watchdog.wait()
        for sock in sockets.values():
            sock.close()
    # What they wrote, they wrote as checkd, where the units let them.
    checkd_uid = pwd.getpwnam("checkd").pw_uid
    assert Path("/var/lib/checkd/central.sqlite").stat().st_uid == checkd_uid
    assert any(p.stat().st_uid == checkd_uid for p in Path("/var/spool/checkd").iterdir())
    shutil.rmtree(conf)


def test_reinstall_keeps_token_modes_edits_and_state(system: dict[str, Path]) -> None:
    poller_yaml = Path("/etc/checkd/poller.yaml")
    edited = poller_yaml.read_text() + "# edited by the operator\n"
    poller_yaml.write_text(edited)
    token = Path("/etc/checkd/poller.token").read_text()
    state = sorted(p.name for p in Path("/var/lib/checkd").iterdir())
    apt_get("install", "--reinstall", str(system["checkd"]), str(system["checkd-central"]))
    assert poller_yaml.read_text() == edited
    assert Path("/etc/checkd/poller.token").read_text() == token
    assert sorted(p.name for p in Path("/var/lib/checkd").iterdir()) == state
    st = poller_yaml.stat()
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (grp.getgrnam("checkd").gr_gid, 0o640)


def test_purge_removes_config_and_state_and_keeps_the_user(system: dict[str, Path]) -> None:
    apt_get("purge", "checkd", "checkd-central")
    for path in ("/etc/checkd", "/var/lib/checkd", "/var/spool/checkd", "/usr/lib/python3/dist-packages/central",
                 "/usr/lib/checkd"):
        assert not os.path.exists(path), path
    assert "checkd" not in must(["dpkg-statoverride", "--list"])
    pwd.getpwnam("checkd")          # a system user stays (files it owned may remain elsewhere)
