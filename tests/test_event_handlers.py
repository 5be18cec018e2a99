"""Event handlers on real daemons: a handler on the poller restarts a test daemon and the
check recovers; handlers run for the right transitions only, one at a time per check, on
whoever ran the check; a hanging one is killed at its timeout; disabled ones do not run."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.central_proc import CentralProc, poller_node, start_poller
from tests.helpers import free_port, require_plugins, start_server, wait_for

DAEMON = """\
import signal, socket, sys
signal.alarm(120)                   # never outlives the test, whatever happens to it
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    s.accept()[0].close()
"""
# Writes what it was told, and restarts the daemon on a SOFT CRITICAL, in the background: it stays
# in the handler's process group, which checkd leaves alone once the handler has exited in time.
RESTART = """\
printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${{10}}" >> {dir}/seen
if [ "$1" = CRITICAL ] && [ "$2" = SOFT ]; then
  {python} {dir}/daemon.py "${{11}}" >> {dir}/daemon.log 2>&1 < /dev/null &
  echo $! > {dir}/daemon.pid
  echo "restarted the daemon on port ${{11}}"
fi
"""
RESTART_OBJECTS = """\
commands:
  check_tcp: "$PLUGINDIR$/check_tcp -H $HOSTADDRESS$ -p $ARG1$ -t 2"
  dummy: "$PLUGINDIR$/check_dummy $ARG1$ '$ARG2$'"
  restart_daemon: "/bin/sh {dir}/restart.sh '$SERVICESTATE$' '$SERVICESTATETYPE$' '$SERVICEATTEMPT$' '$HOSTNAME$'
    '$HOSTADDRESS$' '$SERVICEDESC$' '$HOSTSTATE$' '$HOSTSTATETYPE$' '$HOSTATTEMPT$' '$SERVICEOUTPUT$' $ARG1$"
  note: "/bin/sh {dir}/note.sh $ARG1$ $HOSTNAME$ '$SERVICEDESC$' $SERVICESTATE$ $SERVICESTATETYPE$ $SERVICEATTEMPT$"
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1}}
  - {{name: checkd-central, address: 127.0.0.1, site: central}}
services:
  - {{host: db1.ladc1, description: Daemon, command: "check_tcp!{port}", interval: 0.5s, retry_interval: 1.5s,
     max_attempts: 3, event_handler: "restart_daemon!{port}"}}
  - {{host: checkd-central, description: Reach ladc1, command: "dummy!2!unreachable", interval: 0.5s,
     max_attempts: 1, event_handler: "note!own"}}
"""
NOTE = "echo \"$*\" >> {dir}/seen\n"


def status(central: CentralProc, host: str, service: str) -> dict[str, Any]:
    doc = central.get(f"/api/v1/status?host={host}")
    return next(s for s in doc["services"] if s["service"] == service)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def stop_by_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Central and the ladc1 poller as processes; the caller writes the objects first."""
    require_plugins()
    procs: dict[str, Any] = {}
    yield procs
    poller = procs.get("poller")
    if poller is not None and poller.poll() is None:
        poller.terminate()
        poller.wait(timeout=30)
    if "central" in procs:
        procs["central"].stop()


def test_handler_restarts_the_daemon_and_the_check_recovers(tmp_path: Path, stack: dict[str, Any]) -> None:
    port = free_port()
    (tmp_path / "daemon.py").write_text(DAEMON)
    (tmp_path / "restart.sh").write_text(RESTART.format(dir=tmp_path, python=sys.executable))
    (tmp_path / "note.sh").write_text(NOTE.format(dir=tmp_path))
    daemon, watchdog = start_server([sys.executable, str(tmp_path / "daemon.py"), str(port)], "test daemon", port,
                                    tmp_path / "daemon.log", max_lifetime=120)
    central = stack["central"] = CentralProc(tmp_path, objects=RESTART_OBJECTS.format(dir=tmp_path, port=port))
    seen = tmp_path / "seen"
    try:
        central.start()
        # The node's global service handler runs before the object's own, for the same changes.
        stack["poller"] = start_poller(tmp_path, central.url, extra="  event_handlers: {global_service: note!global}\n")
        wait_for(lambda: status(central, "db1.ladc1", "Daemon")["polled_by"] == "poller-ladc1", 20,
                 "the poller's first result")
        assert status(central, "db1.ladc1", "Daemon")["state"] == "OK"
        daemon.kill()                                       # the daemon crashes
        daemon.wait()
        wait_for(lambda: len(lines(seen)) >= 4 and status(central, "db1.ladc1", "Daemon")["state_type"] == "HARD",
                 10, "the handler's two runs and the recovery")
        time.sleep(1.2)                                     # two more OK checks: no handler for those
        handler = [ln for ln in lines(seen) if "|" in ln]
        assert handler == [
            f"CRITICAL|SOFT|1|db1.ladc1|127.0.0.1|Daemon|UP|HARD|1|connect to address 127.0.0.1 "
            f"and port {port}: Connection refused",
            handler[1]], lines(seen)
        assert handler[1].startswith("OK|SOFT|2|db1.ladc1|127.0.0.1|Daemon|UP|HARD|1|TCP OK - "), handler
        assert [ln for ln in lines(seen) if ln.startswith("global")] == [
            "global db1.ladc1 Daemon CRITICAL SOFT 1", "global db1.ladc1 Daemon OK SOFT 2"]
        assert lines(seen).index("global db1.ladc1 Daemon CRITICAL SOFT 1") < lines(seen).index(handler[0])
        daemon_now = status(central, "db1.ladc1", "Daemon")
        assert (daemon_now["state"], daemon_now["state_type"], daemon_now["event_id"]) == ("OK", "HARD", None)

        poller_log, central_log = (tmp_path / "poller.log").read_text(), central.log.read_text()
        assert ("event handler restart_daemon for db1.ladc1/Daemon (CRITICAL SOFT 1): exit 0 in "
                in poller_log), poller_log
        assert f"restarted the daemon on port {port}" in poller_log
        # Each on whoever ran the check: central runs its own site's checks, and their handlers.
        assert "event handler note for checkd-central/Reach ladc1 (CRITICAL HARD 1): exit 0" in central_log
        assert "own checkd-central Reach ladc1 CRITICAL HARD 1" in lines(seen)
        assert "event handler restart_daemon" not in central_log and "checkd-central" not in poller_log
    finally:
        if (tmp_path / "daemon.pid").exists():
            stop_by_pid(int((tmp_path / "daemon.pid").read_text()))
        stop_by_pid(daemon.pid)
        daemon.wait()
        os.killpg(watchdog.pid, signal.SIGKILL)
        watchdog.wait()


