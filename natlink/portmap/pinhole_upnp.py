"""UPnP IGD v2 WANIPv6FirewallControl:1 — AddPinhole, UpdatePinhole, DeletePinhole — by hand-written SOAP.

Why by hand: the miniupnpc binding has no pinhole calls, and async-upnp-client (asyncio + aiohttp) reads every
service description first and cannot bind a request's source address (docs/design/ipv6.md). The IGD opens a
pinhole only for the address the request came from (secure mode), so every request is sent from it
(natlink.net.http's ``source``). Answers are parsed with defusedxml.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urljoin, urlparse

from natlink.errors import NatlinkError
from natlink.net.http import LAN_AGENT, HttpClient, HttpError
from natlink.portmap import upnp_soap, xmlsafe

log = logging.getLogger(__name__)

SERVICE = "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"
PROTO_NUM = {"tcp": 6, "udp": 17}
MAX_BODY = 256 * 1024

# WANIPv6FirewallControl:1 error codes -> (what it means, how to fix)
ERRORS: dict[int, tuple[str, str]] = {
    402: ("the router refused the pinhole's lease time (402 Invalid Args)",
          "set the mapping's lease between 1 s and 1d (86400 s); IPv6 pinholes cannot be permanent"),
    606: ("the router refused the pinhole (606 Action not authorized: secure mode allows pinholes only for the "
          "address that asks, and no internal port below 1024)",
          "use an internal_port of 1024 or more, and run natlink on the host that serves the port"),
    701: ("the router has no room for more pinholes (701 PinholeSpaceExhausted)",
          "remove unused pinholes (natlink unmap, or other clients')"),
    702: ("the router's IPv6 firewall is switched off (702 FirewallDisabled): the port is open already",
          "nothing to open; check the router's IPv6 firewall settings"),
    703: ("the router's policy allows no inbound pinholes (703 InboundPinholeNotAllowed)",
          "allow UPnP IPv6 pinholes in the router's settings, or open the port there by hand"),
    704: ("the router does not know this pinhole (704 NoSuchEntry)", "natlink map adds it again"),
    705: ("the router cannot open pinholes for this protocol (705 ProtocolNotSupported)", "use tcp or udp"),
}


class PinholeError(NatlinkError):
    def __init__(self, code: int | None, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.code = code


class NoFirewallControl(PinholeError):
    """The router does not offer WANIPv6FirewallControl (or nothing answers on its IPv6 address)."""


def upnp_error(code: int | None, description: str, what: str) -> PinholeError:
    if code in ERRORS:
        cause, fix = ERRORS[code]
        return PinholeError(code, f"{cause}: {what}", fix)
    return PinholeError(code, f"the router refused {what} (UPnP error {code}: {description or 'no description'})",
                        "see the router's log")


def control_path(root_xml: bytes) -> str | None:
    """The controlURL of WANIPv6FirewallControl:1 in a root description, or None when it has none."""
    from defusedxml import ElementTree  # imported when a router is asked: `natlink map` without IPv6 never needs it

    root = ElementTree.fromstring(root_xml)
    for service in root.iter():
        if xmlsafe.local(service.tag) != "service":
            continue
        fields = {xmlsafe.local(c.tag): (c.text or "").strip() for c in service}
        if fields.get("serviceType") == SERVICE:
            return fields.get("controlURL") or None
    return None


def envelope(action: str, args: list[tuple[str, str | int]]) -> bytes:
    """The SOAP request for a WANIPv6FirewallControl action (the IGD client's envelope, this service's type)."""
    return upnp_soap.envelope(SERVICE, action, args)


def parse_answer(status: int, data: bytes) -> dict[str, str]:
    """The output arguments of a SOAP answer; PinholeError (code, description) for a fault."""
    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(data)
    except Exception as exc:  # defusedxml raises its own classes for entities/DTDs, ParseError for junk
        raise PinholeError(None, f"the router answered HTTP {status} with no readable SOAP ({exc.__class__.__name__})",
                           "see the router's log") from None
    elements = list(root.iter())
    code = next((e.text for e in elements if xmlsafe.local(e.tag) == "errorCode"), None)
    if code is not None or status != 200:
        desc = next((e.text or "" for e in elements if xmlsafe.local(e.tag) == "errorDescription"), "")
        raise PinholeError(int(code) if code and code.strip().isdigit() else None, desc or f"HTTP {status}")
    response = next((e for e in elements if xmlsafe.local(e.tag).endswith("Response")), None)
    return {xmlsafe.local(c.tag): (c.text or "").strip() for c in (response if response is not None else [])}


@dataclass
class UpnpPinholes:
    """WANIPv6FirewallControl at ``control_url`` (on the router's IPv6 address), requests sent from ``source``."""

    control_url: str
    source: str
    timeout: float = 2.0
    mapper = "upnp"

    @classmethod
    def locate(cls, root_url: str, gateway6: str, source: str, timeout: float = 2.0) -> UpnpPinholes:
        """Read the control URL from the IGD's root description (``root_url``, found over IPv4) and point it at
        the router's IPv6 address, same port. NoFirewallControl when the IGD has no such service."""
        parsed = urlparse(root_url)
        try:
            status, data = _http(root_url, "GET", b"", {}, None, timeout)
        except HttpError as exc:
            raise NoFirewallControl(None, f"cannot read the router's UPnP description {root_url}: {exc.reason}",
                                    "check that UPnP is enabled on the router") from None
        path = control_path(data) if status == 200 else None
        if not path:
            raise NoFirewallControl(None, "the router's UPnP IGD has no IPv6 firewall control "
                                          "(no WANIPv6FirewallControl service)",
                                    "enable UPnP IGD v2 / IPv6 pinholes on the router, or open the port in its IPv6 "
                                    "firewall settings by hand")
        host = gateway6 if "%" not in gateway6 else gateway6.replace("%", "%25")
        return cls(urljoin(f"http://[{host}]:{parsed.port or 80}/", path), source, timeout)

    def _call(self, action: str, args: list[tuple[str, str | int]], what: str) -> dict[str, str]:
        headers = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": f'"{SERVICE}#{action}"'}
        try:
            status, data = _http(self.control_url, "POST", envelope(action, args), headers, self.source, self.timeout)
        except HttpError as exc:
            raise NoFirewallControl(None, f"the router's IPv6 firewall control at {self.control_url} did not "
                                          f"answer {action} from {self.source}: {exc.reason}",
                                    "check that UPnP is enabled on the router's IPv6 side") from None
        try:
            return parse_answer(status, data)
        except PinholeError as exc:
            if exc.code is None:
                raise
            raise upnp_error(exc.code, exc.message, what) from None

    def add(self, address: str, protocol: str, port: int, lease: int) -> int:
        """AddPinhole from any remote host to address:port; the router's UniqueID."""
        out = self._call("AddPinhole", [("RemoteHost", ""), ("RemotePort", 0), ("InternalClient", address),
                                        ("InternalPort", port), ("Protocol", PROTO_NUM[protocol]),
                                        ("LeaseTime", lease)], f"{protocol.upper()} [{address}]:{port}")
        try:
            return int(out.get("UniqueID", ""))
        except ValueError:
            raise PinholeError(None, f"the router answered AddPinhole without a UniqueID ({out})",
                               "see the router's log") from None

    def update(self, unique_id: int, lease: int) -> None:
        self._call("UpdatePinhole", [("UniqueID", unique_id), ("NewLeaseTime", lease)], f"pinhole {unique_id}")

    def delete(self, unique_id: int) -> None:
        self._call("DeletePinhole", [("UniqueID", unique_id)], f"pinhole {unique_id}")


def _http(url: str, method: str, body: bytes, headers: dict[str, str], source: str | None,
          timeout: float) -> tuple[int, bytes]:
    client = HttpClient(timeout=timeout, deadline=None, user_agent=LAN_AGENT, source=source, max_body=MAX_BODY)
    resp = client.request(method, url, body=body or None, headers=headers)
    return resp.status, resp.body
