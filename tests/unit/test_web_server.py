"""The status page's server on loopback (a real ThreadingHTTPServer and a real state directory): pages, JSON,
server-sent events, login, CSRF, Host/Origin checks, actions, and no secret in any answer."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from natlink.config import load_config
from natlink.errors import ConfigError
from natlink.secrets import SecretRef
from natlink.service.history import History
from natlink.state import StateStore
from natlink.web.auth import Sessions, host_allowed, origin_allowed, split_host
from natlink.web.server import Actions, WebServer

PASSWORD = "pw-0123456789"


@pytest.fixture
def setup(tmp_path: Path):
    state = tmp_path / "state"
    cfg_path = tmp_path / "natlink.toml"
    cfg_path.write_text(f'[service]\nstate_dir = "{state}"\n')
    cfg = load_config(str(cfg_path))
    store = StateStore(state)
    store.save("publicip", {"public_ipv4": "11.0.0.2", "verdict": "public", "checked_at": time.time(),
                            "sources": [{"source": "router", "family": 4, "address": "11.0.0.2", "accepted": True}]})
    calls: list[str] = []

    def update(name: str) -> str:
        if name != "home":
            raise KeyError(name)
        calls.append(f"update {name}")
        return f"update of {name} started"

    actions = Actions(lambda: calls.append("check") or "check started", update)
    servers: list[WebServer] = []

    def start(password: str | None = None, listen: str = "127.0.0.1:0") -> WebServer:
        ref = None
        if password is not None:
            (tmp_path / "pw").write_text(password + "\n")
            ref = SecretRef("file", str(tmp_path / "pw"))
        server = WebServer(listen, ref, lambda: cfg, store, actions).start()
        servers.append(server)
        return server

    yield start, calls, store
    for s in servers:
        s.stop()


def request(server: WebServer, method: str, path: str, body: dict | None = None,
            headers: dict | None = None) -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    data = urlencode(body) if body is not None else None
    hdrs = {"Host": f"127.0.0.1:{server.port}", **({"Content-Type": "application/x-www-form-urlencoded"}
                                                    if data is not None else {}), **(headers or {})}
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text


def csrf_of(page: str) -> str:
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_loopback_page_json_static_and_security_headers(setup):
    start, _, _ = setup
    web = start()
    status, headers, page = request(web, "GET", "/")
    assert status == 200 and "11.0.0.2" in page and "Public IPv4" in page
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    status, _, body = request(web, "GET", "/api/status")
    assert status == 200 and json.loads(body)["addresses"][0]["facts"][0]["value"] == "11.0.0.2"
    for name, ctype in (("page.css", "text/css"), ("page.js", "text/javascript")):
        status, headers, body = request(web, "GET", f"/static/{name}")
        assert status == 200 and headers["content-type"].startswith(ctype) and len(body) > 500
    assert request(web, "GET", "/static/../server.py")[0] == 404
    assert request(web, "DELETE", "/")[0] == 501  # nothing can delete


def test_a_foreign_host_header_is_refused(setup):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not read the status."""
    start, _, _ = setup
    web = start()
    status, _, body = request(web, "GET", "/api/status", headers={"Host": f"evil.example:{web.port}"})
    assert status == 421 and "11.0.0.2" not in body


def test_actions_need_the_csrf_token_and_a_same_origin(setup):
    start, calls, _ = setup
    web = start()
    token = csrf_of(request(web, "GET", "/")[2])
    assert request(web, "POST", "/action/check", {})[0] == 403
    assert request(web, "POST", "/action/check", {"csrf": "wrong"})[0] == 403
    assert request(web, "POST", "/action/check", {"csrf": token},
                   {"Origin": "http://evil.example"})[0] == 403
    assert calls == []
    status, _, body = request(web, "POST", "/action/check", {"csrf": token}, {"Accept": "application/json"})
    assert status == 202 and json.loads(body)["message"] == "check started" and calls == ["check"]
    status, headers, _ = request(web, "POST", "/action/ddns", {"csrf": token, "entry": "home"},
                                 {"Origin": f"http://127.0.0.1:{web.port}"})
    assert status == 303 and headers["location"] == "/" and calls[-1] == "update home"  # works without JS
    assert request(web, "POST", "/action/ddns", {"csrf": token, "entry": "nope"})[0] == 404
    # pressed again at once: refused with when, nothing started (a forced provider request each time would
    # get the account blocked)
    status, _, body = request(web, "POST", "/action/ddns", {"csrf": token, "entry": "home"},
                              {"Accept": "application/json"})
    assert status == 429 and "again in" in json.loads(body)["message"] and calls == ["check", "update home"]


