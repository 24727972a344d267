"""A small HTTP(S) client for echo services and DDNS APIs.

Built on http.client rather than requests/urllib3 on purpose: urllib3 logs full request URLs
(DuckDNS puts its token in the query) at DEBUG, and we need to pin the address family for
IPv4/IPv6 echo queries. Errors never contain the URL's query string.
"""

from __future__ import annotations

import base64
import http.client
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from natlink import __version__
from natlink.deadline import RequestDeadline, connect_tls
from natlink.secrets import Secret

log = logging.getLogger(__name__)

# dyndns2 providers ban generic agents ("badagent"); No-IP asks for name/version and a contact.
def user_agent(version: str, project_urls: list[str]) -> str:
    """PURE: "natlink/<version> (DDNS updater)", plus the Homepage from the package metadata's Project-URL
    entries ("Homepage, https://...") when it names one. natlink has no web page of its own yet: none is
    invented here, so the contact appears the day pyproject's [project.urls] gets a Homepage."""
    page = next((url.strip() for label, _, url in (u.partition(",") for u in project_urls)
                 if label.strip().lower() == "homepage" and url.strip()), None)
    return f"natlink/{version} (DDNS updater{'; ' + page if page else ''})"


def _user_agent() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        urls = metadata("natlink").get_all("Project-URL") or []
    except (ImportError, PackageNotFoundError):  # a checkout that is not installed has no metadata
        urls = []
    return user_agent(__version__, urls)


USER_AGENT = _user_agent()
# Connect to last byte, per request. Well under the service's hang limit (runner.HUNG_JOB, 300 s), so a
# provider that trickles its answer fails this request instead of stalling the job into a watchdog restart.
REQUEST_DEADLINE = 30.0


class HttpError(Exception):
    """The request did not produce an HTTP answer: kind is timeout | connect | tls | protocol | too-large."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    elapsed: float

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def _connector(family: int, deadline: RequestDeadline) -> Any:
    """socket.create_connection restricted to one address family (0 = any), every attempt within the deadline."""

    def create(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        host, port = address
        error: OSError | None = None
        for af, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, family, socket.SOCK_STREAM):
            sock = deadline.track(socket.socket(af, kind, proto))
            try:
                sock.settimeout(deadline.attempt_timeout(timeout))
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError(f"no address of the requested family for {host}")

    return create


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, *, timeout: float, deadline: RequestDeadline) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.deadline = deadline

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        connect_tls(self, self.sock, self.deadline)  # the deadline can cut a trickled handshake too


@dataclass
class HttpClient:
    """One client per run; `sent` counts requests that reached the wire (for tests and benches)."""

    timeout: float = 10.0  # per connect attempt and per read
    deadline: float = REQUEST_DEADLINE  # the whole request, however the server paces its bytes
    user_agent: str = USER_AGENT
    family: int = 0  # socket.AF_INET / AF_INET6 to pin the family, 0 = any
    max_body: int = 256 * 1024
    sent: int = field(default=0)

    def request(self, method: str, url: str, *, params: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, body: bytes | None = None,
                basic_auth: tuple[str, Secret] | None = None, bearer: Secret | None = None) -> HttpResponse:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpError("protocol", f"{url!r} is not an http(s) URL")
        where = f"{parts.scheme}://{parts.netloc}{parts.path}"  # safe to show: never the query
        path = parts.path or "/"
        query = parts.query
        if params:
            query = (query + "&" if query else "") + urlencode(params, safe=",:")
        if query:
            path += "?" + query
        all_headers = {"User-Agent": self.user_agent, "Accept": "*/*", "Connection": "close"}
        if basic_auth is not None:
            user, password = basic_auth
            token = base64.b64encode(f"{user}:{password.value}".encode()).decode()
            all_headers["Authorization"] = f"Basic {token}"
        if bearer is not None:
            all_headers["Authorization"] = f"Bearer {bearer.value}"
        all_headers.update(headers or {})
        deadline = RequestDeadline(self.deadline)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = _HTTPSConnection(parts.hostname, parts.port, timeout=self.timeout, deadline=deadline)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        conn._create_connection = _connector(self.family, deadline)  # type: ignore[attr-defined]
        started = time.monotonic()
        resp: http.client.HTTPResponse | None = None
        try:
            with deadline.running():
                try:
                    conn.request(method, path, body=body, headers=all_headers)
                    self.sent += 1
                    resp = conn.getresponse()
                    data = resp.read(self.max_body + 1)
                    headers_out = {k.lower(): v for k, v in resp.getheaders()}
                finally:
                    if deadline.expired:  # whatever the cut-off socket made http.client do, even a short "answer"
                        raise HttpError("timeout", f"{where}: no complete answer within {self.deadline:g}s "
                                                   "(the request's deadline)")
            assert resp is not None
            if len(data) > self.max_body:
                raise HttpError("too-large", f"{where}: answer larger than {self.max_body} bytes")
            return HttpResponse(resp.status, headers_out, data, time.monotonic() - started)
        except HttpError:
            raise
        except (socket.timeout, TimeoutError):
            raise HttpError("timeout", f"{where}: no answer within {self.timeout:g}s") from None
        except ssl.SSLError as exc:
            raise HttpError("tls", f"{where}: TLS failed ({exc.reason or exc.__class__.__name__})") from None
        except (ConnectionError, socket.gaierror, OSError) as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise HttpError("connect", f"{where}: cannot connect ({reason})") from None
        except http.client.HTTPException as exc:
            raise HttpError("protocol", f"{where}: broken HTTP answer ({exc.__class__.__name__})") from None
        finally:
            if resp is not None:
                resp.close()  # the answer holds the socket open (Connection: close) until it is closed
            conn.close()
