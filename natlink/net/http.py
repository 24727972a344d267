"""The one outbound HTTP(S) client: DDNS APIs, public-IP echo services, the probe's checkers, the router's SOAP
and GENA calls, alert webhooks. Built on the standard library's http.client (docs/design/http.md says why not
requests, httpx or urllib3).

This module alone owns, for every request: the address family (ipv4 / ipv6) or a bound source address; a socket
timeout per connect attempt and per read plus one wall-clock deadline for the whole request
(natlink.net.deadline: a trickling server is cut off, TLS handshake included); a cap on the answer's size; TLS
verified against the system's CAs (OpenSSL's defaults: SSL_CERT_FILE / SSL_CERT_DIR are honoured); and secrets
kept out of logs, errors and reprs: credentials stay Secret until the header is built, an error names the URL
without its query or user info, and no exception of the library leaves this module. http.client is imported on
the first request (the router session preloads it while the discovery burst waits), so importing this module
costs next to nothing.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from natlink import __version__
from natlink.net.deadline import RequestDeadline
from natlink.secrets import Secret

log = logging.getLogger(__name__)

FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
# Connect to last byte, per request. Well under the service's hang limit (runner.HUNG_JOB, 300 s), so a
# provider that trickles its answer fails this request instead of stalling the job into a watchdog restart.
REQUEST_DEADLINE = 30.0


# dyndns2 providers ban generic agents ("badagent"); No-IP asks for name/version and a contact.
def user_agent(version: str, project_urls: list[str]) -> str:
    """PURE: "natlink/<version> (DDNS updater)", plus the Homepage from the package metadata's Project-URL
    entries ("Homepage, https://...") when it names one. natlink has no web page of its own yet: none is
    invented here, so the contact appears the day pyproject's [project.urls] gets a Homepage."""
    page = next((url.strip() for label, _, url in (u.partition(",") for u in project_urls)
                 if label.strip().lower() == "homepage" and url.strip()), None)
    return f"natlink/{version} (DDNS updater{'; ' + page if page else ''})"


