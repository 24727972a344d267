"""The probe's requests to its outside checker (reflector, echoip) over natlink.net.http, pinned to one IP family
(the probe checks IPv4 and IPv6 separately), and the sentences saying why the checker failed."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

from natlink.net.http import HttpClient, HttpError, HttpResponse


class CheckerError(Exception):
    """The outside checker failed (unreachable, wrong answer, refused us): never a verdict about the port."""


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


def call(url: str, path: str, *, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 5.0, family: str | None = None,
         max_answer: int = 1 << 20) -> HttpResponse:
    """One request; CheckerError for anything that is not an HTTP answer. The address family is pinned when
    `family` is given (the request then leaves with this host's address of that family). `timeout` bounds the
    whole request, connect to last byte, however slowly the checker sends (natlink.net.deadline)."""
    scheme, host, port, base = _split(url)
    parts = urlsplit(url)
    client = HttpClient(timeout=timeout, deadline=timeout, user_agent="natlink-probe", family=family,
                        max_body=max_answer)
    try:
        return client.request(method, urlunsplit((scheme, parts.netloc, base + path, "", "")), body=body,
                              headers=headers)
    except HttpError as exc:
        raise CheckerError(_why(exc, host, port, timeout, family)) from None


def _why(exc: HttpError, host: str, port: int, timeout: float, family: str | None) -> str:
    if exc.cause == "deadline":
        return f"{host}:{port} did not send a complete answer within {timeout:g} s"
    if exc.cause == "timeout":
        return f"{host}:{port} did not answer within {timeout:g} s"
    if exc.cause == "untrusted":
        return (f"TLS with {host} failed: the certificate is not trusted ({exc.detail}): give the checker a "
                "publicly trusted certificate, or trust its CA with SSL_CERT_FILE=/path/to/ca.pem in natlink's "
                "environment")
    if exc.cause == "tls":
        return f"TLS with {host} failed: {exc.detail}"
    if exc.cause == "refused":
        return f"{host}:{port} refused the connection (is the checker running?)"
    if exc.cause == "resolve":
        return f"cannot resolve {host}: {exc.detail}"
    if exc.cause == "family":
        return f"{host} has no {family} address"
    if exc.cause == "too-large":
        return f"{host}:{port} answered more than {exc.limit:g} bytes"
    return f"talking to {host}:{port} failed: {exc.detail}"
