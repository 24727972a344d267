"""The reflector: an outside helper that dials back whoever asks it, and nobody else.

Run it on any machine outside the home network (a VPS, a friend's box):
``natlink reflector --listen [::]:8765 --tls-cert cert.pem --tls-key key.pem --token-file /etc/natlink/reflector.token``
(see systemd/natlink-reflector.service). HTTPS by default (``reflector = "https://HOST:8765"`` in the
[[probe]]); plain HTTP only with ``--insecure-http``. Limits and the threat model: docs/design/reflector.md.
The client checks the certificate against the system
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
    403 token wrong; 408 the request did not arrive within --request-timeout; 411 no Content-Length;
    413 body over --max-body; 429 over the address's or the token's budget, or too many open
    connections from the address (Retry-After); 503 the reflector as a whole is full.

``GET /v1/hold[?max=SECONDS]``  (same token rule)
    For measuring a NAT's idle timeout (``natlink doctor``): answers ``HTTP/1.1 101 Switching Protocols``
    with ``Upgrade: natlink-echo`` and from then on the raw TCP connection is a line echo — every line
    the client sends (up to 4096 bytes, ending in ``\\n``) is written back unchanged — until the client
    closes, a line is too long, or the lifetime (default and cap: --hold-max, 3600 s) passes. At most
    --hold-per-client such connections per source address (429 beyond), --hold-total overall (503).

``GET /metrics`` on the separate ``--metrics ADDR:PORT`` listener only: Prometheus text.

The token file may hold several tokens (one per line, one per user); each is compared in constant time and
never logged (the log names it by its line number, ``token=#2``). Every /v1/probe and /v1/hold takes one unit
of the address's budget (--rate per minute, burst of the same size) and of the token's (--token-rate).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from natlink.probe.reflector_limits import RateLimiter
from natlink.probe.reflector_request import PortSpec, RequestError, client_address, parse_probe_request
from natlink.probe.reflector_server import ReflectorServer
from natlink.secrets import Secret

__all__ = ["PortSpec", "RateLimiter", "Reflector", "ReflectorServer", "ReflectorSettings", "RequestError",
           "client_address", "parse_probe_request"]


@dataclass(frozen=True)
class ReflectorSettings:
    host: str = "0.0.0.0"
    port: int = 8765
    token: Secret | None = None  # one token per line
    rate: float = 60.0  # budget units (probe requests + hold openings) per minute per address, also the burst
    token_rate: float = 120.0  # budget units per minute per token
    max_ports: int = 32  # ports per request
    max_body: int = 16384  # bytes
    max_timeout: float = 10.0  # seconds per dial
    max_read: int = 1024  # bytes read back per port
    max_connections: int = 3000  # open connections overall (below the unit's LimitNOFILE=4096)
    connections_per_address: int = 64  # open connections from one address (holds included)
    max_dials: int = 256  # concurrent outgoing dials across all requests
    hold_per_client: int = 40  # doctor --measure-nat-timeout holds up to 35 at once
    hold_total: int = 512
    hold_max: float = 3600.0  # lifetime of a /v1/hold connection
    request_timeout: float = 10.0  # the WHOLE request (PROXY header, TLS handshake, head, body) within this
    tls_cert: str | None = None
    tls_key: str | None = None
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose connections start with a PROXY v2 header
    metrics: tuple[str, int] | None = None  # where /metrics listens (off when None)


@dataclass
class Reflector:
    """A running reflector on its own event loop in a background thread (for tests, the bench and the demo)."""

    settings: ReflectorSettings
    server: ReflectorServer | None = None
    thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None

    def start(self) -> "Reflector":
        self.server = ReflectorServer(self.settings)
        ready = threading.Event()

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            assert self.server is not None
            await self.server.serve(self._stop)

        self.thread = threading.Thread(target=asyncio.run, args=(main(),), name="reflector", daemon=True)
        self.thread.start()
        ready.wait(5)
        return self

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        return self.server.address

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self.settings.tls_cert else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self.thread is not None:
            self.thread.join(timeout=5)
