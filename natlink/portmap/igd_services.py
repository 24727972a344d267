"""PURE: every WAN connection service an IGD describes, and which one natlink maps on.

A root description can hold several WANConnectionDevices (a FRITZ!Box in PPPoE mode lists WANPPPConnection:1
and WANIPConnection:1, only one of them connected), and a gateway can answer SSDP with several root
descriptions. miniupnpc takes the first WAN*Connection service in document order; natlink ranks them all:
Connected with a public external address first, then WANIPConnection:2 > :1 > WANPPPConnection:1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from natlink import netaddr
from natlink.portmap import xmlsafe
from natlink.portmap.discover import repoint

MAX_DESCRIPTION = 256 * 1024  # miniupnpd's is ~4 kB; a FRITZ!Box's ~12 kB
URN = "urn:schemas-upnp-org:service:"
KINDS = ("WANIPConnection", "WANPPPConnection")  # preference order between kinds
NOT_CONNECTED = ("", "0.0.0.0")  # what routers answer GetExternalIPAddress with when they have no address


@dataclass(frozen=True)
class WanService:
    """One WANIPConnection / WANPPPConnection service; URLs absolute and at the gateway."""

    kind: str  # "WANIPConnection" | "WANPPPConnection"
    version: int
    control_url: str
    description_url: str
    event_url: str | None = None
    device: str = ""  # the UDN (or friendlyName) of the WANConnectionDevice holding it

    @property
    def service_type(self) -> str:
        return f"{URN}{self.kind}:{self.version}"

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.service_type, "control_url": self.control_url,
                "description_url": self.description_url, "device": self.device}


@dataclass(frozen=True)
class Observed:
    """What one service said when asked (GetStatusInfo, GetExternalIPAddress); ``problem``: why it could not."""

    service: WanService
    status: str | None = None  # NewConnectionStatus; None: not answered (GetStatusInfo is optional on some)
    external_ip: str | None = None
    problem: str = ""

    @property
    def connected(self) -> bool:
        """Connected (or status unknown) and an external address: "Disconnected", 0.0.0.0 and "" are not."""
        return self.status in (None, "Connected") and (self.external_ip or "").strip() not in NOT_CONNECTED

    @property
    def public(self) -> bool:
        return self.connected and netaddr.classify((self.external_ip or "").strip()) is netaddr.AddrKind.PUBLIC

    def describe(self) -> str:
        if self.problem:
            return f"{self.service.label}: {self.problem}"
        if not self.connected:
            address = (self.external_ip or "").strip() or "no address"
            return f"{self.service.label}: not connected ({self.status or 'status unknown'}, {address})"
        kind = "public" if self.public else netaddr.classify(self.external_ip.strip()).value  # type: ignore[union-attr]
        return f"{self.service.label}: {self.status or 'status unknown'}, {kind} address {self.external_ip}"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.service.service_type, "control_url": self.service.control_url, "status": self.status,
                "external_ip": self.external_ip, "problem": self.problem or None, "connected": self.connected,
                "public": self.public}


@dataclass(frozen=True)
class Choice:
    """The service natlink uses, and why. ``source``: "only" | "ranked" | "cache"."""

    service: WanService
    reason: str
    source: str
    observed: tuple[Observed, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {**self.service.to_json(), "source": self.source, "reason": self.reason,
                "candidates": [o.to_json() for o in self.observed]}

    def cache_entry(self) -> dict[str, str]:
        return {"type": self.service.service_type, "control_url": self.service.control_url}


# ---------------------------------------------------------------------------------------------- parsing


def parse_description(data: bytes | str, url: str, gateway: str | None = None) -> list[WanService]:
    """Every WAN*Connection service of a root description, embedded devices at any depth, in document order.

    Control URLs are resolved against URLBase (else the description's URL) and re-pointed at ``gateway`` when
    they name another host. A service without a usable control URL (empty, not http://, a bad port) is left
    out. RouterXmlError when the document is not acceptable XML (xmlsafe: no DTD, size limit)."""
    root = xmlsafe.parse(data, MAX_DESCRIPTION)
    base = next(((e.text or "").strip() for e in root if xmlsafe.local(e.tag) == "URLBase"), "") or url
    if gateway:
        base = repoint(base, gateway)
    out: list[WanService] = []
    for device in _devices(root):
        name = _text(device, "UDN") or _text(device, "friendlyName")
        for service in _children(device, "serviceList", "service"):
            found = _service(service, base, url, gateway, name)
            if found is not None:
                out.append(found)
    return out


def services_of(descriptions: Iterable[tuple[str, bytes | str]], gateway: str | None = None) -> list[WanService]:
    """The services of several root descriptions (several IGDs answered SSDP), duplicates left out."""
    return unique(s for url, data in descriptions for s in parse_description(data, url, gateway))


def unique(services: Iterable[WanService]) -> list[WanService]:
    """First of each (service type, control URL): one IGD reached by two URLs describes its services twice."""
    seen: set[tuple[str, str]] = set()
    out: list[WanService] = []
    for s in services:
        if (s.service_type, s.control_url) not in seen:
            seen.add((s.service_type, s.control_url))
            out.append(s)
    return out


def _devices(root: Element) -> Iterable[Element]:
    """Every <device>, depth first in document order (root device, then its deviceList, recursively)."""
    stack = [e for e in root if xmlsafe.local(e.tag) == "device"][::-1]
    while stack:
        device = stack.pop()
        yield device
        stack.extend(list(_children(device, "deviceList", "device"))[::-1])


def _children(element: Element, holder: str, tag: str) -> Iterable[Element]:
    for h in element:
        if xmlsafe.local(h.tag) == holder:
            yield from (c for c in h if xmlsafe.local(c.tag) == tag)


def _text(element: Element, tag: str) -> str:
    return next(((c.text or "").strip() for c in element if xmlsafe.local(c.tag) == tag), "")


def _service(element: Element, base: str, url: str, gateway: str | None, device: str) -> WanService | None:
    stype = _text(element, "serviceType")
    if not stype.startswith(URN):
        return None
    kind, _, version = stype[len(URN):].partition(":")
    if kind not in KINDS or not version.isdigit():
        return None
    control = _absolute(_text(element, "controlURL"), base, gateway)
    if control is None:
        return None
    event = _absolute(_text(element, "eventSubURL"), base, gateway)
    return WanService(kind, int(version), control, url, event, device)


def _absolute(path: str, base: str, gateway: str | None) -> str | None:
    if not path:
        return None
    try:
        full = urljoin(base, path)
    except ValueError:
        return None
    if gateway:
        full = repoint(full, gateway)
    return full if valid_url(full) else None


def valid_url(url: str) -> bool:
    """http://host[:port]/... with a port 1-65535 (router URLs with port 0 or 99999 are seen)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return parts.scheme == "http" and bool(parts.hostname) and (port is None or 0 < port < 65536)


# ---------------------------------------------------------------------------------------------- choosing


def type_rank(s: WanService) -> tuple[int, int]:
    """WANIPConnection:2 < WANIPConnection:1 < WANPPPConnection:1 (lower is better)."""
    return (KINDS.index(s.kind), -s.version)


def tier(o: Observed) -> int:
    """0 Connected with a public address, 1 connected with another address (CGNAT, private), 2 not
    connected, 3 could not be asked."""
    if o.problem:
        return 3
    return 0 if o.public else 1 if o.connected else 2


def rank(observed: Iterable[Observed]) -> list[Observed]:
    """Best first: tier, then type (WANIPConnection:2 > :1 > WANPPPConnection:1), then document order."""
    items = list(observed)
    return sorted(items, key=lambda o: (tier(o), type_rank(o.service), items.index(o)))


def choose(observed: Iterable[Observed]) -> Choice:
    """The best of several observed services, with the reason in words."""
    ranked = rank(observed)
    if not ranked:
        raise ValueError("no WAN connection service to choose from")
    best = ranked[0]
    why = {0: "Connected with a public address", 1: "connected, but its address is not public",
           2: "none is connected; the preferred type", 3: "none answered; the preferred type"}[tier(best)]
    others = "; ".join(o.describe() for o in ranked[1:])
    reason = f"{best.describe()} — {why}" + (f" (others: {others})" if others else "")
    return Choice(best.service, reason, "ranked", tuple(ranked))


def only(service: WanService) -> Choice:
    return Choice(service, f"{service.label}: the only WAN connection service of the IGD", "only")


def cached(services: Iterable[WanService], entry: Any) -> Choice | None:
    """The service chosen last time (state "router", key "wan_service"), if the description still has it."""
    if not isinstance(entry, dict):
        return None
    for s in services:
        if s.service_type == entry.get("type") and s.control_url == entry.get("control_url"):
            return Choice(s, f"{s.label}: chosen earlier among several (cached; checked again when it fails)",
                          "cache")
    return None