@functools.cache
def default_agent() -> str:
    """This installation's agent, from its package metadata, read once when first needed (never on the router
    path's import)."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        urls = metadata("natlink").get_all("Project-URL") or []
    except (ImportError, PackageNotFoundError):  # a checkout that is not installed has no metadata
        urls = []
    return user_agent(__version__, urls)


# For the router's SOAP and GENA on the LAN: name and version, without reading the package metadata (that costs
# more than the call on the `natlink map` path).
LAN_AGENT = f"natlink/{__version__}"


def __getattr__(name: str) -> str:
    """USER_AGENT, the default agent, computed when first asked."""
    if name == "USER_AGENT":
        return default_agent()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# cause -> the coarse kind callers branch on (DDNS reports it as the outcome)
KINDS = {"deadline": "timeout", "timeout": "timeout", "refused": "connect", "resolve": "connect",
         "family": "connect", "connect": "connect", "untrusted": "tls", "tls": "tls", "protocol": "protocol",
         "too-large": "too-large", "url": "protocol"}


class HttpError(Exception):
    """The request did not produce an HTTP answer. ``kind``: timeout | connect | tls | protocol | too-large;
    ``cause`` says more (deadline, refused, resolve, family, untrusted, url, …) for callers that phrase their
    own sentence from ``host``/``port``/``detail``/``limit``. ``message`` (``where``: ``reason``) never holds a
    query or credentials."""

    def __init__(self, cause: str, where: str, detail: str = "", *, host: str = "", port: int = 0,
                 limit: float = 0) -> None:
        self.cause, self.where, self.detail, self.host, self.port, self.limit = cause, where, detail, host, port, limit
        self.kind = KINDS[cause]
        self.reason = _reason(self)  # the sentence without the URL
        self.message = f"{where} is {self.reason}" if cause == "url" else f"{where}: {self.reason}"
        super().__init__(self.message)


def _reason(e: HttpError) -> str:
    if e.cause == "deadline":
        return f"no complete answer within {e.limit:g}s (the request's deadline)"
    if e.cause == "timeout":
        return f"no answer within {e.limit:g}s"
    if e.cause == "untrusted":
        return f"TLS failed (the certificate is not trusted: {e.detail})"
    if e.cause == "tls":
        return f"TLS failed ({e.detail})"
    if e.cause == "protocol":
        return f"broken HTTP answer ({e.detail})"
    if e.cause == "too-large":
        return f"answer larger than {e.limit:g} bytes"
    if e.cause == "url":
        return "not an http(s) URL"
    return f"cannot connect ({e.detail})"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    elapsed: float
    local: str = ""  # the address the request left from (what the server saw: an IGD learns our LAN address)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Target:
    """A URL split into what the request needs; ``where`` is safe to show (no user info, no query)."""

    scheme: str
    host: str  # without brackets; an IPv6 zone as "%eth0"
    port: int
    path: str  # with the query
    where: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise HttpError("url", "the URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = f"{parts.scheme}://{parts.hostname}{parts.path}" if parts.hostname else "the URL"
            raise HttpError("url", repr(shown))
        host = parts.hostname.replace("%25", "%")  # RFC 6874 zone: [fe80::1%25eth0]
        port = port or (443 if parts.scheme == "https" else 80)
        shown = f"[{host}]" if ":" in host else host
        where = f"{parts.scheme}://{shown}{'' if parts.port is None else f':{port}'}{parts.path}"
        return cls(parts.scheme, host, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), where)

    @property
    def host_header(self) -> str:
        shown = f"[{self.host.split('%')[0]}]" if ":" in self.host else self.host
        return shown if self.port == (443 if self.scheme == "https" else 80) else f"{shown}:{self.port}"

    def error(self, cause: str, detail: str = "", limit: float = 0) -> HttpError:
        return HttpError(cause, self.where, detail, host=self.host, port=self.port, limit=limit)


def _literal_family(host: str) -> int | None:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host.split("%")[0]).version == 6 else socket.AF_INET
    except ValueError:
        return None


def addresses(host: str, port: int, family: int = 0) -> list[str]:
    """The addresses to try for ``host`` in ``family`` (0 = any), in the resolver's order; an IP literal (with its
    zone) as it is. OSError (socket.gaierror) when the name does not resolve; [] when it has none of the family."""
    literal = _literal_family(host)
    if literal is not None:
        return [host] if family in (0, literal) else []
    found: list[str] = []
    # every family, then filtered: a name with only IPv4 addresses "has no IPv6 address", it is not unresolvable
    for af, _kind, _proto, _name, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        if family in (0, af) and str(sockaddr[0]) not in found:
            found.append(str(sockaddr[0]))
    return found


def _client_module() -> Any:
    import http.client  # lazy: a command that makes no request never pays for it

    return http.client


def _connection(target: _Target, address: str, source: str | None, connect_timeout: float, read_timeout: float,
                deadline: RequestDeadline) -> Any:
    """An http.client connection to ``address`` whose connect() (a public method, overridden as http.client
    intends) binds the source, pins the address, tracks every socket for the deadline (the TLS one before its
    handshake, so a trickled handshake is cut too) and verifies TLS against the system's CAs."""
    lib = _client_module()

    class Connection(lib.HTTPConnection):  # type: ignore[name-defined,misc]
        def connect(self) -> None:
            raw = socket.create_connection((address, target.port), connect_timeout,
                                           (source, 0) if source else None)
            self.sock = deadline.track(raw)
            if target.scheme == "https":
                import ssl

                tls = ssl.create_default_context().wrap_socket(raw, server_hostname=target.host.split("%")[0],
                                                               do_handshake_on_connect=False)
                self.sock = deadline.track(tls)
                tls.do_handshake()
            self.sock.settimeout(read_timeout)

    return Connection(address, target.port, timeout=connect_timeout)


