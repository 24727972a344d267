"""Classify addresses: can this be a public internet address, or does it mean "not on the internet"?

Mirrors miniupnpc's addr_is_reserved.c and adds the IPv6 special ranges.
"""

from __future__ import annotations

import functools
import ipaddress
from enum import Enum

CGNAT_V4 = ipaddress.ip_network("100.64.0.0/10")

# Ranges that can never be a reachable public IPv4 address (RFC 6890 and friends).
_RESERVED_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
]
_PRIVATE_V4 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


class AddrKind(str, Enum):
    PUBLIC = "public"
    CGNAT = "cgnat"  # 100.64.0.0/10: the ISP's NAT, shared by many customers
    PRIVATE = "private"  # RFC 1918 / IPv6 ULA: another router in front (double NAT)
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    MULTICAST = "multicast"
    RESERVED = "reserved"  # documentation, benchmarking, unspecified, future use
    INVALID = "invalid"


@functools.lru_cache(maxsize=1024)  # pure, and asked once per probed target about the same few addresses
def classify(addr: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> AddrKind:
    """What kind of address this is, from the point of view of "can the internet reach it"."""
    if addr is None or addr == "":
        return AddrKind.INVALID
    try:
        ip = ipaddress.ip_address(addr) if isinstance(addr, str) else addr
    except ValueError:
        return AddrKind.INVALID
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return AddrKind.LOOPBACK
    if ip.is_link_local:
        return AddrKind.LINK_LOCAL
    if ip.is_multicast:
        return AddrKind.MULTICAST
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in CGNAT_V4:
            return AddrKind.CGNAT
        if any(ip in n for n in _PRIVATE_V4):
            return AddrKind.PRIVATE
        if any(ip in n for n in _RESERVED_V4):
            return AddrKind.RESERVED
        return AddrKind.PUBLIC
    if ip in ipaddress.ip_network("fc00::/7"):
        return AddrKind.PRIVATE
    if ip.is_unspecified or ip.is_reserved or ip in ipaddress.ip_network("2001:db8::/32") or not ip.is_global:
        return AddrKind.RESERVED
    return AddrKind.PUBLIC


def explain_wan(addr: str | None) -> str | None:
    """One plain sentence when a router WAN address means mappings cannot work; None when it is public."""
    kind = classify(addr)
    if kind is AddrKind.PUBLIC:
        return None
    if kind is AddrKind.INVALID:
        return ("the router reports no external address: it is not connected, or it sits behind another NAT "
                "(miniupnpd-based routers hide CGNAT/private WAN addresses this way)")
    if kind is AddrKind.CGNAT:
        return (f"your router's WAN address {addr} is carrier-grade NAT: port mappings cannot be reached from the "
                "internet; ask your ISP for a public IPv4 address or use IPv6")
    if kind is AddrKind.PRIVATE:
        return (f"your router's WAN address {addr} is private: another router is in front of it (double NAT); "
                "map the port on that router too, or put this router in bridge mode")
    return f"your router's WAN address {addr} is {kind.value}, not a public address: port mappings cannot be reached from the internet"
