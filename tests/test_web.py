"""The web pages over plain HTTP against a real central process: what the
overview lists and in which order, escaping, filters in the URL, the live
part's ETag, login, CSRF and the action forms (which act through the same
operations as the API). The browser-driven tests are in test_web_browser.py.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.web.session import Sessions
from central.web.views import Filters
from tests.central_proc import API_TOKEN, CentralProc, result

OBJECTS = """\
commands:
  check_dummy: "/usr/lib/nagios/plugins/check_dummy $ARG1$"
hostgroups:
  - {name: mysql}
hosts:
  - {name: db1.ladc1, address: 127.0.0.1, site: ladc1, hostgroups: [mysql]}
  - {name: web1.ladc1, address: 127.0.0.1, site: ladc1}
  - {name: web2.nydc1, address: 127.0.0.1, site: nydc1}
services:
  - {hosts: [db1.ladc1, web1.ladc1, web2.nydc1], description: Disk /, command: "check_dummy!0"}
  - {host: db1.ladc1, description: Mysql Health Slave Check, command: "check_dummy!0"}
"""
XSS = '<script>alert("x")</script> & <b>bold</b>'


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kw: object) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(c: CentralProc, method: str, path: str, form: dict[str, str] | None = None,
         headers: dict[str, str] | None = None, cookie: str | None = None) -> tuple[int, dict[str, str], str]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(c.url + path, data=data, method=method, headers=headers or {})
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        with OPENER.open(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def central(tmp_path: Path) -> Iterator[CentralProc]:
    with CentralProc(tmp_path, objects=OBJECTS) as c:
        yield c


def post(c: CentralProc, poller: str, items: list[tuple[str, str | None, int, str]], first_seq: int) -> None:
    batch = [result(first_seq + i, h, s, st, out) for i, (h, s, st, out) in enumerate(items)]
    code, answer = c.post_results(poller, batch)
    assert code == 200 and not answer["rejected"], answer


def problems_in_page(html: str) -> list[tuple[str, str, str]]:
    """(event id, state, handled?) of every problem row, in page order."""
    return re.findall(r'<tr class="s-(\w+)( handled)?" id="ev-(\d+)"', html)


def login(c: CentralProc) -> str:
    status, headers, _ = http(c, "POST", "/login", {"token": API_TOKEN, "next": "/"})
    assert status == 303, status
    return headers["Set-Cookie"].split(";")[0]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def test_overview_lists_problems_unhandled_and_worst_first_with_output_escaped(central: CentralProc) -> None:
    c = central
    post(c, "poller-ladc1", [("db1.ladc1", "Disk /", 1, "disk warning"),
                             ("db1.ladc1", "Mysql Health Slave Check", 2, XSS),
                             ("web1.ladc1", "Disk /", 2, "disk critical")], 1)
    post(c, "poller-nydc1", [("web2.nydc1", "Disk /", 3, "no such mount")], 1)
    ids = {p["service"] + "@" + p["host"]: p["id"] for p in c.get("/api/v1/problems")["problems"]}
    mysql = ids["Mysql Health Slave Check@db1.ladc1"]
    assert c.write("POST", "/api/v1/ack", {"event_id": mysql, "comment": "on it"})[0] == 200

    status, headers, html = http(c, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    rows = problems_in_page(html)
    # Unacknowledged first (CRITICAL, UNKNOWN, WARNING), then the acknowledged CRITICAL, dimmed.
    assert [(s, bool(h), int(i)) for s, h, i in rows] == [
        ("critical", False, ids["Disk /@web1.ladc1"]), ("unknown", False, ids["Disk /@web2.nydc1"]),
        ("warning", False, ids["Disk /@db1.ladc1"]), ("critical", True, mysql)]
    assert XSS not in html
    assert re.search(r"&lt;script&gt;alert\((&#34;|&quot;)x(&#34;|&quot;)\)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;", html)
    assert f'<a href="/event/{mysql}">#{mysql}</a>' in html and "ACK ops" in html
    assert API_TOKEN not in html and "tok-ladc1" not in html
    # Totals, and the site strip with both pollers connected.
    assert re.search(r"<b>2</b> CRITICAL <small>\(1 unhandled\)</small>", html)
    assert "poller-ladc1 connected" in html and "poller-nydc1 connected" in html

    service = http(c, "GET", "/service/db1.ladc1/Mysql%20Health%20Slave%20Check")[2]
    assert "&lt;script&gt;" in service and XSS not in service and "by ops" in service
    assert http(c, "GET", "/service/db1.ladc1/Disk%20%2F")[0] == 200             # '/' in a service name
    host = http(c, "GET", "/host/db1.ladc1")[2]
    assert "Mysql Health Slave Check" in host and "Disk /" in host
    assert http(c, "GET", "/host/nope.ladc1")[0] == 404
    assert http(c, "GET", "/service/db1.ladc1/Nope")[0] == 404
    status, headers, _ = http(c, "GET", f"/event/{mysql}")
    assert status == 303 and headers["Location"] == "/service/db1.ladc1/Mysql%20Health%20Slave%20Check"


def test_all_ok_is_said_only_when_every_check_has_reported(central: CentralProc) -> None:
    c = central
    html = http(c, "GET", "/")[2]
    assert "ALL OK" not in html and "NO PROBLEMS KNOWN" in html and "4 checks have no result yet" in html
    post(c, "poller-ladc1", [("db1.ladc1", "Disk /", 0, "ok"), ("db1.ladc1", "Mysql Health Slave Check", 0, "ok"),
                             ("web1.ladc1", "Disk /", 0, "ok")], 1)
    post(c, "poller-nydc1", [("web2.nydc1", "Disk /", 0, "ok")], 1)
    html = http(c, "GET", "/")[2]
    assert "ALL OK" in html and "<title>ALL OK" in html and "NO PROBLEMS KNOWN" not in html


def test_filters_come_from_the_url(central: CentralProc) -> None:
    c = central
    post(c, "poller-ladc1", [("db1.ladc1", "Disk /", 1, "w"), ("db1.ladc1", "Mysql Health Slave Check", 2, "c"),
                             ("web1.ladc1", "Disk /", 2, "c")], 1)
    post(c, "poller-nydc1", [("web2.nydc1", "Disk /", 2, "c")], 1)
    by_key = {(p["host"], p["service"]): str(p["id"]) for p in c.get("/api/v1/problems")["problems"]}

    def shown(query: str) -> set[tuple[str, str]]:
        ids = {i for _, _, i in problems_in_page(http(c, "GET", "/?" + query)[2])}
        return {k for k, i in by_key.items() if i in ids}

    assert shown("host=db1") == {("db1.ladc1", "Disk /"), ("db1.ladc1", "Mysql Health Slave Check")}
    assert shown("host=web*.ladc1") == {("web1.ladc1", "Disk /")}
    assert shown("service=mysql") == {("db1.ladc1", "Mysql Health Slave Check")}
    assert shown("site=nydc1") == {("web2.nydc1", "Disk /")}
    assert shown("group=mysql") == {("db1.ladc1", "Disk /"), ("db1.ladc1", "Mysql Health Slave Check")}
    assert shown("state=WARNING") == {("db1.ladc1", "Disk /")}
    assert shown("state=warning,critical&site=ladc1") == set(k for k in by_key if k[0].endswith("ladc1"))
    assert len(shown("limit=2")) == 2
    html = http(c, "GET", "/?limit=2")[2]
    assert "2</b> more problems not shown" in html and "limit=all" in html
    c.write("POST", "/api/v1/ack", {"event_id": int(by_key[("web2.nydc1", "Disk /")])})
    assert ("web2.nydc1", "Disk /") not in shown("handled=hide")
    # The filter is echoed back into the form (escaped), so the view can be bookmarked as it is.
    html = http(c, "GET", "/?host=%22%3E%3Cscript%3E")[2]
    assert 'value="&#34;&gt;&lt;script&gt;"' in html and "No problems match this filter" in html


def test_the_live_part_is_304_until_something_shown_changes(central: CentralProc) -> None:
    c = central
    post(c, "poller-ladc1", [("db1.ladc1", "Disk /", 2, "full")], 1)
    status, headers, body = http(c, "GET", "/", headers={"X-Checkd-Live": "1"})
    assert status == 200 and body.startswith('<div data-live="overview">') and "<html" not in body
    etag = headers["ETag"]
    assert http(c, "GET", "/", headers={"X-Checkd-Live": "1", "If-None-Match": etag})[0] == 304
    time.sleep(1.1)                 # durations moved on: still nothing to send
    assert http(c, "GET", "/", headers={"X-Checkd-Live": "1", "If-None-Match": etag})[0] == 304
    post(c, "poller-ladc1", [("db1.ladc1", "Disk /", 2, "full, still")], 2)
    status, headers, body = http(c, "GET", "/", headers={"X-Checkd-Live": "1", "If-None-Match": etag})
    assert status == 200 and "full, still" in body and headers["ETag"] != etag


def test_login_gives_a_signed_httponly_session_and_forms_need_its_csrf_token(central: CentralProc) -> None:
    c = central
    post(c, "poller-ladc1", [("db1.ladc1", "Disk /", 2, "full")], 1)
    eid = c.get("/api/v1/problems")["problems"][0]["id"]
    page = "/service/db1.ladc1/Disk%20%2F"
    assert "do-ack" not in http(c, "GET", page)[2]                    # read-only without a login

    status, _, html = http(c, "POST", "/login", {"token": "wrong", "next": page})
    assert status == 401 and "not one of central" in html
    status, headers, _ = http(c, "POST", "/login", {"token": API_TOKEN, "next": page})
    assert status == 303 and headers["Location"] == page + "?done=login"
    set_cookie = headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and API_TOKEN not in set_cookie
    cookie = set_cookie.split(";")[0]
    html = http(c, "GET", page, cookie=cookie)[2]
    assert 'id="do-ack"' in html and '<span class="user">ops</span>' in html and API_TOKEN not in html
    csrf = csrf_of(html)

    form = {"event_id": str(eid), "comment": "mine", "next": page}
    assert http(c, "POST", "/action/ack", form)[0] == 401                              # no session
    assert http(c, "POST", "/action/ack", form, cookie=cookie)[0] == 403               # no CSRF token
    assert http(c, "POST", "/action/ack", {**form, "csrf": csrf + "x"}, cookie=cookie)[0] == 403
    assert http(c, "POST", "/action/ack", {**form, "csrf": csrf}, cookie=cookie,
                headers={"Origin": "https://evil.example"})[0] == 403
    assert http(c, "POST", "/action/ack", {**form, "csrf": csrf}, cookie=cookie,
                headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert c.get(f"/api/v1/events/{eid}")["acknowledged"] is False
    status, headers, _ = http(c, "POST", "/action/ack", {**form, "csrf": csrf}, cookie=cookie,
                              headers={"Origin": c.url, "Sec-Fetch-Site": "same-origin"})
    assert status == 303 and headers["Location"] == page + "?done=ack"
    event = c.get(f"/api/v1/events/{eid}")
    assert (event["acknowledged"], event["ack_author"], event["ack_comment"]) == (True, "ops", "mine")
    assert event["history"][-1]["kind"] == "ack" and event["history"][-1]["author"] == "ops"

    # The other buttons go through the same operations.
    hidden = {"host": "db1.ladc1", "service": "Disk /", "csrf": csrf, "next": page}
    assert http(c, "POST", "/action/notifications", {**hidden, "enabled": "0", "duration": "1h"},
                cookie=cookie)[0] == 303
    assert c.get("/api/v1/problems")["problems"][0]["muted"] is True
    assert http(c, "POST", "/action/notifications", {**hidden, "enabled": "1"}, cookie=cookie)[0] == 303
    assert c.get("/api/v1/problems")["problems"][0]["muted"] is False
    assert http(c, "POST", "/action/reschedule", hidden, cookie=cookie)[0] == 303
    assert http(c, "POST", "/action/downtime", {**hidden, "duration": "2h", "comment": "disk swap"},
                cookie=cookie)[0] == 303
    assert [d["comment"] for d in c.get("/api/v1/downtimes")["downtimes"]] == ["disk swap"]
    assert http(c, "POST", "/action/unack", {"event_id": str(eid), "csrf": csrf, "next": page},
                cookie=cookie)[0] == 303
    assert c.get(f"/api/v1/events/{eid}")["acknowledged"] is False
    status, _, html = http(c, "POST", "/action/ack", {"event_id": "999999", "csrf": csrf}, cookie=cookie)
    assert status == 404 and "no open event 999999" in html

    status, headers, _ = http(c, "POST", "/logout", {"csrf": csrf}, cookie=cookie)
    assert status == 303 and "checkd_session=" in headers["Set-Cookie"]


def test_login_redirects_only_within_the_site(central: CentralProc) -> None:
    for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        status, headers, _ = http(central, "POST", "/login", {"token": API_TOKEN, "next": bad})
        assert status == 303 and headers["Location"] == "/?done=login", bad
    assert http(central, "POST", "/login", {"token": API_TOKEN}, headers={"Origin": "https://evil.example"})[0] == 403


def test_a_session_is_refused_when_forged_expired_or_its_token_changed(tmp_path: Path) -> None:
    tokens = {"ops": "secret-1"}
    s = Sessions(tmp_path, lambda: tokens, lifetime=lambda: 60.0)
    assert s.operator("secret-1") == "ops" and s.operator("secret-2") is None
    cookie = s.issue("ops", now=1000.0)
    assert "secret-1" not in cookie
    session = s.load(cookie, now=1010.0)
    assert session is not None and session.name == "ops"
    assert s.csrf_ok(session, s.csrf(session)) and not s.csrf_ok(session, "x")
    assert s.load(cookie, now=1061.0) is None                                  # expired
    name, expires, sid, sig = cookie.split(".")
    assert s.load(f"{name}.{int(expires) + 999}.{sid}.{sig}", now=1010.0) is None  # lifetime stretched
    assert s.load(cookie[:-2] + "AA", now=1010.0) is None                      # signature changed
    assert (tmp_path / "web-secret").stat().st_mode & 0o077 == 0
    assert Sessions(tmp_path, lambda: tokens).load(cookie, now=1010.0) is not None     # survives a restart
    tokens["ops"] = "secret-rotated"
    assert s.load(cookie, now=1010.0) is None                                  # token rotated: sessions end


def test_filters_parse_and_write_back_only_what_they_understand() -> None:
    from multidict import MultiDict
    f = Filters.from_query(MultiDict([("host", "db*"), ("state", "critical,bogus"), ("state", "WARNING"),
                                      ("handled", "hide"), ("limit", "abc"), ("site", "ladc1")]))
    assert f.states == ("CRITICAL", "WARNING") and f.hide_handled and f.limit == "" and f.active
    assert f.query() == "host=db%2A&site=ladc1&state=CRITICAL&state=WARNING&handled=hide"
    assert Filters.from_query(MultiDict([("limit", "all")])).rows(500) is None
    assert Filters.from_query(MultiDict([("limit", "20")])).rows(500) == 20
    assert not Filters().active and Filters().rows(500) == 500


def test_a_problem_row_escapes_everything_and_shortens_long_output() -> None:
    from central.web.rows import OUTPUT_CHARS, Rows, row_key
    p = {"id": 7, "state": "CRITICAL", "host": "h<1>", "service": 'S "q"', "output": "<b>" + "x" * 400,
         "site": "s&1", "taken_over": True, "url": "/service/h%3C1%3E/S%20%22q%22", "host_url": "/host/h%3C1%3E",
         "since": 100.0, "acknowledged": True, "ack_author": "<ops>", "ack_comment": "<i>later</i>",
         "muted": False, "suppressed": False, "flapping": False, "handled": True}
    html = str(Rows().render([p], [row_key(p)], 160.0))
    assert "<b>" not in html and "<i>" not in html and "<ops>" not in html and "h<1>" not in html
    assert "&lt;b&gt;" in html and "h&lt;1&gt;" in html and "S &quot;q&quot;" in html and "s&amp;1" in html
    assert '<tr class="s-critical handled" id="ev-7">' in html and "#7</a>" in html and ">1m</time>" in html
    assert "x" * (OUTPUT_CHARS - 4) + "…" in html and "x" * (OUTPUT_CHARS - 3) not in html


def test_ack_all_shown_acknowledges_the_rows_the_page_showed_and_comments_are_kept(central: CentralProc) -> None:
    """After a storm: the overview, filtered to one host, offers "Acknowledge all shown"; it
    acknowledges the unacknowledged rows the page showed and nothing else."""
    c = central
    post(c, "poller-ladc1", [("db1.ladc1", "Disk /", 2, "full"), ("db1.ladc1", "Mysql Health Slave Check", 2, "lag"),
                             ("web1.ladc1", "Disk /", 2, "full")], 1)
    ids = {(p["host"], p["service"]): p["id"] for p in c.get("/api/v1/problems")["problems"]}
    assert "do-ack-all" not in http(c, "GET", "/?host=db1*")[2]            # read-only without a login
    cookie = login(c)
    html = http(c, "GET", "/?host=db1*", cookie=cookie)[2]
    shown = [int(i) for i in re.findall(r'<input type="hidden" form="ack-all" name="event_id" value="(\d+)">', html)]
    assert sorted(shown) == sorted([ids[("db1.ladc1", "Disk /")], ids[("db1.ladc1", "Mysql Health Slave Check")]])
    form = [("csrf", csrf_of(html)), ("next", "/?host=db1*"), ("comment", "storm: on it"),
            *(("event_id", str(i)) for i in shown)]
    status, headers, _ = http(c, "POST", "/action/ack", form, cookie=cookie)     # type: ignore[arg-type]
    assert status == 303 and headers["Location"].endswith("done=ack")
    acked = {(p["host"], p["service"]): p["acknowledged"] for p in c.get("/api/v1/problems")["problems"]}
    assert acked == {("db1.ladc1", "Disk /"): True, ("db1.ladc1", "Mysql Health Slave Check"): True,
                     ("web1.ladc1", "Disk /"): False}
    # A comment on the check, from its page: on the page, and in its open problem's history.
    page = "/service/web1.ladc1/Disk%20%2F"
    hidden = {"host": "web1.ladc1", "service": "Disk /", "csrf": csrf_of(html), "next": page, "text": "new disk ordered"}
    assert http(c, "POST", "/action/comment", hidden, cookie=cookie)[0] == 303
    assert "new disk ordered" in http(c, "GET", page)[2]
    history = c.get(f"/api/v1/events/{ids[('web1.ladc1', 'Disk /')]}")["history"]
    assert [(h["kind"], h["output"], h["author"]) for h in history if h["kind"] == "comment"] == [
        ("comment", "new disk ordered", "ops")]