HANG_OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/$ARG1$; echo \\"state $s\\"; exit $s'"
  hang: "/bin/sh {dir}/hang.sh $SERVICESTATE$ $SERVICESTATETYPE$ $SERVICEATTEMPT$"
  note: "/bin/sh {dir}/note.sh $SERVICEDESC$ $SERVICESTATE$ $SERVICESTATETYPE$ $SERVICEATTEMPT$"
templates:
  - {{name: handled, event_handler: note, interval: 0.5s, max_attempts: 1}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1}}
services:
  - {{host: db1.ladc1, description: Hangs, command: "from_file!hangs", interval: 0.5s, retry_interval: 0.5s,
     max_attempts: 3, event_handler: hang}}
  - {{host: db1.ladc1, description: Handled, command: "from_file!handled", use: handled}}
  - {{host: db1.ladc1, description: Quiet, command: "from_file!quiet", use: handled, event_handler_enabled: false}}
"""
HANG = """\
echo "$1 $2 $3 $(date +%s.%N)" >> {dir}/hang.log
sleep 30 &
echo $! >> {dir}/hang.pids
wait
"""


def test_hanging_handler_killed_serial_and_disabled_ones_do_not_run(tmp_path: Path, stack: dict[str, Any]) -> None:
    (tmp_path / "hang.sh").write_text(HANG.format(dir=tmp_path))
    (tmp_path / "note.sh").write_text(NOTE.format(dir=tmp_path))
    for name, state in (("hangs", 2), ("handled", 2), ("quiet", 2)):
        (tmp_path / name).write_text(f"{state}\n")
    central = stack["central"] = CentralProc(tmp_path, objects=HANG_OBJECTS.format(dir=tmp_path))
    central.start()
    extra = "  event_handlers: {{enabled: {on}, timeout: 1s}}\n"
    poller = stack["poller"] = start_poller(tmp_path, central.url, extra=extra.format(on="true"))
    hang_log, seen = tmp_path / "hang.log", tmp_path / "seen"
    # CRITICAL SOFT 1, SOFT 2 and HARD 3 come 0.5 s apart; each handler hangs until killed at 1 s,
    # and the next one of the check starts only then.
    wait_for(lambda: len(lines(hang_log)) >= 3, 15, "three runs of the hanging handler")
    wait_for(lambda: "(CRITICAL HARD 3): timed out" in (tmp_path / "poller.log").read_text(), 5,
             "the third one killed")
    time.sleep(1.0)                                         # HARD 3 stays HARD: re-checks run no handler
    runs = [ln.split() for ln in lines(hang_log)]
    assert [r[:3] for r in runs] == [["CRITICAL", "SOFT", "1"], ["CRITICAL", "SOFT", "2"], ["CRITICAL", "HARD", "3"]]
    starts = [float(r[3]) for r in runs]
    assert all(b - a >= 0.95 for a, b in zip(starts, starts[1:])), f"handlers of one check overlapped: {starts}"
    pids = [int(p) for p in lines(tmp_path / "hang.pids")]
    assert len(pids) == 3 and not any(map(running, pids)), "the whole process group is killed"
    poller_log = (tmp_path / "poller.log").read_text()
    killed = [ln for ln in poller_log.splitlines() if "event handler hang for db1.ladc1/Hangs" in ln]
    assert len(killed) == 3 and all(" WARNING " in ln and "timed out after 1s; its process group was killed" in ln
                                    for ln in killed), killed
    assert status(central, "db1.ladc1", "Hangs")["state_type"] == "HARD", "checks went on meanwhile"

    # From a template; not for the object that turns it off.
    assert lines(seen) == ["Handled CRITICAL HARD 1"]
    # Turned off for the whole node by a reload: the recovery runs nothing.
    poller_node(tmp_path, central.url, extra=extra.format(on="false"))
    poller.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in (tmp_path / "poller.log").read_text(), 10, "the reload")
    (tmp_path / "handled").write_text("0\n")
    wait_for(lambda: status(central, "db1.ladc1", "Handled")["state"] == "OK", 10, "the recovery")
    time.sleep(0.5)
    assert lines(seen) == ["Handled CRITICAL HARD 1"]
