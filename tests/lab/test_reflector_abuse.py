"""The reflector under abuse, on loopback (127.0.0.x source addresses), bounded in count and time.

The reflector runs as its own process (`natlink reflector`), as deployed; the attackers and the legitimate
client run here. Slow connections drip one byte every 0.5 s; the reflector must keep answering others.
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time

import pytest

from natlink.probe import reflector_client as rc
from natlink.probe.httpcall import call
from natlink.secrets import Secret
from reflector_support import wait_healthy

SLOW = 1000
TOKENS = ("tok-one-5b1c", "tok-two-9e2f")


@pytest.fixture(autouse=True)
def enough_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _descriptors_for_the_reflector() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def reflector_proc(tmp_path):
    started: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> tuple[str, int, subprocess.Popen[str]]:
        port, metrics = _free_port(), _free_port()
        log = open(tmp_path / f"reflector-{port}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "natlink", "-v", "reflector", "--listen", f"127.0.0.1:{port}",
                                 "--insecure-http", "--metrics", f"127.0.0.1:{metrics}", *extra],
                                stdout=subprocess.DEVNULL, stderr=log, text=True,
                                preexec_fn=_descriptors_for_the_reflector)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, 200)
        return url, metrics, proc

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def slowloris(port: int, sources: list[str], count: int, seconds: float) -> dict[str, int]:
    """`count` connections spread over `sources`, each dripping a request head one byte per 0.5 s; stops by itself."""
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    stats = {"opened": 0, "refused_429": 0, "closed_by_server": 0}
    for i in range(count):
        s = socket.socket()
        s.bind((sources[i % len(sources)], 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, i)
    head = b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    sent = [0] * count
    alive = set(range(count))
    end, next_drip = time.monotonic() + seconds, 0.0
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.05):
            i = key.data
            try:
                data = socks[i].recv(4096)
            except OSError:
                data = b""
            if data.startswith(b"HTTP/1.1 429"):
                stats["refused_429"] += 1
            stats["closed_by_server"] += 1
            sel.unregister(socks[i])
            alive.discard(i)
        if time.monotonic() >= next_drip:
            next_drip = time.monotonic() + 0.5
            for i in list(alive):
                try:
                    socks[i].send(head[sent[i]:sent[i] + 1])
                    sent[i] += 1
                except OSError:
                    pass
    stats["opened"] = count
    stats["still_open"] = len(alive)
    for s in socks:
        s.close()
    sel.close()
    return stats


def metrics(port: int) -> str:
    return call(f"http://127.0.0.1:{port}", "/metrics", timeout=5).body.decode()


@pytest.mark.parametrize("sources", [["127.0.0.2"], [f"127.0.0.{10 + i}" for i in range(8)]],
                         ids=["one-address", "eight-addresses"])
def test_slowloris_does_not_starve_a_legitimate_client(reflector_proc, banner_server, sources):
    url, metrics_port, _proc = reflector_proc("--rate", "0")
    result: dict[str, int] = {}
    attack = threading.Thread(target=lambda: result.update(slowloris(int(url.rsplit(":", 1)[1]), sources, SLOW, 4.0)))
    attack.start()
    time.sleep(1.0)  # the slow connections are all open by now
    answered = 0
    try:
        while attack.is_alive() and answered < 20:
            # http_timeout 2: a probe not answered within 2 s is a CheckerError and fails the test
            ans = rc.ask(url, [rc.PortAsk(banner_server, read=6)], dial_timeout=1, http_timeout=2)
            assert ans.results[0].outcome == "open" and ans.results[0].data == b"HELLO\n"
            answered += 1
            time.sleep(0.1)
    finally:
        attack.join()
    assert answered >= 10
    # 64 open connections per address at most: the rest were refused at once with 429
    assert result["refused_429"] >= SLOW - 64 * len(sources), result
    text = metrics(metrics_port)
    assert 'natlink_reflector_refusals_total{reason="connections-per-address"}' in text
    assert 'natlink_reflector_dialbacks_total{outcome="open"}' in text


def _raw(port: int, source: str, method: str, path: str, token: str | None = None,
         body: bytes = b"") -> tuple[int, dict[str, str], socket.socket]:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    return int(lines[0].split()[1]), headers, s


def _probe(port: int, source: str, token: str | None = None) -> tuple[int, dict[str, str]]:
    status, headers, s = _raw(port, source, "POST", "/v1/probe", token, json.dumps({"ports": [9]}).encode())
    s.close()
    return status, headers


def test_hold_exhaustion_is_refused_and_nothing_else_is_affected(reflector_proc):
    url, metrics_port, _proc = reflector_proc("--hold-per-client", "3", "--hold-total", "5")
    port = int(url.rsplit(":", 1)[1])
    held = []
    for _ in range(3):
        status, _h, s = _raw(port, "127.0.0.2", "GET", "/v1/hold")
        assert status == 101
        held.append(s)
    status, headers, s = _raw(port, "127.0.0.2", "GET", "/v1/hold")
    assert status == 429 and int(headers["retry-after"]) >= 1
    s.close()
    for _ in range(2):
        status, _h, s = _raw(port, "127.0.0.3", "GET", "/v1/hold")
        assert status == 101
        held.append(s)
    status, headers, s = _raw(port, "127.0.0.4", "GET", "/v1/hold")  # all 5 taken: the reflector is full of holds
    assert status == 503 and "retry-after" in headers
    s.close()
    assert _probe(port, "127.0.0.2")[0] == 200  # probes are unaffected, from the holders too
    assert _probe(port, "127.0.0.4")[0] == 200
    held[0].sendall(b"ping\n")
    assert held[0].recv(100) == b"ping\n"  # the held echoes keep working
    text = metrics(metrics_port)
    assert "natlink_reflector_held_connections 5" in text
    assert 'reason="holds-per-address"} 1' in text and 'reason="holds-total"} 1' in text
    held.pop().close()
    time.sleep(0.3)
    status, _h, s = _raw(port, "127.0.0.4", "GET", "/v1/hold")
    assert status == 101
    for h in held + [s]:
        h.close()


def test_token_reuse_from_many_addresses_hits_the_token_budget(reflector_proc, tmp_path):
    token_file = tmp_path / "tokens"
    token_file.write_text("\n".join(TOKENS) + "\n")
    token_file.chmod(0o600)
    url, metrics_port, proc = reflector_proc("--token-file", str(token_file), "--token-rate", "3")
    port = int(url.rsplit(":", 1)[1])
    for i in range(3):  # one leaked token used from three addresses: its budget of 3 is spent
        assert _probe(port, f"127.0.0.{20 + i}", TOKENS[0])[0] == 200
    status, headers = _probe(port, "127.0.0.23", TOKENS[0])
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert _probe(port, "127.0.0.23", TOKENS[1])[0] == 200  # the same address with its own token: fine
    assert _probe(port, "127.0.0.24", TOKENS[1])[0] == 200
    assert _probe(port, "127.0.0.25")[0] == 401
    # the legitimate client through the real client code, with the other token
    ans = rc.ask(url, [rc.PortAsk(9)], dial_timeout=1, token=Secret(TOKENS[1]))
    assert ans.results[0].outcome == "refused"
    assert 'reason="budget-token"} 1' in metrics(metrics_port)
    proc.terminate()
    proc.wait(timeout=10)
    log = (tmp_path / f"reflector-{port}.log").read_text()
    assert "reason=budget-token" in log and "token=#1" in log and "token=#2" in log
    assert not any(t in log for t in TOKENS)