def test_login_required_when_a_password_is_set_and_the_password_never_shown(setup):
    start, calls, _ = setup
    web = start(PASSWORD)
    status, headers, _ = request(web, "GET", "/")
    assert status == 303 and headers["location"] == "/login"
    status, _, body = request(web, "GET", "/api/status")
    assert status == 401 and "11.0.0.2" not in body
    assert request(web, "GET", "/events")[0] == 401
    status, _, body = request(web, "POST", "/login", {"password": "nope"})
    assert status == 401 and "Wrong password" in body and PASSWORD not in body
    status, headers, _ = request(web, "POST", "/login", {"password": PASSWORD})
    assert status == 303 and "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    cookie = headers["set-cookie"].split(";", 1)[0]
    status, _, page = request(web, "GET", "/", headers={"Cookie": cookie})
    assert status == 200 and "11.0.0.2" in page and PASSWORD not in page and "Log out" in page
    token = csrf_of(page)
    assert request(web, "POST", "/action/check", {"csrf": token})[0] == 401  # the token alone is not a login
    assert request(web, "POST", "/action/check", {"csrf": token}, {"Cookie": cookie})[0] == 303
    assert calls == ["check"]
    status, _, body = request(web, "GET", "/api/status", headers={"Authorization": f"Bearer {PASSWORD}"})
    assert status == 200 and PASSWORD not in body
    request(web, "POST", "/logout", {"csrf": token}, {"Cookie": cookie})
    assert request(web, "GET", "/api/status", headers={"Cookie": cookie})[0] == 401


def test_wrong_passwords_lock_the_login_for_a_while():
    sessions = Sessions(password=None)
    assert sessions.login("x") is None  # no password configured: no login at all
    from natlink.secrets import Secret

    sessions = Sessions(Secret("right"))
    for _ in range(5):
        assert sessions.login("wrong", now=100.0) is None
    assert sessions.locked_out(now=100.0) and sessions.login("right", now=101.0) is None
    sid = sessions.login("right", now=200.0)
    assert sid and sessions.csrf_for(sid, now=200.0) and sessions.csrf_for("other", now=200.0) is None
    assert sessions.csrf_for(sid, now=200.0 + 8 * 86400) is None  # expired
    for _ in range(5):  # a wrong bearer token counts like a wrong login
        assert sessions.csrf_for(None, bearer="guess", now=300.0) is None
    assert sessions.csrf_for(None, bearer="right", now=301.0) is None and sessions.locked_out(now=301.0)
    assert sessions.csrf_for(None, bearer="right", now=400.0)


def test_events_stream_the_live_part_and_follow_a_change(setup):
    start, _, store = setup
    web = start()
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=5)
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n\r\n".encode())
    buf = b""
    while b"11.0.0.2" not in buf:
        buf += sock.recv(65536)
    assert b"text/event-stream" in buf and b"event: page" in buf
    doc = store.load("publicip")
    store.save("publicip", {**doc, "public_ipv4": "11.0.0.9",
                            "sources": [{"source": "router", "family": 4, "address": "11.0.0.9", "accepted": True}]})
    while b"11.0.0.9" not in buf:
        buf += sock.recv(65536)
    sock.close()


def test_unreadable_state_is_an_error_on_the_page(setup, tmp_path):
    start, _, store = setup
    web = start()
    store.directory.rename(tmp_path / "moved")
    store.directory.write_text("not a directory")  # os.listdir fails: the state cannot be read
    status, _, page = request(web, "GET", "/")
    assert status == 200
    assert 'role="alert"' in page and "cannot read" in page and "All links work" not in page
    assert "11.0.0.2" not in page


def test_history_is_bounded_by_age_and_size(tmp_path):
    from natlink.service.history import MAX_ENTRIES, load, trimmed

    store = StateStore(tmp_path)
    history = History(store)
    now = time.time()
    history.add("public-ip-changed", "public-ip", "old", at=now - 31 * 86400)
    history.add("mapping-add", "mapping:rdp", "m1", at=now - 2)
    history.add("ddns-failed", "ddns:home", "m2", at=now - 1)
    assert [e["message"] for e in load(store)] == ["m1", "m2"]  # the 31-day-old one is gone
    many = [{"at": now - 1000 + i, "event": "x", "subject": "s", "message": str(i)} for i in range(MAX_ENTRIES + 100)]
    kept = trimmed([*many, "junk", {"at": "bad"}], now)
    assert len(kept) == MAX_ENTRIES and kept[0]["message"] == "100" and kept[-1]["message"] == str(MAX_ENTRIES + 99)


