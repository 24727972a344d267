"""IGD v2 GetListOfPortMappings: the router's whole table in one SOAP call per protocol.

The miniupnpc binding has no call for it, and walking GetGenericPortMappingEntry costs one HTTP round trip
per entry. The request/answer codec is pure; ``fetch`` POSTs it over upnp_soap's transport (natlink.net.http).
"""

from __future__ import annotations

import re

from natlink.portmap.base import Mapping

SERVICE_V2 = "urn:schemas-upnp-org:service:WANIPConnection:2"  # the action exists only in v2
MAX_PORTS = 1000  # miniupnpd's own default; the binding walk stops at 1024 too
MAX_RESPONSE = 2 * 1024 * 1024  # ~1000 entries are ~400 kB; anything far larger is not a mapping table

_ERROR_CODE = re.compile(r"<(?:\w+:)?errorCode\s*>\s*(\d+)\s*<", re.S)


class ListUnavailable(Exception):
    """The router cannot list this way (IGD v1, a SOAP fault, garbage): walk the table entry by entry."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def encode_request(protocol: str, service: str = SERVICE_V2, number: int = MAX_PORTS) -> bytes:
    from natlink.portmap.upnp_soap import envelope

    return envelope(service, "GetListOfPortMappings", [("NewStartPort", 0), ("NewEndPort", 65535),
                                                       ("NewProtocol", protocol.upper()), ("NewManage", 1),
                                                       ("NewNumberOfPorts", number)])


def parse_listing(body: str | bytes) -> list[Mapping]:
    """The entries of a GetListOfPortMappings answer; ListUnavailable for a fault or an unreadable answer.

    The listing is an XML document inside the answer, as CDATA (miniupnpd) or escaped text; both documents are
    parsed with defusedxml (natlink.portmap.xmlsafe)."""
    from natlink.portmap import xmlsafe  # not at import: upnp_soap's GET in the discovery burst reads through here

    raw = body.encode("utf-8") if isinstance(body, str) else body
    try:
        root = xmlsafe.parse(raw, MAX_RESPONSE)
    except xmlsafe.RouterXmlError as exc:
        code = _ERROR_CODE.search(raw.decode("utf-8", "replace"))
        raise ListUnavailable(f"unreadable answer ({exc})", int(code.group(1)) if code else None) from None
    listing = next((e for e in root.iter() if xmlsafe.local(e.tag) == "NewPortListing"), None)
    if listing is None:
        code = next((e.text for e in root.iter() if xmlsafe.local(e.tag) == "errorCode"), None)
        raise ListUnavailable("no NewPortListing in the answer",
                              int(code) if code and code.strip().isdigit() else None)
    text = (listing.text or "").strip()
    if not text:
        return []
    try:
        inner = xmlsafe.parse(text.encode("utf-8"), MAX_RESPONSE)
    except xmlsafe.RouterXmlError as exc:
        raise ListUnavailable(f"unreadable NewPortListing ({exc})") from None
    out: list[Mapping] = []
    for entry in (e for e in inner.iter() if xmlsafe.local(e.tag) == "PortMappingEntry"):
        fields = {xmlsafe.local(f.tag): (f.text or "").strip() for f in entry}
        try:
            out.append(Mapping(fields["NewProtocol"].lower(), port(fields["NewExternalPort"]),
                               fields["NewInternalClient"], port(fields["NewInternalPort"]),
                               fields.get("NewDescription", ""), int(fields.get("NewLeaseTime") or 0),
                               fields.get("NewEnabled", "1").lower() in ("1", "true", "yes"),
                               fields.get("NewRemoteHost", "")))
        except (KeyError, ValueError) as exc:
            raise ListUnavailable(f"unreadable PortMappingEntry ({exc})") from None
        if len(out) > MAX_PORTS:
            raise ListUnavailable(f"the router listed more than {MAX_PORTS} entries")
    return out


def port(text: str) -> int:
    """A port number 1-65535 from router text; ValueError otherwise (never port 0)."""
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError(f"port {value} out of range")
    return value


def split_url(url: str) -> tuple[str, int, str]:
    """http://host[:port]/path -> (host, port, path)."""
    if not url.lower().startswith("http://"):
        raise ListUnavailable(f"not an http:// control URL: {url}")
    hostport, _, path = url[7:].partition("/")
    has_port = ":" in hostport and not hostport.endswith("]")  # [v6] without a port
    host, _, number = hostport.rpartition(":") if has_port else (hostport, "", "80")
    try:
        return host.strip("[]"), port(number or "80"), "/" + path
    except ValueError:
        raise ListUnavailable(f"bad port in the control URL {url}") from None


def fetch(control_url: str, protocol: str, *, timeout: float = 2.0, service: str = SERVICE_V2) -> list[Mapping]:
    """One GetListOfPortMappings call for ``protocol`` (tcp | udp), over upnp_soap's transport."""
    from natlink.portmap import upnp_soap

    try:
        status, payload = upnp_soap.post(control_url, service, "GetListOfPortMappings",
                                         encode_request(protocol, service), timeout)
    except upnp_soap.SoapFailed as exc:
        raise ListUnavailable(f"GetListOfPortMappings: {exc.message}") from None
    if status != 200:
        code = _ERROR_CODE.search(payload.decode("utf-8", "replace"))
        raise ListUnavailable(f"GetListOfPortMappings: HTTP {status}", int(code.group(1)) if code else None)
    return parse_listing(payload)

