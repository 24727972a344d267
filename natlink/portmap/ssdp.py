"""SSDP M-SEARCH codec for finding a UPnP Internet Gateway Device (the search itself is part of
natlink.portmap.discover's burst).

miniupnpc's discover() always waits its full delay (about 1 s); an IGD on the LAN answers in milliseconds.
The search goes both to the SSDP multicast group and straight to the gateway (UDA 1.1 unicast search,
answered without the MX delay).
"""

from __future__ import annotations

from dataclasses import dataclass


SSDP_GROUP = ("239.255.255.250", 1900)
SEARCH_TARGETS = (
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)


@dataclass(frozen=True)
class SsdpAnswer:
    """One answer to an M-SEARCH: where the device's root description is, and who sent it."""

    location: str
    st: str
    server: str
    source: str  # address the answer came from


def encode_search(st: str, host: str = "239.255.255.250:1900", mx: int = 1) -> bytes:
    return (f"M-SEARCH * HTTP/1.1\r\nHOST: {host}\r\nST: {st}\r\nMAN: \"ssdp:discover\"\r\nMX: {mx}\r\n\r\n"
            ).encode("ascii")


def parse_answer(data: bytes, source: str) -> SsdpAnswer | None:
    """An IGD search answer, or None for anything else (NOTIFYs, other devices, garbage)."""
    try:
        text = data.decode("utf-8", "replace")
    except Exception:  # pragma: no cover - decode with "replace" does not raise
        return None
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    if not lines or not lines[0].upper().startswith("HTTP/1.1 200"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    location, st = headers.get("location", ""), headers.get("st", "")
    if not location.lower().startswith("http://") or not any(t.split(":")[-2] in st for t in SEARCH_TARGETS):
        return None
    return SsdpAnswer(location, st, headers.get("server", ""), source)
