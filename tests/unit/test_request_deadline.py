"""Issue 13 D5: every outbound DDNS and probe HTTP request has one overall deadline. A local server on loopback
that trickles its answer (one byte at a time, each well within the per-read timeout) must end the request with
a timeout — during the headers, the body, a body without Content-Length, or the TLS handshake — never hold the
job until the watchdog restarts the service. pytest-timeout stops a test that would hang instead."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from natlink.net.http import REQUEST_DEADLINE, HttpClient, HttpError
from natlink.probe.httpcall import CheckerError, call
from natlink.service.runner import HUNG_JOB

pytestmark = pytest.mark.timeout(30)

GAP = 0.1  # between trickled bytes: far below the per-read timeout (2 s) used here
DEADLINE = 0.5
# call()'s one timeout is both the per-read timeout and the deadline: on a starved machine a read may time out
# a moment before the deadline's timer runs; either way the request ended at its timeout, not the server's pace.
CUT_SHORT = r"did not (?:send a complete )?answer within 0\.5 s"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"


class Trickler:
    """Accepts connections on 127.0.0.1 and, after reading the request, sends ``fast`` at once and then
    ``slow`` one byte per GAP (for minutes, if nobody hangs up). With ``upstream`` it is a proxy instead:
    bytes from the client go straight through, bytes back are trickled (for a real TLS handshake)."""

    def __init__(self, fast: bytes = b"", slow: bytes = b"", upstream: tuple[str, int] | None = None) -> None:
        self.fast, self.slow, self.upstream = fast, slow, upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.cut_off = threading.Event()  # the client closed while we were still trickling
        self._server = threading.Thread(target=self._serve, daemon=True)
        self._server.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while not self.stop.is_set():
                conn, _ = self.listener.accept()
                threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            if self.stop.wait(GAP):
                return
            try:
                conn.sendall(data[i:i + 1])
            except OSError:
                self.cut_off.set()
                return

    def _one(self, conn: socket.socket) -> None:
        with conn:
            if self.upstream is None:
                conn.recv(65536)  # the request (small, one segment on loopback)
                conn.sendall(self.fast)
                self._trickle(conn, self.slow)
                return
            with socket.create_connection(self.upstream) as up:
                threading.Thread(target=self._pipe, args=(conn, up), daemon=True).start()
                while not self.stop.is_set():
                    data = up.recv(65536)
                    if not data:
                        return
                    self._trickle(conn, data)
                    if self.cut_off.is_set():
                        return

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)

    def close(self) -> None:
        self.stop.set()
        _stop_accepting(self.listener, self._server)


def _stop_accepting(listener: socket.socket, server: threading.Thread) -> None:
    """Wake the thread blocked in accept() and wait for it before closing: a bare close() from here frees the
    descriptor number while that thread may still call accept() on it, and a later test's server that gets the
    same number then has its connections taken by this dead fixture (seen: heartbeat pings answered here)."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)  # Linux: a blocked accept() returns EINVAL
    server.join(timeout=5)
    listener.close()


@pytest.fixture
def trickler() -> Iterator[list[Trickler]]:
    made: list[Trickler] = []
    yield made
    for t in made:
        t.close()


def start(made: list[Trickler], **kw: object) -> Trickler:
    t = Trickler(**kw)  # type: ignore[arg-type]
    made.append(t)
    return t


CASES = {
    "headers": dict(slow=HEAD + b"Content-Length: 2\r\n\r\nok"),
    "body": dict(fast=HEAD + b"Content-Length: 400\r\n\r\n", slow=b"x" * 400),
    "body-until-close": dict(fast=HEAD + b"Connection: close\r\n\r\n", slow=b"y" * 400),  # cut-off looks like EOF
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ddns_client_gives_up_at_its_deadline(trickler: list[Trickler], case: str) -> None:
    server = start(trickler, **CASES[case])
    client = HttpClient(timeout=2.0, deadline=DEADLINE)
    with pytest.raises(HttpError) as err:
        client.request("GET", f"http://127.0.0.1:{server.port}/nic/update")
    assert err.value.kind == "timeout"
    assert err.value.message == (f"http://127.0.0.1:{server.port}/nic/update: no complete answer within {DEADLINE:g}s "
                                 "(the request's deadline)")
    assert server.cut_off.wait(5)  # the server was still sending: only the deadline ended it


@pytest.mark.parametrize("case", sorted(CASES))
def test_probe_call_gives_up_at_its_deadline(trickler: list[Trickler], case: str) -> None:
    server = start(trickler, **CASES[case])
    with pytest.raises(CheckerError, match=rf"^127\.0\.0\.1:\d+ {CUT_SHORT}$"):
        call(f"http://127.0.0.1:{server.port}", "/v1/probe", method="POST", body=b"{}", timeout=DEADLINE)
    assert server.cut_off.wait(5)


def test_a_prompt_answer_is_unaffected(trickler: list[Trickler]) -> None:
    server = start(trickler, fast=HEAD + b"Content-Length: 5\r\n\r\ngood ")
    resp = HttpClient(timeout=2.0, deadline=5.0).request("GET", f"http://127.0.0.1:{server.port}/")
    assert (resp.status, resp.body) == (200, b"good ")
    answer = call(f"http://127.0.0.1:{server.port}", "/v1/health", timeout=5.0)
    assert (answer.status, answer.body) == (200, b"good ")


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A real TLS server on loopback with a self-signed certificate natlink is told to trust."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                raw, _ = listener.accept()
                with contextlib.suppress(OSError, ssl.SSLError), ctx.wrap_socket(raw, server_side=True) as conn:
                    conn.recv(65536)
                    conn.sendall(HEAD + b"Content-Length: 3\r\n\r\ntls")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    yield listener.getsockname()[1]
    stop.set()
    _stop_accepting(listener, server)


def test_a_trickled_tls_handshake_is_cut_too(trickler: list[Trickler], tls_server: int) -> None:
    direct = HttpClient(timeout=2.0, deadline=5.0).request("GET", f"https://127.0.0.1:{tls_server}/")
    assert direct.body == b"tls"  # the harness works: a prompt TLS server answers
    proxy = start(trickler, upstream=("127.0.0.1", tls_server))
    with pytest.raises(HttpError) as err:
        HttpClient(timeout=2.0, deadline=DEADLINE).request("GET", f"https://127.0.0.1:{proxy.port}/")
    assert err.value.kind == "timeout"
    with pytest.raises(CheckerError, match=CUT_SHORT):
        call(f"https://127.0.0.1:{proxy.port}", "/v1/health", timeout=DEADLINE)


def test_the_deadline_is_well_under_the_services_hang_limit() -> None:
    # A DDNS job may make a few requests in a row; each one alone must stay far from the hang limit.
    assert HttpClient().deadline == REQUEST_DEADLINE and 4 * REQUEST_DEADLINE < HUNG_JOB


def test_a_probe_timeout_cannot_outlast_the_hang_limit() -> None:
    from natlink.config import PROBE_TIMEOUT_MAX, parse_config
    from natlink.errors import ConfigError

    text = '[[mapping]]\nname = "rdp"\nexternal_port = 3390\n\n[[probe]]\nmapping = "rdp"\nvia = "hairpin"\n'
    assert parse_config(text + "timeout = 60\n").probes[0].timeout == 60.0
    with pytest.raises(ConfigError, match=r"probe\[0\]\.timeout: 61 s is longer than a probe may wait \(at most 60 s\)"):
        parse_config(text + "timeout = 61\n")
    assert PROBE_TIMEOUT_MAX + 3.0 < HUNG_JOB