@dataclass
class HttpClient:
    """Make one per run (or per caller); ``sent`` counts requests that reached the wire (for tests and benches).
    No state is shared between requests: each opens its own connection (``Connection: close``)."""

    timeout: float = 10.0  # per connect attempt and per read
    deadline: float | None = REQUEST_DEADLINE  # the whole request, however the server paces its bytes; None:
    # only the socket timeouts (the router's SOAP on the LAN: no timer thread per call on the `natlink map` path)
    user_agent: str | None = None  # None: natlink/VERSION (DDNS updater; project page)
    family: str | None = None  # "ipv4" | "ipv6" pins the family; None = any
    source: str | None = None  # send from this local address (an IGD compares it; GENA's callback is there)
    max_body: int = 256 * 1024
    sent: int = field(default=0)

    def request(self, method: str, url: str, *, params: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, body: bytes | None = None,
                basic_auth: tuple[str, Secret] | None = None, bearer: Secret | None = None,
                family: str | None = None) -> HttpResponse:
        """One request and its whole answer, of any HTTP status; HttpError when there is no complete answer."""
        target = _Target.parse(url)
        if (family or self.family) not in (None, *FAMILIES):
            raise ValueError(f"family {family or self.family!r} is not ipv4 or ipv6")
        path = target.path
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params, safe=",:")
        sent_headers = {"Host": target.host_header, "User-Agent": self.user_agent or default_agent(),
                        "Accept": "*/*", "Connection": "close"}
        if basic_auth is not None:
            import base64  # only the DDNS providers that take basic auth need it

            user, password = basic_auth
            sent_headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password.value}".encode()).decode()
        if bearer is not None:
            sent_headers["Authorization"] = f"Bearer {bearer.value}"
        sent_headers.update(headers or {})
        deadline = RequestDeadline(math.inf if self.deadline is None else self.deadline)
        started = time.monotonic()
        try:
            with deadline.running():
                status, got, data, local = self._exchange(target, method, path, sent_headers, body,
                                                   family or self.family, deadline)
        except HttpError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the cut-off socket or the library raised
            if deadline.expired:
                raise target.error("deadline", limit=self.deadline) from None
            raise _translate(exc, target, self.timeout) from None
        if deadline.expired:  # a cut-off socket can look like a complete (short) answer
            raise target.error("deadline", limit=self.deadline)
        if len(data) > self.max_body:
            raise target.error("too-large", limit=self.max_body)
        elapsed = time.monotonic() - started
        # the origin only: a webhook's or heartbeat's path is its token
        log.debug("%s %s://%s -> HTTP %d (%.0f ms)", method, target.scheme, target.host_header, status, elapsed * 1000)
        return HttpResponse(status, got, data, elapsed, local)

    def _exchange(self, target: _Target, method: str, path: str, headers: dict[str, str], body: bytes | None,
                  family_name: str | None, deadline: RequestDeadline) -> tuple[int, dict[str, str], bytes, str]:
        family = FAMILIES[family_name] if family_name else _literal_family(self.source or "") or 0
        found = addresses(target.host, target.port, family)
        if not found:
            raise target.error("family", f"{target.host} has no {family_name or 'usable'} address")
        conn = self._connect(target, found, deadline)
        local = str(conn.sock.getsockname()[0])
        resp = None
        try:
            conn.request(method, path, body=body, headers=headers)
            self.sent += 1
            resp = conn.getresponse()
            data = resp.read(self.max_body + 1)
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, local
        finally:
            if resp is not None:
                resp.close()  # the answer holds the socket open (Connection: close) until it is closed
            conn.close()

    def _connect(self, target: _Target, found: list[str], deadline: RequestDeadline) -> Any:
        """A connected (for https: verified) connection to the first of ``found`` that accepts, every attempt
        within the deadline; a TLS failure is not retried on the next address."""
        import ssl

        error: OSError | None = None
        for address in found:
            conn = _connection(target, address, self.source, deadline.attempt_timeout(self.timeout), self.timeout,
                               deadline)
            try:
                conn.connect()
                return conn
            except ssl.SSLError:
                conn.close()
                raise
            except OSError as exc:  # refused, unreachable, no answer: the next address
                conn.close()
                error = exc
        assert error is not None
        raise error


def _translate(exc: BaseException, target: _Target, timeout: float) -> HttpError:
    """The library's or the socket's exception as an HttpError that names no secret."""
    import ssl

    lib = _client_module()
    if isinstance(exc, ssl.SSLCertVerificationError):
        return target.error("untrusted", exc.verify_message or exc.reason or exc.__class__.__name__)
    if isinstance(exc, ssl.SSLError):
        return target.error("tls", exc.reason or exc.__class__.__name__)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return target.error("timeout", limit=timeout)
    if isinstance(exc, socket.gaierror):
        return target.error("resolve", exc.strerror or exc.__class__.__name__)
    if isinstance(exc, lib.HTTPException):  # before OSError: RemoteDisconnected is both
        return target.error("protocol", exc.__class__.__name__)
    if isinstance(exc, ConnectionRefusedError):
        return target.error("refused", exc.strerror or exc.__class__.__name__)
    if isinstance(exc, OSError):
        return target.error("connect", exc.strerror or exc.__class__.__name__)
    return target.error("protocol", exc.__class__.__name__)
