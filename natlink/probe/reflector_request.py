"""The reflector's requests, read as an attacker would write them (pure): the HTTP head, a /v1/probe body.

Nothing here touches a socket; the server (reflector_server.py) feeds bytes in and gets dataclasses or a
RequestError (status, message, hint) back.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

HEAD_MAX = 8192  # request line + headers
# Keys a probe request may carry; anything else is rejected so a typo is not silently ignored.
_REQUEST_KEYS = {"ports", "timeout"}
_PORT_KEYS = {"port", "protocol", "read", "send"}
_TARGET_KEYS = {"host", "address", "ip", "target", "addr"}


@dataclass(frozen=True)
class ProbeLimits:
    """The caps a probe request is checked against (a slice of the reflector's settings)."""

    max_ports: int = 32
    max_timeout: float = 10.0
    max_read: int = 1024


class RequestError(Exception):
    """An HTTP error answer: status, message, hint; `reason` is the short label counted in the metrics."""

    def __init__(self, status: int, message: str, hint: str = "", headers: dict[str, str] | None = None,
                 reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.headers = headers or {}
        self.reason = reason or {400: "bad-request", 401: "no-token", 403: "bad-token", 404: "not-found",
                                 405: "method", 411: "length", 413: "too-large", 429: "budget",
                                 503: "busy"}.get(status, str(status))


@dataclass(frozen=True)
class HttpHead:
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    def body_length(self, max_body: int) -> int:
        """Content-Length, checked against max_body (RequestError 411/400/413); chunked bodies are refused."""
        if "transfer-encoding" in self.headers:
            raise RequestError(411, "chunked bodies are not accepted", "send Content-Length")
        text = self.headers.get("content-length")
        if text is None:
            raise RequestError(411, "Content-Length is required", "send Content-Length")
        if not text.isdigit():
            raise RequestError(400, "Content-Length is not a number", "send Content-Length")
        length = int(text)
        if length > max_body:
            raise RequestError(413, f"the body is {length} bytes; the limit is {max_body}",
                               "send fewer ports per request")
        return length


def parse_head(raw: bytes) -> HttpHead:
    """The request line and headers (up to and including the blank line); RequestError 400 when malformed."""
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError:  # latin-1 decodes anything; kept for clarity of intent
        raise RequestError(400, "the request head is not text", "send an HTTP/1.1 request") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise RequestError(400, "this is not an HTTP/1.x request", "send an HTTP/1.1 request")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise RequestError(400, "a header line is malformed", "send Name: value header lines")
        headers[name.lower()] = value.strip()
    url = urlsplit(parts[1])
    return HttpHead(parts[0], url.path, parse_qs(url.query), headers)


def hold_lifetime(query: dict[str, list[str]], hold_max: float) -> float:
    """The lifetime of a /v1/hold connection: ?max=SECONDS, at least 1 s, at most hold_max."""
    if "max" not in query:
        return hold_max
    try:
        return min(hold_max, max(1.0, float(query["max"][0])))
    except ValueError:
        raise RequestError(400, "max must be a number of seconds", "e.g. /v1/hold?max=600") from None


@dataclass(frozen=True)
class PortSpec:
    port: int
    protocol: str = "tcp"
    read: int = 0
    send: bytes | None = None


def parse_probe_request(body: bytes, settings: ProbeLimits) -> tuple[list[PortSpec], float]:
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
    # No amplification: a UDP entry's JSON is longer than its datagram (base64 of `send` is 4/3 of it; the
    # default datagram is 14 bytes), TCP dial-backs carry no payload: nothing sent exceeds what was received.
    return specs, min(float(timeout), settings.max_timeout)


def _port_spec(item: Any, settings: ProbeLimits) -> PortSpec:
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



def client_address(raw: str) -> str:
    """The requester's address; an IPv4-mapped IPv6 peer (dual-stack socket) becomes plain IPv4."""
    ip = ipaddress.ip_address(raw.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


