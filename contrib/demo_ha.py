"""`make demo-ha`: the example conf.d/ with central as an active/standby pair on
PostgreSQL (docs/ha.md), on loopback only: a throwaway PostgreSQL 15 cluster (initdb
in a temporary directory, 127.0.0.1, a free port, stopped by PID at the end), two
centrals sharing its database (the active on 127.0.0.1:8080, the standby on :8081),
and the example pollers knowing both. Kill the active one to watch the other take over.

    .venv/bin/python contrib/demo_ha.py [--ports 8080,8081] [--for SECONDS]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from checkd.demo import stop_all  # noqa: E402
from tests.postgres import Postgres, require_postgres  # noqa: E402  (the checkout's throwaway cluster)


def configs(conf: Path, state: Path, dsn: str, ports: list[int]) -> tuple[list[Path], list[Path]]:
    """Node files for two centrals and the example pollers, written under `state`."""
    state.mkdir(parents=True, exist_ok=True)
    objects = (conf / "objects").resolve()
    central = (conf / "central.yaml").read_text()
    centrals = []
    for name, port in zip(("a", "b"), ports):
        text = re.sub(r"listen: \S+", f"listen: 127.0.0.1:{port}", central)
        text = re.sub(r"state_dir: \S+", f"state_dir: {state / ('central-' + name)}", text)
        text = re.sub(r"objects: \S+", f"objects: {objects}", text)
        text = re.sub(r"maildir: [^}\s]+", f"maildir: {state / 'mail'}", text)
        text = re.sub(r"rrd: \{dir: [^}]+\}", f"rrd: {{dir: {state / ('rrd-' + name)}}}", text)
        # Each central its own Livestatus socket: on one machine they would share the path.
        text = re.sub(r"livestatus: \{socket: [^}]+\}", f"livestatus: {{socket: {state / ('live-' + name)}}}", text)
        text += f'  store: postgresql\n  postgresql: {{dsn: "{dsn}"}}\n'
        path = state / f"central-{name}.yaml"
        path.write_text(text)
        centrals.append(path)
    urls = ", ".join(f"http://127.0.0.1:{p}" for p in ports)
    pollers = []
    for src in sorted(conf.glob("poller-*.yaml")):
        text = re.sub(r"central: \S+", f"central: [{urls}]", src.read_text())
        text = re.sub(r"state_dir: \S+", f"state_dir: {state / src.stem}", text)
        text = re.sub(r"objects: \S+", f"objects: {objects}", text)
        text = re.sub(r"maildir: [^}\s]+", f"maildir: {state / 'mail'}", text)
        path = state / src.name
        path.write_text(text)
        pollers.append(path)
    return centrals, pollers


def who_is_active(ports: list[int]) -> str:
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/problems", timeout=2) as r:
                n = len(json.load(r)["problems"])
                return f"active: http://127.0.0.1:{port} ({n} open problem(s))"
        except (urllib.error.URLError, OSError, ValueError):
            continue
    return "no central answers as active (a takeover under way?)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ports", default="8080,8081", help="the two centrals' ports on 127.0.0.1")
    ap.add_argument("--for", dest="seconds", type=float, default=0, help="stop after this long (0: Ctrl-C)")
    ap.add_argument("--state", default=str(REPO / "demo-state" / "ha"))
    args = ap.parse_args()
    require_postgres()
    ports = [int(p) for p in args.ports.split(",")]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    procs: list[subprocess.Popen[bytes]] = []
    with Postgres() as pg:
        centrals, pollers = configs(REPO / "conf.d", Path(args.state), pg.new_database(), ports)
        print(f"== PostgreSQL 15 on 127.0.0.1:{pg.port}; centrals on ports {ports[0]} (active) and "
              f"{ports[1]} (standby); Ctrl-C stops everything", flush=True)
        try:
            for i, node in enumerate([*centrals, *pollers]):
                procs.append(subprocess.Popen([sys.executable, "-m", "checkd", node.stem.split("-")[0], "-c",
                                               str(node)], cwd=REPO))
                if i == 0:
                    time.sleep(2.0)             # the first central takes the lease
            end = time.monotonic() + args.seconds if args.seconds else float("inf")
            while not stopping and time.monotonic() < end:
                print(who_is_active(ports), flush=True)
                for _ in range(50):
                    if stopping or time.monotonic() >= end:
                        break
                    time.sleep(0.1)
        finally:
            stop_all(procs, timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
