"""The reflector against real sockets on loopback: auth, validation, limits, the hold echo, load."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from natlink.probe import reflector_client as rc
from natlink.probe.httpcall import CheckerError, call
from natlink.probe.reflector import Reflector, ReflectorSettings
from natlink.secrets import Secret
from reflector_support import wait_healthy

TOKEN = "s3cret-reflector-token"


@pytest.fixture
def reflector():
    started = []

    def make(**kw) -> Reflector:
        r = Reflector(ReflectorSettings(host="127.0.0.1", port=0, **kw)).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


def raw_post(addr, body: bytes, headers: dict[str, str] | None = None, path="/v1/probe", length: int | None = None):
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body) if length is None else length}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1] or b"null")


def test_dials_back_open_and_refused_with_bytes(reflector, banner_server):
    r = reflector()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free_port = closed.getsockname()[1]
    closed.close()
    ans = rc.ask(r.url, [rc.PortAsk(banner_server, read=6), rc.PortAsk(free_port)], dial_timeout=1)
    assert ans.address == "127.0.0.1"
    assert ans.get(banner_server, "tcp").outcome == "open" and ans.get(banner_server, "tcp").data == b"HELLO\n"
    assert ans.get(free_port, "tcp").outcome == "refused"


def test_token_required_wrong_and_right(reflector, banner_server):
    r = reflector(token=Secret(TOKEN))
    with pytest.raises(CheckerError, match="HTTP 401.*set token_file"):
        rc.ask(r.url, [rc.PortAsk(banner_server)], dial_timeout=1)
    with pytest.raises(CheckerError, match="HTTP 403.*rejected the token"):
        rc.ask(r.url, [rc.PortAsk(banner_server)], dial_timeout=1, token=Secret("wrong"))
    ok = rc.ask(r.url, [rc.PortAsk(banner_server)], dial_timeout=1, token=Secret(TOKEN))
    assert ok.results[0].outcome == "open"
    hold = socket.create_connection(r.address, timeout=2)  # /v1/hold needs the token too
    hold.sendall(b"GET /v1/hold HTTP/1.1\r\nHost: x\r\n\r\n")
    assert hold.recv(100).startswith(b"HTTP/1.1 401")
    hold.close()


@pytest.mark.parametrize("body,status,words", [
    (b"{nope", 400, "not valid JSON"),
    (b'{"ports": [70000]}', 400, "out of range"),
    (b'{"ports": [0]}', 400, "out of range"),
    (b'{"ports": [80], "host": "10.9.9.9"}', 400, "only dials back"),
    (json.dumps({"ports": list(range(1000, 1040))}).encode(), 400, "this reflector allows 32"),
])
def test_rejects_bad_requests(reflector, body, status, words):
    r = reflector()
    got, doc = raw_post(r.address, body)
    assert got == status and words in doc["error"] and doc["hint"]


def test_rejects_oversized_body_without_reading_it(reflector):
    r = reflector(max_body=1024)
    got, doc = raw_post(r.address, b"x" * 4096)
    assert got == 413 and "limit is 1024" in doc["error"]
    got, doc = raw_post(r.address, b"", length=10**9)  # a lie about the size is refused just the same
    assert got == 413


def test_other_http_errors(reflector):
    r = reflector()
    assert call(r.url, "/v1/probe").status == 405
    assert call(r.url, "/nope").status == 404
    health = json.loads(call(r.url, "/v1/health").body)
    assert health["ok"] is True and health["address"] == "127.0.0.1" and health["auth"] is False


def test_rate_limit_per_client(reflector, banner_server):
    r = reflector(rate=3)
    for _ in range(3):
        rc.ask(r.url, [rc.PortAsk(banner_server)], dial_timeout=1)
    answer = call(r.url, "/v1/probe", method="POST", body=b'{"ports": [1]}')
    assert answer.status == 429 and int(answer.headers["retry-after"]) >= 1
    with pytest.raises(CheckerError, match="rate-limits"):
        rc.ask(r.url, [rc.PortAsk(banner_server)], dial_timeout=1)


def test_survives_200_concurrent_requests(reflector, banner_server):
    r = reflector(rate=0, connections_per_address=256)  # one address here stands for many clients

    def one(_):
        return rc.ask(r.url, [rc.PortAsk(banner_server, read=6)], dial_timeout=2, http_timeout=30).results[0]

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(one, range(200)))
    assert [x.outcome for x in results] == ["open"] * 200
    assert all(x.data == b"HELLO\n" for x in results)
    # and it still answers afterwards
    assert rc.ask(r.url, [rc.PortAsk(banner_server)], dial_timeout=1).results[0].outcome == "open"


def test_connection_cap_answers_busy(reflector):
    r = reflector(max_connections=2)
    idle = [socket.create_connection(r.address) for _ in range(2)]  # two slow clients hold both slots
    time.sleep(0.2)
    answer = call(r.url, "/v1/health")
    assert answer.status == 503
    for s in idle:
        s.close()
    time.sleep(0.3)
    assert call(r.url, "/v1/health").status == 200


def _hold(addr, query="", token=None):
    s = socket.create_connection(addr, timeout=5)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    s.sendall(f"GET /v1/hold{query} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    return s, head


def test_hold_upgrades_to_line_echo_until_lifetime(reflector):
    r = reflector(token=Secret(TOKEN))
    s, head = _hold(r.address, "?max=1.5", TOKEN)
    assert head.startswith(b"HTTP/1.1 101 ") and b"Upgrade: natlink-echo" in head
    s.sendall(b"one\ntw")
    assert s.recv(100) == b"one\n"
    s.sendall(b"o\n")
    assert s.recv(100) == b"two\n"
    t0 = time.monotonic()
    assert s.recv(100) == b""  # closed by the server at the lifetime
    assert time.monotonic() - t0 < 3
    s.close()


def test_hold_cap_per_client(reflector):
    r = reflector(hold_per_client=3)
    held = [_hold(r.address)[0] for _ in range(3)]
    s, head = _hold(r.address)
    assert head.startswith(b"HTTP/1.1 429")
    s.close()
    held.pop().close()
    time.sleep(0.2)
    s, head = _hold(r.address)
    assert head.startswith(b"HTTP/1.1 101")
    for h in held + [s]:
        h.close()


def test_cli_reflector_token_never_logged(tmp_path, banner_server):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "natlink", "-v", "reflector", "--listen", f"127.0.0.1:{port}",
                             "--token-file", str(token_file), "--insecure-http"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, 100)
        assert rc.ask(url, [rc.PortAsk(banner_server)], dial_timeout=1, token=Secret(TOKEN)).results[0].outcome == "open"
        with pytest.raises(CheckerError):
            rc.ask(url, [rc.PortAsk(banner_server)], dial_timeout=1, token=Secret(TOKEN + "x"))
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "status=403 ms=" in err and "reason=wrong-token" in err and "probed=" in err and "token=#1" in err
    assert TOKEN not in out + err


@pytest.mark.parametrize("argv,words", [
    (["--listen", "nonsense"], "is not ADDR:PORT"),
    (["--listen", "127.0.0.1:0", "--insecure-http", "--token-file", "/nonexistent/token"], "cannot read secret file"),
    (["--listen", "127.0.0.1:0", "--max-ports", "0"], "--max-ports must be at least 1"),
    (["--listen", "127.0.0.1:0"], "--tls-cert is missing"),
    (["--listen", "127.0.0.1:0", "--insecure-http", "--trusted-proxy", "nope"], "is not an address or CIDR"),
])
def test_cli_usage_errors_are_one_line(argv, words):
    proc = subprocess.run([sys.executable, "-m", "natlink", "reflector", *argv], capture_output=True, text=True,
                          timeout=20)
    assert proc.returncode == 2
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- TLS (--tls-cert/--tls-key)


def make_cert(directory, *ips: str) -> tuple[str, str]:
    """A throwaway self-signed certificate (its own CA) for the given IP addresses: (cert.pem, key.pem)."""
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    san = ",".join(f"IP:{ip}" for ip in ips)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=natlink-test-reflector", "-addext", f"subjectAltName={san}"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def tls_cert(tmp_path):
    return make_cert(tmp_path, "127.0.0.1")


def test_tls_reflector_with_trusted_ca(reflector, banner_server, tls_cert, monkeypatch):
    cert, key = tls_cert
    r = reflector(tls_cert=cert, tls_key=key)
    assert r.url.startswith("https://127.0.0.1:")
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # how natlink is told to trust a private CA
    health = call(r.url, "/v1/health")
    assert health.status == 200 and json.loads(health.body)["address"] == "127.0.0.1"
    ans = rc.ask(r.url, [rc.PortAsk(banner_server, read=6)], dial_timeout=1)
    assert ans.get(banner_server, "tcp").outcome == "open" and ans.get(banner_server, "tcp").data == b"HELLO\n"


def test_tls_reflector_untrusted_is_one_clear_checker_error(reflector, tls_cert, monkeypatch):
    cert, key = tls_cert
    r = reflector(tls_cert=cert, tls_key=key)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(CheckerError) as err:
        call(r.url, "/v1/health")
    text = str(err.value)
    assert "certificate is not trusted" in text and "SSL_CERT_FILE" in text and "\n" not in text
    # plain HTTP against the TLS port is a checker error too, and the reflector keeps serving
    with pytest.raises(CheckerError):
        call(r.url.replace("https://", "http://"), "/v1/health", timeout=2)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    assert call(r.url, "/v1/health").status == 200


def test_cli_reflector_serves_https(tls_cert, banner_server, monkeypatch):
    cert, key = tls_cert
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "natlink", "reflector", "--listen", f"127.0.0.1:{port}",
                             "--tls-cert", cert, "--tls-key", key], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    try:
        url = f"https://127.0.0.1:{port}"
        for _ in range(200):
            try:
                assert call(url, "/v1/health", timeout=1).status == 200
                break
            except CheckerError:
                time.sleep(0.05)
        ans = rc.ask(url, [rc.PortAsk(banner_server, read=6)], dial_timeout=1)
        assert ans.results[0].outcome == "open" and ans.results[0].data == b"HELLO\n"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert f"https://127.0.0.1:{port}" in out + err


def test_cli_reflector_bad_tls_files_are_one_line(tmp_path):
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    proc = subprocess.run([sys.executable, "-m", "natlink", "reflector", "--listen", "127.0.0.1:0",
                           "--tls-cert", str(bogus)], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot load the TLS certificate/key" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_client_never_sends_a_token_over_plain_http_to_a_non_loopback_host():
    # In a network namespace of its own with no interface up: even a broken guard could send nothing anywhere.
    code = ("from natlink.probe import reflector_client as rc; from natlink.secrets import Secret\n"
            "try:\n    rc.ask('http://192.0.2.7:8765', [rc.PortAsk(1)], dial_timeout=1, token=Secret('t'))\n"
            "except Exception as exc:\n    print(exc)\n")
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "would send the reflector token in clear text (http://) to 192.0.2.7" in proc.stdout, proc.stdout + proc.stderr
    assert "allow_insecure_http = true" in proc.stdout


def test_whole_request_deadline_is_not_per_byte(reflector):
    """A client dripping one byte every 0.2 s never finishes its head; the deadline counts from the accept."""
    r = reflector(request_timeout=1.0)
    head = b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100 + b"\r\n\r\n"
    with socket.create_connection(r.address, timeout=5) as s:
        sent = 0
        answer = b""
        while sent < len(head):
            try:
                s.send(head[sent:sent + 1])
            except OSError:
                break
            sent += 1
            s.settimeout(0.2)
            try:
                answer = s.recv(4096)
                break
            except TimeoutError:
                continue
    assert answer.startswith(b"HTTP/1.1 408 ") and b"did not arrive within 1 s" in answer
    assert sent < len(head)  # cut off mid-head: dripping did not extend the deadline


def test_silent_connections_are_closed_at_the_deadline_and_free_their_slot(reflector):
    r = reflector(request_timeout=0.5, max_connections=2)
    idle = [socket.create_connection(r.address) for _ in range(2)]
    assert call(r.url, "/v1/health").status == 503  # both slots taken
    for s in idle:
        s.settimeout(5)
        assert s.recv(100) == b""  # closed by the reflector, without an answer to a request never sent
        s.close()
    assert call(r.url, "/v1/health").status == 200


def test_metrics_listener(reflector, banner_server):
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    r = reflector(metrics=("127.0.0.1", port), token=Secret(TOKEN))
    rc.ask(r.url, [rc.PortAsk(banner_server)], dial_timeout=1, token=Secret(TOKEN))
    with pytest.raises(CheckerError):
        rc.ask(r.url, [rc.PortAsk(banner_server)], dial_timeout=1, token=Secret("nope"))
    text = call(f"http://127.0.0.1:{port}", "/metrics").body.decode()
    assert 'natlink_reflector_requests_total{endpoint="/v1/probe"} 2' in text
    assert 'natlink_reflector_dialbacks_total{outcome="open"} 1' in text
    assert 'natlink_reflector_refusals_total{reason="wrong token"} 1' in text
    assert "natlink_reflector_open_connections 1" in text  # this very request
    assert call(r.url, "/metrics").status == 404  # never on the public port
    assert TOKEN not in text


def test_cli_prints_an_ipv6_listen_address_in_brackets():
    with socket.socket(socket.AF_INET6) as probe_port:
        probe_port.bind(("::1", 0))
        port = probe_port.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "natlink", "reflector", "--listen", f"[::1]:{port}",
                             "--insecure-http"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            try:
                if call(f"http://[::1]:{port}", "/v1/health", timeout=1).status == 200:
                    break
            except CheckerError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=5)
    assert f"natlink reflector on http://[::1]:{port} " in out + err, out + err
    assert "plain HTTP (--insecure-http)" in err


def test_probe_against_a_loopback_reflector_leaves_no_thread_to_wait_for(reflector, tmp_path):
    """An unanswered router must not hold `natlink probe` at exit: its lookups run in daemon threads."""
    import threading

    from natlink.config import load_config
    from natlink.probe.prober import probe_all

    r = reflector()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "natlink.toml"
    cfg.write_text(f"""
[router]
gateway = "127.0.0.1"  # nothing answers there; everything stays on loopback (no SSDP multicast either)
lan_ip = "127.0.0.1"
protocols = ["natpmp", "pcp"]
timeout = 0.5
[public_ip]
sources = ["router"]
[[mapping]]
name = "web"
protocol = "tcp"
external_port = {port}
internal_port = {port}
internal_ip = "127.0.0.1"
[[probe]]
mapping = "web"
reflector = "{r.url}"
[service]
state_dir = "{tmp_path}/state"
""")
    results = probe_all(load_config(str(cfg)))
    assert [(x.verdict.value, x.extra.get("seen_as")) for x in results] == [("verified", "127.0.0.1")]
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith(("probe-router", "nonce")))