@pytest.mark.parametrize("header, bind, login, ok", [
    ("127.0.0.1:9878", "127.0.0.1", False, True), ("localhost:9878", "127.0.0.1", False, True),
    ("[::1]:9878", "127.0.0.1", False, True), ("127.0.0.1", "127.0.0.1", False, True),
    ("evil.example:9878", "127.0.0.1", False, False), ("127.0.0.1:9999", "127.0.0.1", False, False),
    ("evil.example:9878", "127.0.0.1", True, True),  # with a login: a rebinding page has no session cookie
    ("homeserver.lan:9878", "10.0.1.201", True, True), ("homeserver.lan:9999", "10.0.1.201", True, False),
    (None, "127.0.0.1", False, False), (None, "10.0.1.201", True, False), ("[::1", "::1", False, False)])
def test_host_header_table(header, bind, login, ok):
    assert host_allowed(header, bind, 9878, login) is ok


def test_split_host_and_origin():
    assert split_host("[::1]:80") == ("::1", "80") and split_host("a:b:c") is None
    assert origin_allowed(None, "h:1") and origin_allowed("http://h:1", "h:1")
    assert not origin_allowed("null", "h:1") and not origin_allowed("http://x:1", "h:1")


def test_config_web_keys(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    pw.chmod(0o600)
    path = tmp_path / "c.toml"
    path.write_text('[service]\nweb = "127.0.0.1:9878"\n')
    assert load_config(str(path)).service.web == "127.0.0.1:9878"
    path.write_text('[service]\nweb = "10.0.1.201:9878"\n')
    with pytest.raises(ConfigError, match="reachable from other hosts; set web_password_file"):
        load_config(str(path))
    path.write_text(f'[service]\nweb = "10.0.1.201:9878"\nweb_password_file = "{pw}"\n')
    assert load_config(str(path)).service.web_password == SecretRef("file", str(pw))
    path.write_text('[service]\nweb = "127.0.0.1:9878"\nweb_password = "inline"\n')
    with pytest.raises(ConfigError) as inline:
        load_config(str(path))
    assert any("must not be written in the config file" in p for p in inline.value.problems)
    path.write_text('[service]\nweb = "nope"\n')
    with pytest.raises(ConfigError, match="is not ADDR:PORT"):
        load_config(str(path))


def test_a_new_password_value_ends_every_session(setup, tmp_path):
    start, _, _ = setup
    web = start(PASSWORD)
    cookie = request(web, "POST", "/login", {"password": PASSWORD})[1]["set-cookie"].split(";", 1)[0]
    assert request(web, "GET", "/api/status", headers={"Cookie": cookie})[0] == 200
    ref = SecretRef("file", str(tmp_path / "pw"))
    web.reload_password(ref)  # same value: sessions stay
    assert request(web, "GET", "/api/status", headers={"Cookie": cookie})[0] == 200
    (tmp_path / "pw").write_text("another-password\n")
    web.reload_password(ref)
    assert request(web, "GET", "/api/status", headers={"Cookie": cookie})[0] == 401
    assert request(web, "POST", "/login", {"password": "another-password"})[0] == 303


def test_ipv6_loopback_bind(setup):
    start, _, _ = setup
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    web = start(listen="[::1]:0")
    conn = http.client.HTTPConnection("::1", web.port, timeout=5)
    conn.request("GET", "/api/status", headers={"Host": f"[::1]:{web.port}"})
    resp = conn.getresponse()
    assert resp.status == 200 and "11.0.0.2" in resp.read().decode()
    conn.close()


def test_natlink_run_refuses_an_open_page_on_the_lan(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "c.toml"
    path.write_text(f'[service]\nstate_dir = "{tmp_path / "state"}"\nweb = "0.0.0.0:9878"\n')
    proc = subprocess.run([sys.executable, "-m", "natlink", "-c", str(path), "run"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "service.web: '0.0.0.0:9878' is reachable from other hosts; set web_password_file" in proc.stderr
    assert not (tmp_path / "state").exists()  # nothing started
