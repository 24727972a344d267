"""A small HTTP(S) call that can be pinned to one IP family (the probe checks IPv4 and IPv6 separately)."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from natlink.deadline import RequestDeadline, connect_tls

FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


class CheckerError(Exception):
    """The outside checker failed (unreachable, wrong answer, refused us): never a verdict about the port."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: dict[str, str]


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CheckerError(f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


def families(url: str) -> dict[str, str]:
    """family -> first address the URL's host resolves to in that family."""
    _scheme, host, port, _path = _split(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CheckerError(f"cannot resolve {host}: {exc.strerror}") from None
    found: dict[str, str] = {}
    for fam, _t, _p, _c, sockaddr in infos:
        name = "ipv6" if fam == socket.AF_INET6 else "ipv4"
        found.setdefault(name, str(sockaddr[0]))
    return found


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, deadline: RequestDeadline) -> None:
        super().__init__(host, port, timeout=deadline.seconds)
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        timeout = self._deadline.attempt_timeout(self.timeout)
        self.sock = self._deadline.track(socket.create_connection((self._address, self.port), timeout))


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, deadline: RequestDeadline) -> None:
        super().__init__(host, port, timeout=deadline.seconds, context=ssl.create_default_context())
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        timeout = self._deadline.attempt_timeout(self.timeout)
        raw = self._deadline.track(socket.create_connection((self._address, self.port), timeout))
        connect_tls(self, raw, self._deadline)  # the deadline can cut a trickled handshake too


def call(url: str, path: str, *, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 5.0, family: str | None = None,
         max_answer: int = 1 << 20) -> HttpAnswer:
    """One request; CheckerError for anything that is not an HTTP answer. The address family is pinned when
    `family` is given (the request then leaves with this host's address of that family). `timeout` bounds the
    whole request, connect to last byte, however slowly the checker sends (see natlink.deadline)."""
    scheme, host, port, base = _split(url)
    addrs = families(url)
    if family is not None and family not in addrs:
        raise CheckerError(f"{host} has no {family} address")
    address = addrs[family] if family else next(iter(addrs.values()))
    cls = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    deadline = RequestDeadline(timeout)
    conn = cls(host, port, address, deadline)
    resp: http.client.HTTPResponse | None = None
    try:
        with deadline.running():
            try:
                conn.request(method, base + path, body=body,
                             headers={"User-Agent": "natlink-probe", **(headers or {})})
                resp = conn.getresponse()
                data = resp.read(max_answer)
                answer = HttpAnswer(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
            finally:
                if deadline.expired:  # however http.client reacted to the cut-off socket
                    raise CheckerError(f"{host}:{port} did not send a complete answer within {timeout:g} s")
        return answer
    except CheckerError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise CheckerError(f"TLS with {host} failed: the certificate is not trusted "
                           f"({exc.verify_message or exc.reason or exc}): give the checker a publicly trusted "
                           "certificate, or trust its CA with SSL_CERT_FILE=/path/to/ca.pem in natlink's "
                           "environment") from None
    except ssl.SSLError as exc:
        raise CheckerError(f"TLS with {host} failed: {exc.reason or exc}") from None
    except (TimeoutError, socket.timeout):
        raise CheckerError(f"{host}:{port} did not answer within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise CheckerError(f"{host}:{port} refused the connection (is the checker running?)") from None
    except (OSError, http.client.HTTPException) as exc:
        raise CheckerError(f"talking to {host}:{port} failed: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        if resp is not None:
            resp.close()  # the answer holds the socket open (Connection: close) until it is closed
        conn.close()
