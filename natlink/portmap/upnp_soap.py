"""natlink's own UPnP control client (UPnP Device Architecture 1.1 §3): a root description GET and SOAP actions
on one chosen WAN connection service.

Why not the miniupnpc binding: it acts only on the first WAN*Connection service of a description, and cannot be
pointed at another control URL (docs/design/router.md). The codec is pure; the transport is natlink.net.http (one
request per call, a size limit, socket timeouts only: the LAN router's calls get no deadline timer).
Answers are parsed with defusedxml (natlink.portmap.xmlsafe).

Failures keep miniupnpc's negative codes, so natlink.portmap.session treats them as before ("the router stopped
answering": rediscover and retry once): -101 socket error, -4 HTTP error, -3 invalid response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from natlink.net.http import LAN_AGENT, HttpClient, HttpError
from natlink.portmap import upnp_list
from natlink.portmap.base import RouterUnavailable

SOCKET_ERROR, HTTP_ERROR, INVALID_RESPONSE = -101, -4, -3
MAX_ANSWER = 256 * 1024  # a SOAP answer of a WAN connection action is < 1 kB (the table listing has its own)


class SoapFault(Exception):
    """The router refused: a UPnP error code (718, 725, 606, 501 ...) and its description."""

    def __init__(self, code: int | None, description: str) -> None:
        super().__init__(f"UPnP error {code}: {description}")
        self.code = code
        self.description = description


class SoapFailed(Exception):
    """No usable answer: ``code`` is miniupnpc's negative code for the kind of failure."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def escape(text: str) -> str:
    """XML text escaping (xml.sax.saxutils would import urllib.request: ~20 ms of a cold start)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def envelope(service_type: str, action: str, args: Sequence[tuple[str, str | int]] = ()) -> bytes:
    body = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in args)
    return ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            f'<u:{action} xmlns:u="{service_type}">{body}</u:{action}></s:Body></s:Envelope>\r\n').encode("utf-8")


def parse_answer(status: int, body: bytes, action: str) -> dict[str, str]:
    """PURE: the output arguments of ``action``'s answer; SoapFault for a UPnP error, SoapFailed otherwise."""
    from natlink.portmap import xmlsafe  # not at import: the discovery burst's GET must not wait for the XML stack
    try:
        root = xmlsafe.parse(body, MAX_ANSWER)
    except xmlsafe.RouterXmlError as exc:
        raise SoapFailed(INVALID_RESPONSE if status == 200 else HTTP_ERROR,
                         f"{action}: HTTP {status}, unreadable answer ({exc})") from None
    elements = list(root.iter())
    code = next(((e.text or "").strip() for e in elements if xmlsafe.local(e.tag) == "errorCode"), None)
    if code is not None:
        text = next(((e.text or "").strip() for e in elements if xmlsafe.local(e.tag) == "errorDescription"), "")
        raise SoapFault(int(code) if code.isdigit() else None, text)
    if status != 200:
        raise SoapFailed(HTTP_ERROR, f"{action}: HTTP {status} without a UPnP error")
    response = next((e for e in elements if xmlsafe.local(e.tag) == f"{action}Response"), None)
    if response is None:
        raise SoapFailed(INVALID_RESPONSE, f"{action}: the answer has no {action}Response")
    return {xmlsafe.local(c.tag): (c.text or "").strip() for c in response}


def exchange(url: str, method: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, bytes, str]:
    """One HTTP/1.1 request: (status, body, the local address the router saw)."""
    try:
        upnp_list.split_url(url)  # an http:// URL with a port that is one
    except upnp_list.ListUnavailable as exc:
        raise SoapFailed(SOCKET_ERROR, str(exc)) from None
    client = HttpClient(timeout=timeout, deadline=None, user_agent=LAN_AGENT, max_body=upnp_list.MAX_RESPONSE)
    try:
        resp = client.request(method, url, body=body or None, headers=headers)
    except HttpError as exc:
        code = INVALID_RESPONSE if exc.kind in ("protocol", "too-large") else SOCKET_ERROR
        raise SoapFailed(code, f"{exc.host}:{exc.port}: {exc.reason}") from None
    return resp.status, resp.body, resp.local


def get(url: str, timeout: float) -> tuple[bytes, str]:
    """A root description: (document, the local address the router saw); SoapFailed unless HTTP 200."""
    status, body, local = exchange(url, "GET", {}, b"", timeout)
    if status != 200:
        raise SoapFailed(HTTP_ERROR, f"GET {url}: HTTP {status}")
    return body, local


def post(control_url: str, service_type: str, action: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    """One SOAP request (``body``: the envelope): (HTTP status, answer); SoapFailed when there is none."""
    headers = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": f'"{service_type}#{action}"'}
    status, answer, _local = exchange(control_url, "POST", headers, body, timeout)
    return status, answer


def call(control_url: str, service_type: str, action: str, args: Sequence[tuple[str, str | int]] = (), *,
         timeout: float = 2.0) -> dict[str, str]:
    """One SOAP action on a service: its output arguments, or SoapFault / SoapFailed."""
    status, body = post(control_url, service_type, action, envelope(service_type, action, args), timeout)
    return parse_answer(status, body, action)


@dataclass(frozen=True)
class Description:
    """A root description as read during the discovery burst: only the GET races the SSDP answers there (the
    XML stack's import would lose that race on a slow machine); it is parsed after the burst."""

    url: str
    body: bytes
    local: str  # the address the router saw: this host's LAN address

    def close(self) -> None:
        pass  # nothing held open; discover closes what it does not use


def fetch(url: str, timeout: float = 2.0) -> Description:
    """The root description at ``url``; RouterUnavailable when it cannot be had."""
    try:
        body, local = get(url, timeout)
    except SoapFailed as exc:
        raise RouterUnavailable(f"no UPnP IGD at {url} ({exc.message})",
                                "natlink rediscovers the router; check that UPnP is enabled") from None
    return Description(url, body, local)
