"""The reflector: an outside helper that dials back whoever asks it, and nobody else.

Run it on any machine outside the home network (a VPS, a friend's box):
``natlink reflector --listen 0.0.0.0:8765 --token-file /etc/natlink/reflector.token``
(see systemd/natlink-reflector.service). Plain HTTP by default; ``--tls-cert/--tls-key`` serve HTTPS
(``reflector = "https://HOST:8765"`` in the [[probe]]). The client checks the certificate against the system
CA store (Python's ``ssl.create_default_context``) and the URL's host (an IP address needs an IP
subjectAltName). For a self-signed or private-CA certificate, start natlink with ``SSL_CERT_FILE=/path/ca.pem``
(OpenSSL's variable; it replaces the system store for that process — ``REQUESTS_CA_BUNDLE`` is not read). An
untrusted certificate is a ``checker-error`` saying so, never a verdict about the port.

UDP (``"protocol": "udp"``): one datagram (``natlink-probe\n``, or ``send``) and a wait for a reply. A reply
is ``open`` (natlink's UDP nonce listener replies with its nonce: ``verified``); an ICMP port-unreachable is
``refused``; silence is ``timeout``, which over UDP cannot tell filtered from closed from a service that does
not reply to an unknown datagram.

Endpoints (JSON answers; errors are ``{"error": "...", "hint": "..."}`` with a 4xx/5xx status):

``GET /v1/health``
    ``{"ok": true, "address": "<your source address>", "auth": bool, "max_ports": N}``; no token needed.

``POST /v1/probe``  (``Authorization: Bearer <token>`` when the reflector has a token)
    Body: ``{"ports": [3390, {"port": 3391, "protocol": "tcp"|"udp", "read": 64}], "timeout": 3}``.
    The reflector connects to **the request's source address only** — the body cannot name a host, so it
    cannot be used to scan third parties — on each port concurrently (TCP connect; for UDP one datagram and
    a wait for a reply) with the given timeout (capped), and, with ``read`` > 0, reads up to that many bytes
    the peer sends first (natlink's nonce, a service greeting). Answer::

        {"address": "11.0.0.2", "family": "ipv4", "results": [
          {"port": 3390, "protocol": "tcp", "outcome": "open"|"refused"|"timeout"|"unreachable"|"error",
           "elapsed": 0.004, "data": "<base64 of bytes read>", "error": ""}]}

    400 bad JSON / unknown keys / ports out of 1-65535 / more than --max-ports; 401 token missing;
    403 token wrong; 411 no Content-Length; 413 body over --max-body; 429 over the per-client --rate
    (Retry-After); 503 too busy.

``GET /v1/hold[?max=SECONDS]``  (same token rule)
    For measuring a NAT's idle timeout (``natlink doctor``): answers ``HTTP/1.1 101 Switching Protocols``
    with ``Upgrade: natlink-echo`` and from then on the raw TCP connection is a line echo — every line
    the client sends (up to 4096 bytes, ending in ``\\n``) is written back unchanged — until the client
    closes, a line is too long, or the lifetime (default and cap: --hold-max, 3600 s) passes. At most
    --hold-per-client such connections per source address (429 beyond), and --max-connections overall.

The token is compared in constant time and never logged. Each client address has a token-bucket rate
limit (--rate requests per minute, burst of the same size) on /v1/probe.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from natlink.probe.dial import UDP_PAYLOAD, DialOutcome, dial_tcp, dial_udp
from natlink.secrets import Secret

log = logging.getLogger("natlink.reflector")

API_VERSION = 1
HOLD_UPGRADE = "natlink-echo"
HOLD_LINE_MAX = 4096
# Keys a probe request may carry; anything else is rejected so a typo is not silently ignored.
_REQUEST_KEYS = {"ports", "timeout"}
_PORT_KEYS = {"port", "protocol", "read", "send"}
_TARGET_KEYS = {"host", "address", "ip", "target", "addr"}


@dataclass(frozen=True)
class ReflectorSettings:
    host: str = "0.0.0.0"
    port: int = 8765
    token: Secret | None = None
    rate: float = 30.0  # /v1/probe requests per minute per client address (also the burst size)
    max_ports: int = 32  # ports per request
    max_body: int = 16384  # bytes
    max_timeout: float = 10.0  # seconds per dial
    max_read: int = 1024  # bytes read back per port
    max_connections: int = 512  # concurrent HTTP connections (each is one thread)
    max_dials: int = 128  # concurrent outgoing dials across all requests
    hold_per_client: int = 64
    hold_max: float = 3600.0  # lifetime of a /v1/hold connection
    request_timeout: float = 10.0  # a client must send its request within this
    tls_cert: str | None = None
    tls_key: str | None = None


class RequestError(Exception):
    """An HTTP error answer: status, message, hint."""

    def __init__(self, status: int, message: str, hint: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.headers = headers or {}


@dataclass(frozen=True)
class PortSpec:
    port: int
    protocol: str = "tcp"
    read: int = 0
    send: bytes | None = None


def parse_probe_request(body: bytes, settings: ReflectorSettings) -> tuple[list[PortSpec], float]:
    """Validate a /v1/probe body (pure; raises RequestError 400)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}", 'send {"ports": [3390]}') from None
    if not isinstance(doc, dict):
        raise RequestError(400, "the body must be a JSON object", 'send {"ports": [3390]}')
    targets = _TARGET_KEYS & doc.keys()
    if targets:
        raise RequestError(400, f"key {sorted(targets)[0]!r} is not allowed: the reflector only dials back the "
                                "address the request comes from", "remove it; run the probe from the host to check")
    unknown = doc.keys() - _REQUEST_KEYS
    if unknown:
        raise RequestError(400, f"unknown key {sorted(unknown)[0]!r}", f"allowed keys: {sorted(_REQUEST_KEYS)}")
    ports = doc.get("ports")
    if not isinstance(ports, list) or not ports:
        raise RequestError(400, "'ports' must be a non-empty list", 'e.g. {"ports": [3390]}')
    if len(ports) > settings.max_ports:
        raise RequestError(400, f"{len(ports)} ports in one request; this reflector allows {settings.max_ports}",
                           "split the ports over several requests")
    timeout = doc.get("timeout", 3.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
        raise RequestError(400, "'timeout' must be a number of seconds greater than 0", 'e.g. "timeout": 3')
    specs = [_port_spec(p, settings) for p in ports]
    return specs, min(float(timeout), settings.max_timeout)


def _port_spec(item: Any, settings: ReflectorSettings) -> PortSpec:
    if isinstance(item, dict):
        unknown = item.keys() - _PORT_KEYS
        if _TARGET_KEYS & item.keys():
            raise RequestError(400, "a port entry cannot name a host: the reflector only dials back the address "
                                    "the request comes from", "remove the host")
        if unknown:
            raise RequestError(400, f"unknown key {sorted(unknown)[0]!r} in a port entry",
                               f"allowed keys: {sorted(_PORT_KEYS)}")
        port, protocol, read, send = item.get("port"), item.get("protocol", "tcp"), item.get("read", 0), item.get("send")
    else:
        port, protocol, read, send = item, "tcp", 0, None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise RequestError(400, f"port {port!r} is out of range", "ports are integers 1-65535")
    if protocol not in ("tcp", "udp"):
        raise RequestError(400, f"protocol {protocol!r} is not tcp or udp", 'use "tcp" or "udp"')
    if isinstance(read, bool) or not isinstance(read, int) or read < 0:
        raise RequestError(400, f"'read' must be a byte count >= 0, not {read!r}", 'e.g. "read": 64')
    payload = None
    if send is not None:
        if protocol != "udp" or not isinstance(send, str):
            raise RequestError(400, "'send' is base64 text and only for udp", "remove it")
        try:
            payload = base64.b64decode(send, validate=True)
        except ValueError:
            raise RequestError(400, "'send' is not valid base64", "encode the datagram in base64") from None
        if not 0 < len(payload) <= 512:
            raise RequestError(400, "'send' must be 1-512 bytes", "shorten the datagram")
    return PortSpec(port, protocol, min(read, settings.max_read), payload)


@dataclass
class RateLimiter:
    """Token bucket per client address; `per_minute` tokens refill per minute up to a burst of the same size."""

    per_minute: float
    max_clients: int = 4096
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # addr -> (tokens, last)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, client: str, now: float | None = None) -> float:
        """0 when allowed (a token is taken), else the seconds until the next token."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate, burst = self.per_minute / 60.0, max(1.0, self.per_minute)
        with self._lock:
            tokens, last = self._buckets.get(client, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._prune(now, rate, burst)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / rate

    def _prune(self, now: float, rate: float, burst: float) -> None:
        # Clients whose bucket has refilled completely carry no information: forget them.
        full = [a for a, (t, last) in self._buckets.items() if t + (now - last) * rate >= burst]
        for addr in full:
            del self._buckets[addr]
        while len(self._buckets) >= self.max_clients:  # still too many: drop the oldest
            del self._buckets[min(self._buckets, key=lambda a: self._buckets[a][1])]


def client_address(raw: str) -> str:
    """The requester's address; an IPv4-mapped IPv6 peer (dual-stack socket) becomes plain IPv4."""
    ip = ipaddress.ip_address(raw.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class ReflectorServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on connections (each one is a thread) and the shared state."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, settings: ReflectorSettings) -> None:
        self.settings = settings
        self.limiter = RateLimiter(settings.rate)
        self.dialer = ThreadPoolExecutor(max_workers=settings.max_dials, thread_name_prefix="reflector-dial")
        self._lock = threading.Lock()
        self.active = 0
        self.holds: dict[str, int] = {}
        self.tls: ssl.SSLContext | None = None
        if settings.tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(settings.tls_cert, settings.tls_key or None)
        host = settings.host
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, settings.port), ReflectorHandler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:  # "[::]" serves IPv4 too (mapped addresses are unmapped)
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            busy = self.active >= self.settings.max_connections
            if not busy:
                self.active += 1
        if busy:  # answer from the accept thread without blocking it, then drop the connection
            try:
                request.setblocking(False)
                request.send(_plain_response(503, {"error": "the reflector is busy", "hint": "retry in a few seconds"}))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            if self.tls is not None:
                request.settimeout(self.settings.request_timeout)
                try:
                    request = self.tls.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    log.debug("TLS handshake with %s failed: %s", client_address[0], exc)
                    self.shutdown_request(request)
                    return
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self.active -= 1

    def shutdown_request(self, request: Any) -> None:
        # Closing a socket with unread input makes the kernel send RST, which can destroy our answer before
        # the client reads it (e.g. a 413 for a body we refused to read): half-close, drain briefly, close.
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(0.5)
            drained = 0
            while drained < 1 << 20:
                chunk = request.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass
        self.close_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.dialer.shutdown(wait=False, cancel_futures=True)

    # ---- held echo connections

    def hold_acquire(self, client: str) -> str | None:
        """None when a held connection may start; else why not."""
        with self._lock:
            if self.holds.get(client, 0) >= self.settings.hold_per_client:
                return "per-client"
            self.holds[client] = self.holds.get(client, 0) + 1
            return None

    def hold_release(self, client: str) -> None:
        with self._lock:
            n = self.holds.get(client, 1) - 1
            if n <= 0:
                self.holds.pop(client, None)
            else:
                self.holds[client] = n

    def dial(self, address: str, spec: PortSpec, timeout: float) -> DialOutcome:
        read_window = min(timeout, 2.0)
        if spec.protocol == "udp":
            payload = spec.send if spec.send is not None else UDP_PAYLOAD
            return dial_udp(address, spec.port, timeout, payload, read=max(spec.read, 1))
        return dial_tcp(address, spec.port, timeout, read=spec.read, read_timeout=read_window)


def _plain_response(status: int, doc: dict[str, Any]) -> bytes:
    body = json.dumps(doc).encode()
    reason = {503: "Service Unavailable"}.get(status, "Error")
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


class ReflectorHandler(BaseHTTPRequestHandler):
    server: ReflectorServer
    server_version = "natlink-reflector"
    protocol_version = "HTTP/1.1"
    # Unbuffered reads: after a /v1/hold upgrade no byte the client already sent may be stuck in a buffer.
    rbufsize = 0

    def setup(self) -> None:
        self.timeout = self.server.settings.request_timeout
        super().setup()

    @property
    def client(self) -> str:
        return client_address(self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug("%s %s", self.client, format % args)

    def do_GET(self) -> None:
        self.close_connection = True
        path = urlsplit(self.path)
        try:
            if path.path in ("/v1/health", "/"):
                self._send(200, {"ok": True, "version": API_VERSION, "address": self.client,
                                 "auth": self.server.settings.token is not None,
                                 "max_ports": self.server.settings.max_ports})
            elif path.path == "/v1/hold":
                self._authorize()
                self._hold(parse_qs(path.query))
            elif path.path == "/v1/probe":
                raise RequestError(405, "use POST for /v1/probe", "POST a JSON body", {"Allow": "POST"})
            else:
                raise RequestError(404, f"no such endpoint {path.path}", "use POST /v1/probe or GET /v1/hold")
        except RequestError as exc:
            self._error(exc)

    def do_POST(self) -> None:
        self.close_connection = True
        try:
            if urlsplit(self.path).path != "/v1/probe":
                raise RequestError(404, f"no such endpoint {urlsplit(self.path).path}", "use POST /v1/probe")
            self._authorize()
            wait = self.server.limiter.allow(self.client)
            if wait:
                raise RequestError(429, "too many probe requests from your address",
                                   f"retry after {wait:.0f} s", {"Retry-After": str(max(1, round(wait)))})
            body = self._body()
            specs, timeout = parse_probe_request(body, self.server.settings)
            self._probe(specs, timeout)
        except RequestError as exc:
            self._error(exc)

    # ---- pieces

    def _authorize(self) -> None:
        token = self.server.settings.token
        if token is None:
            return
        header = self.headers.get("Authorization", "")
        if not header:
            raise RequestError(401, "this reflector needs a token", "set token_file in the [[probe]] section",
                               {"WWW-Authenticate": "Bearer"})
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.value.encode()):
            log.info("%s: wrong token", self.client)
            raise RequestError(403, "the token is wrong", "use the reflector's token file")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise RequestError(411, "chunked bodies are not accepted", "send Content-Length")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise RequestError(411, "Content-Length is required", "send Content-Length")
        try:
            length = int(length_text)
        except ValueError:
            raise RequestError(400, "Content-Length is not a number", "send Content-Length") from None
        if length < 0:
            raise RequestError(400, "Content-Length is negative", "send Content-Length")
        if length > self.server.settings.max_body:
            raise RequestError(413, f"the body is {length} bytes; the limit is {self.server.settings.max_body}",
                               "send fewer ports per request")
        chunks, got = [], 0
        while got < length:
            try:
                chunk = self.rfile.read(length - got)
            except OSError:
                chunk = b""
            if not chunk:
                raise RequestError(400, "the body ended early", "send exactly Content-Length bytes")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _probe(self, specs: list[PortSpec], timeout: float) -> None:
        address = self.client  # the only address this server ever dials
        started = time.monotonic()
        futures = [self.server.dialer.submit(self.server.dial, address, spec, timeout) for spec in specs]
        results = []
        for spec, fut in zip(specs, futures):
            outcome = fut.result()
            results.append({"port": spec.port, "protocol": spec.protocol, "outcome": outcome.outcome,
                            "elapsed": round(outcome.elapsed, 4), "data": base64.b64encode(outcome.data).decode(),
                            "error": outcome.error})
        log.info("%s: probed %s in %.3f s", address,
                 ", ".join(f"{r['port']}/{r['protocol']}={r['outcome']}" for r in results), time.monotonic() - started)
        family = "ipv6" if ":" in address else "ipv4"
        self._send(200, {"address": address, "family": family, "results": results})

    def _hold(self, query: dict[str, list[str]]) -> None:
        settings = self.server.settings
        lifetime = settings.hold_max
        if "max" in query:
            try:
                lifetime = min(lifetime, max(1.0, float(query["max"][0])))
            except ValueError:
                raise RequestError(400, "max must be a number of seconds", "e.g. /v1/hold?max=600") from None
        if self.server.hold_acquire(self.client) is not None:
            raise RequestError(429, f"more than {settings.hold_per_client} held connections from your address",
                               "close some before opening more")
        try:
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", HOLD_UPGRADE)
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            log.info("%s: hold opened (lifetime %.0f s)", self.client, lifetime)
            started = time.monotonic()
            reason = _echo_lines(self.connection, started + lifetime)
            log.info("%s: hold closed after %.1f s (%s)", self.client, time.monotonic() - started, reason)
        finally:
            self.server.hold_release(self.client)

    def _send(self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:
            log.debug("%s: could not answer: %s", self.client, exc)

    def _error(self, exc: RequestError) -> None:
        log.info("%s: %s %s", self.client, exc.status, exc.message)
        self._send(exc.status, {"error": exc.message, "hint": exc.hint}, exc.headers)


def _echo_lines(sock: socket.socket, deadline: float) -> str:
    """Write back every line received until EOF, an error, an over-long line, or the deadline."""
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "lifetime reached"
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except (TimeoutError, socket.timeout):
            return "lifetime reached"
        except OSError as exc:
            return f"connection error: {exc.strerror or exc}"
        if not chunk:
            return "client closed"
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                sock.sendall(line + b"\n")
            except OSError as exc:
                return f"connection error: {exc.strerror or exc}"
        if len(buf) > HOLD_LINE_MAX:
            return "line too long"


@dataclass
class Reflector:
    """A running reflector in a background thread (for tests, the bench and the demo)."""

    settings: ReflectorSettings
    server: ReflectorServer | None = None
    thread: threading.Thread | None = None

    def start(self) -> "Reflector":
        self.server = ReflectorServer(self.settings)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="reflector", daemon=True)
        self.thread.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self.settings.tls_cert else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)
