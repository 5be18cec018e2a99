"""Central attacked as an outsider would (issue 27; docs/security.md): guessing tokens from
one address, a cookie kept after logout, a form posted from elsewhere, a newline in a
comment, ESC sequences in plugin output, a damaged or full database, and reads with
`web: {read: login}`. One real central for the table of HTTP cases; other client
addresses are other loopback addresses (127.0.0.2...), so 127.0.0.1 is never held.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.central_proc import API_TOKEN, CentralProc, result, start_poller, write_config
from tests.helpers import REPO, free_port, small_tmpfs, wait_for

READ_TOKEN = "viewer-0123456789abcdef"
SETTINGS = (f"  read_tokens: {{viewer: {READ_TOKEN}}}\n"
            "  web: {read: login}\n"
            "  auth_limit: {failures: 5, window: 30s}\n")
FORGED = "2026-12-07 12:00:00,000 CRITICAL central.app: forged"
ESC_OUTPUT = "DISK CRITICAL \x1b]0;pwned\x07\x1b[2J gone"


def request(c: CentralProc, method: str, path: str, body: dict[str, str] | None = None, token: str = "",
            cookie: str = "", source: str = "127.0.0.1") -> tuple[int, dict[str, str], str]:
    """One request from the loopback address `source` (a client of its own)."""
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30, source_address=(source, 0))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    try:
        conn.request(method, path, body=urllib.parse.urlencode(body) if body is not None else None, headers=headers)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode(errors="replace")
    finally:
        conn.close()


def login(c: CentralProc, token: str = API_TOKEN, source: str = "127.0.0.1") -> str:
    status, headers, text = request(c, "POST", "/login", {"token": token, "next": "/"}, source=source)
    assert status == 303, (status, text)
    return headers["Set-Cookie"].split(";")[0]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def cli(c: CentralProc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checkd", *args, "-c", str(c.config)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralProc]:
    with CentralProc(tmp_path_factory.mktemp("security"), extra=SETTINGS) as c:
        st, _ = c.post_results("poller-ladc1", [result(1, "db1.ladc1", "Disk /", 2, ESC_OUTPUT)])
        assert st == 200
        yield c


def test_repeated_failures_from_one_address_get_429_and_others_still_get_in(central: CentralProc) -> None:
    c = central
    for _ in range(5):
        assert request(c, "POST", "/login", {"token": "guess"}, source="127.0.0.2")[0] == 401
    status, headers, _ = request(c, "POST", "/login", {"token": "guess"}, source="127.0.0.2")
    assert status == 429 and 0 < int(headers["Retry-After"]) <= 30
    # Held: even the right token is not looked at from there; from another address it works.
    assert request(c, "POST", "/login", {"token": API_TOKEN}, source="127.0.0.2")[0] == 429
    login(c, source="127.0.0.3")
    # Bearer guesses at the API, from a third address.
    for _ in range(5):
        assert request(c, "POST", "/api/v1/ack", {"event_id": "1"}, token="guess", source="127.0.0.4")[0] == 401
    assert request(c, "POST", "/api/v1/ack", {"event_id": "1"}, token="guess", source="127.0.0.4")[0] == 429
    # A poller that authenticates is never held, however often it posts.
    for seq in range(2, 32):
        assert c.post_results("poller-ladc1", [result(seq, "db1.ladc1", "Disk /", 2, ESC_OUTPUT)])[0] == 200
    log = c.log.read_text()
    assert log.count("failed authentication from 127.0.0.2") == 1, log        # one line, not one an attempt
    assert log.count("5 failed authentications from 127.0.0.2") == 1 and "answered 429" in log
    metrics = request(c, "GET", "/metrics", token=READ_TOKEN)[2]
    assert re.search(r"^checkd_auth_failures_total 1\d", metrics, re.M), metrics
    assert re.search(r"^checkd_auth_refused_total [2-9]", metrics, re.M), metrics


def poller_request(port: int, path: str, token: str, source: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        conn.request("POST" if path.startswith("/api/") else "GET", path, body=b'{"event_id": 1}', headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def test_a_pollers_operator_calls_are_limited_the_same_way(tmp_path: Path) -> None:
    """A poller that may alert on its own takes operator calls on status_listen: (docs/failover.md)."""
    write_config(tmp_path, free_port())             # the objects it shares with a central (not started)
    port = free_port()
    proc = start_poller(tmp_path, "http://127.0.0.1:9", extra=(
        f"  status_listen: 127.0.0.1:{port}\n  api_tokens: {{ops: {API_TOKEN}}}\n"
        "  email: {smtp_host: 127.0.0.1, smtp_port: 9, from: checkd@example.com}\n"
        "  auth_limit: {failures: 3, window: 30s}\n"))
    try:
        wait_for(lambda: port_answers(port), 20, "the poller's status_listen")
        for _ in range(3):
            assert poller_request(port, "/api/v1/ack", "guess", "127.0.0.2")[0] == 401
        assert poller_request(port, "/api/v1/ack", API_TOKEN, "127.0.0.2")[0] == 429
        assert poller_request(port, "/api/v1/ack", API_TOKEN, "127.0.0.3")[0] not in (401, 429)
        metrics = poller_request(port, "/metrics", "", "127.0.0.1")[1]
        assert "checkd_auth_failures_total 3.0" in metrics and "checkd_auth_refused_total 1.0" in metrics
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = (tmp_path / "poller.log").read_text()
    assert log.count("failed authentication from 127.0.0.2") == 1 and "answered 429" in log


def port_answers(port: int) -> bool:
    try:
        return poller_request(port, "/status", "", "127.0.0.1")[0] == 200
    except OSError:
        return False


def test_logout_needs_the_csrf_token_and_ends_the_session_for_good(central: CentralProc) -> None:
    c = central
    cookie = login(c)
    status, _, page = request(c, "GET", "/", cookie=cookie)
    assert status == 200 and 'id="do-ack-all"' in page
    # A form from elsewhere (no CSRF token) does not log the operator out.
    assert request(c, "POST", "/logout", {}, cookie=cookie)[0] == 403
    assert request(c, "POST", "/logout", {"csrf": "forged"}, cookie=cookie)[0] == 403
    assert request(c, "GET", "/", cookie=cookie)[0] == 200
    status, headers, _ = request(c, "POST", "/logout", {"csrf": csrf_of(page)}, cookie=cookie)
    assert status == 303 and headers["Location"] == "/?done=logout"
    # The same cookie, kept by someone, is refused from now on.
    status, headers, _ = request(c, "GET", "/", cookie=cookie)
    assert status == 303 and headers["Location"].startswith("/login")
    assert request(c, "POST", "/action/reschedule", {"host": "db1.ladc1", "csrf": csrf_of(page)},
                   cookie=cookie)[0] == 401


def test_a_newline_in_a_comment_forges_no_log_line(central: CentralProc) -> None:
    c = central
    eid = json.loads(request(c, "GET", "/api/v1/problems", token=READ_TOKEN)[2])["problems"][0]["id"]
    st, _ = c.write("POST", "/api/v1/ack", {"event_id": eid, "comment": f"looking\n{FORGED}\r\n{FORGED}"})
    assert st == 200
    log = c.log.read_text()
    assert "acknowledged by ops" in log
    assert not [line for line in log.splitlines() if line.startswith(FORGED)], log
    assert f"looking\\n{FORGED}\\r\\n{FORGED}" in log


def test_wassup_and_status_show_escape_sequences_of_plugin_output_escaped(central: CentralProc) -> None:
    for args in (("wassup",), ("status", "db1.ladc1/Disk /")):
        out = cli(central, *args)
        assert out.returncode == 0, out.stderr
        assert "DISK CRITICAL" in out.stdout and "\x1b" not in out.stdout and "\x07" not in out.stdout, out.stdout
        assert "\\x1b]0;pwned\\x07\\x1b[2J gone" in out.stdout


def test_reads_need_a_token_or_a_login_with_read_login(central: CentralProc) -> None:
    c = central
    for path in ("/api/v1/problems", "/api/v1/status", "/metrics", "/api/v1/events/1"):
        assert request(c, "GET", path)[0] == 401, path
        # A poller's token reads nothing (guesses from an address of their own: 127.0.0.1 is never held).
        assert request(c, "GET", path, token="tok-ladc1", source="127.0.0.5")[0] == 401, path
        assert request(c, "GET", path, token=READ_TOKEN)[0] == 200, path
        assert request(c, "GET", path, token=API_TOKEN)[0] == 200, path
    status, headers, _ = request(c, "GET", "/host/db1.ladc1?period=week")
    assert status == 303 and headers["Location"] == "/login?next=/host/db1.ladc1?period%3Dweek"
    status, _, form = request(c, "GET", headers["Location"])
    assert status == 200 and 'value="/host/db1.ladc1?period=week"' in form
    # A read token logs in to look, not to act.
    cookie = login(c, READ_TOKEN)
    status, _, page = request(c, "GET", "/service/db1.ladc1/Disk%20%2F", cookie=cookie)
    assert status == 200 and "DISK CRITICAL" in page and 'id="do-ack"' not in page and "read token" in page
    status, _, text = request(c, "POST", "/action/reschedule", {"host": "db1.ladc1", "csrf": csrf_of(page)},
                              cookie=cookie)
    assert status == 403 and "may look, not act" in text


def test_check_config_warns_before_central_leaves_loopback(tmp_path: Path) -> None:
    node = CentralProc(tmp_path).config
    node.write_text(node.read_text().replace("listen: 127.0.0.1:", "listen: 0.0.0.0:"))
    out = subprocess.run([sys.executable, "-m", "checkd", "check-config", "-c", str(node)], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    warnings = out.stderr
    assert "api_tokens: ops: the token has 10 characters" in warnings
    assert "pollers: poller-ladc1: the token has 9 characters" in warnings
    assert "without TLS" in warnings and "web: {read: login}" in warnings


def damage(db: Path) -> None:
    """Overwrite the middle of every page but the first (what a bad disk or a torn copy leaves)."""
    data = bytearray(db.read_bytes())
    for page in range(1, len(data) // 4096):
        data[page * 4096 + 100:page * 4096 + 400] = b"\xff" * 300
    db.write_bytes(bytes(data))


def test_a_damaged_database_is_refused_with_one_line_naming_file_and_fix(tmp_path: Path) -> None:
    c = CentralProc(tmp_path)
    with c:
        for seq in range(1, 6):
            c.post_results("poller-ladc1", [result(seq, "db1.ladc1", "Disk /", 2, "x" * 3000)])
    db = tmp_path / "state" / "central.sqlite"
    damage(db)
    c.log.write_text("")
    with pytest.raises(RuntimeError, match="exited with 1"):
        c.start(timeout=20)
    log = c.log.read_text()
    critical = [line for line in log.splitlines() if " CRITICAL " in line]
    assert len(critical) == 1 and f"{db}: the database is damaged" in critical[0], log
    assert ".recover" in critical[0] and "Traceback" not in log


def test_a_full_disk_ends_central_with_one_clear_line(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "state") as state:
        with CentralProc(tmp_path) as c:
            free = os.statvfs(state)
            (state / "filler").write_bytes(b"x" * (free.f_bavail * free.f_frsize - 100 * 1024))
            codes = []
            for seq in range(1, 12):
                codes.append(c.post_results("poller-ladc1", [result(seq * 10 + i, "db1.ladc1", "Disk /", 2,
                                                                    "x" * 2000) for i in range(10)])[0])
                if codes[-1] != 200:
                    break
            assert codes[-1] == 503, codes              # the poller keeps what was not stored
            assert c.proc is not None and c.proc.wait(timeout=30) == 1
        log = c.log.read_text()
        critical = [line for line in log.splitlines() if " CRITICAL " in line]
        assert len(critical) == 1 and f"{state}/central.sqlite: the disk is full" in critical[0], log
        assert "Traceback" not in log
