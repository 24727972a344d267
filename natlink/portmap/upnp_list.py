"""IGD v2 GetListOfPortMappings: the router's whole table in one SOAP call per protocol.

The miniupnpc binding has no call for it, and walking GetGenericPortMappingEntry costs one HTTP round trip
per entry. The request/answer codec is pure; ``fetch`` is a plain HTTP/1.1 POST over a socket (http.client
would cost more to import than the call takes on a LAN).
"""

from __future__ import annotations

import re
import socket

from natlink.portmap.base import Mapping

SERVICE_V2 = "urn:schemas-upnp-org:service:WANIPConnection:2"  # the action exists only in v2
MAX_PORTS = 1000  # miniupnpd's own default; the binding walk stops at 1024 too

_LISTING = re.compile(r"<(?:\w+:)?NewPortListing\s*>(.*?)</(?:\w+:)?NewPortListing\s*>", re.S)
_ENTRY = re.compile(r"<(?:\w+:)?PortMappingEntry\s*>(.*?)</(?:\w+:)?PortMappingEntry\s*>", re.S)
_FIELD = re.compile(r"<(?:\w+:)?(New\w+)\s*>(.*?)</(?:\w+:)?\1\s*>", re.S)
_FIELD_EMPTY = re.compile(r"<(?:\w+:)?(New\w+)\s*/>")
_ERROR_CODE = re.compile(r"<(?:\w+:)?errorCode\s*>\s*(\d+)\s*<", re.S)
_REF = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


class ListUnavailable(Exception):
    """The router cannot list this way (IGD v1, a SOAP fault, garbage): walk the table entry by entry."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def encode_request(protocol: str, service: str = SERVICE_V2, number: int = MAX_PORTS) -> bytes:
    args = (f"<NewStartPort>0</NewStartPort><NewEndPort>65535</NewEndPort><NewProtocol>{protocol.upper()}"
            f"</NewProtocol><NewManage>1</NewManage><NewNumberOfPorts>{number}</NewNumberOfPorts>")
    return ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            f'<u:GetListOfPortMappings xmlns:u="{service}">{args}</u:GetListOfPortMappings>'
            '</s:Body></s:Envelope>\r\n').encode("utf-8")


def unescape(text: str) -> str:
    """XML's five entities and character references (html.unescape costs ~9 ms to import)."""
    def ref(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("#"):
            code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
            return chr(code) if 0 < code < 0x110000 else m.group(0)
        return _NAMED[name]
    return _REF.sub(ref, text) if "&" in text else text


def _text(value: str) -> str:
    value = value.strip()
    if value.startswith("<![CDATA[") and value.endswith("]]>"):
        return value[9:-3]
    return unescape(value)


def parse_listing(body: str) -> list[Mapping]:
    """The entries of a GetListOfPortMappings answer; ListUnavailable for a fault or an unreadable answer.

    The listing is an XML document inside the answer, as CDATA (miniupnpd, unescaped inside) or escaped text.
    """
    m = _LISTING.search(body)
    if m is None:
        code = _ERROR_CODE.search(body)
        raise ListUnavailable("no NewPortListing in the answer", int(code.group(1)) if code else None)
    listing = m.group(1).strip()
    if listing.startswith("<![CDATA["):
        listing = listing[9:].rsplit("]]>", 1)[0]
    elif "&lt;" in listing:
        listing = unescape(listing)
    out: list[Mapping] = []
    for entry in _ENTRY.findall(listing):
        fields = {name: _text(value) for name, value in _FIELD.findall(entry)}
        fields.update({name: "" for name in _FIELD_EMPTY.findall(entry)})
        try:
            out.append(Mapping(fields["NewProtocol"].lower(), int(fields["NewExternalPort"]),
                               fields["NewInternalClient"], int(fields["NewInternalPort"]),
                               fields.get("NewDescription", ""), int(fields.get("NewLeaseTime") or 0),
                               fields.get("NewEnabled", "1").strip().lower() in ("1", "true", "yes"),
                               fields.get("NewRemoteHost", "")))
        except (KeyError, ValueError) as exc:
            raise ListUnavailable(f"unreadable PortMappingEntry ({exc})") from None
    return out


def split_url(url: str) -> tuple[str, int, str]:
    """http://host[:port]/path -> (host, port, path)."""
    if not url.lower().startswith("http://"):
        raise ListUnavailable(f"not an http:// control URL: {url}")
    hostport, _, path = url[7:].partition("/")
    has_port = ":" in hostport and not hostport.endswith("]")  # [v6] without a port
    host, _, port = hostport.rpartition(":") if has_port else (hostport, "", "80")
    return host.strip("[]"), int(port or 80), "/" + path


def fetch(control_url: str, protocol: str, *, timeout: float = 2.0, service: str = SERVICE_V2) -> list[Mapping]:
    """One GetListOfPortMappings call for ``protocol`` (tcp | udp)."""
    host, port, path = split_url(control_url)
    body = encode_request(protocol, service)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
            f"SOAPAction: \"{service}#GetListOfPortMappings\"\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode("ascii")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(head + body)  # one segment: no Nagle / delayed-ACK stall between header and body
            data = _read_response(sock)
    except OSError as exc:
        raise ListUnavailable(f"GetListOfPortMappings: {exc}") from None
    status_line, _, rest = data.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    text = payload.decode("utf-8", "replace")
    parts = status_line.split()
    if len(parts) < 2 or parts[1] != b"200":
        code = _ERROR_CODE.search(text)
        raise ListUnavailable(f"GetListOfPortMappings: {status_line.decode('latin-1', 'replace')}",
                              int(code.group(1)) if code else None)
    return parse_listing(text)


def _read_response(sock: socket.socket) -> bytes:
    """Until the peer closes, or Content-Length bytes of body have arrived."""
    chunks: list[bytes] = []
    total, need = 0, None
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if need is None:
            data = b"".join(chunks)
            head, sep, _ = data.partition(b"\r\n\r\n")
            if sep:
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                chunked = re.search(rb"(?im)^transfer-encoding:\s*chunked", head)
                if length and not chunked:
                    need = len(head) + 4 + int(length.group(1))
        if need is not None and total >= need:
            break
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        body = _dechunk(body)
    return head + b"\r\n\r\n" + body


def _dechunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)
