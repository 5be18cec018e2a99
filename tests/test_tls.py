"""Poller -> central over TLS: results arrive with the right CA, and a poller
that cannot verify central's certificate delivers nothing (and says why)."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from pathlib import Path

from tests.central_proc import POLLER_TOKENS, CentralProc
from tests.helpers import REPO, require_binary, require_plugins

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$ '$ARG2$'"
hosts:
  - {name: db1.ladc1, address: 127.0.0.1}
services:
  - {host: db1.ladc1, description: Disk /, command: "check_dummy!0!fine", interval: 0.5s}
"""


def make_cert(d: Path) -> tuple[Path, Path]:
    cert, key = d / "central.crt", d / "central.key"
    subprocess.run([require_binary("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def start_poller(d: Path, url: str, ca: Path | None) -> subprocess.Popen[bytes]:
    token, site = POLLER_TOKENS["poller-ladc1"]
    tls = f"  tls: {{ca: {ca}}}\n" if ca else ""
    node = d / "poller.yaml"
    node.write_text(f"poller:\n  name: poller-ladc1\n  site: {site}\n  central: {url}\n  token: {token}\n"
                    f"  state_dir: pstate\n  objects: objects\n  heartbeat_interval: 0.3s\n{tls}")
    return subprocess.Popen([sys.executable, "-m", "checkd", "poller", "-c", str(node)], cwd=REPO,
                            stderr=open(d / "poller.log", "ab"))


def test_results_travel_over_tls_only_to_a_verified_central(tmp_path: Path) -> None:
    require_plugins()
    cert, key = make_cert(tmp_path)
    central = CentralProc(tmp_path, objects=OBJECTS, extra=f"  tls: {{cert: {cert}, key: {key}}}\n")
    central.url = central.url.replace("http://", "https://")
    central.ssl_context = ssl.create_default_context(cafile=str(cert))
    central.start()
    try:
        # Without the CA the poller refuses central's certificate: nothing is delivered.
        untrusting = start_poller(tmp_path, central.url, None)
        time.sleep(3)
        untrusting.terminate()
        assert untrusting.wait(timeout=30) == 0
        assert central.get("/api/v1/status")["services"][0]["last_check"] is None
        assert "certificate verify failed" in (tmp_path / "poller.log").read_text()

        poller = start_poller(tmp_path, central.url, cert)
        try:
            deadline = time.monotonic() + 20
            while central.get("/api/v1/status")["services"][0]["last_check"] is None:
                assert time.monotonic() < deadline, (tmp_path / "poller.log").read_text()[-2000:]
                time.sleep(0.2)
            svc = central.get("/api/v1/status")["services"][0]
            assert svc["output"] == "OK: fine" and svc["polled_by"] == "poller-ladc1"
        finally:
            poller.terminate()
            assert poller.wait(timeout=30) == 0
    finally:
        central.stop()
