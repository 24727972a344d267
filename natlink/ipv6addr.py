"""Which IPv6 address a server publishes and opens its router's firewall for (rule: docs/design/ipv6.md).

Pure: select() ranks the addresses `ip -j -6 addr` reported; read_addresses() is the only I/O.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

from natlink.netaddr import AddrKind, classify

ULA = ipaddress.IPv6Network("fc00::/7")
FOREVER = 0xFFFFFFFF  # iproute2 prints "forever" lifetimes as this number in JSON
_BAD_FLAGS = ("temporary", "deprecated", "tentative", "dadfailed")


@dataclass(frozen=True)
class Addr6:
    """One IPv6 address of this host as the kernel reports it."""

    address: str
    prefixlen: int = 64
    ifname: str = ""
    flags: frozenset[str] = frozenset()  # temporary, deprecated, tentative, dadfailed, mngtmpaddr, ...
    preferred_lft: int = FOREVER
    valid_lft: int = FOREVER


@dataclass(frozen=True)
class Selection:
    address: str | None
    prefixlen: int = 64
    ifname: str = ""
    rejected: tuple[tuple[str, str], ...] = ()  # (address, why not)
    problem: str | None = None  # why there is no address (None when there is one)
    candidates: tuple[str, ...] = field(default=())


def why_not(a: Addr6) -> str | None:
    """None if ``a`` can be a server's published address, else the reason it cannot."""
    try:
        ip = ipaddress.IPv6Address(a.address.split("%")[0])
    except ValueError:
        return "not an IPv6 address"
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped"
    if ip.is_link_local:
        return "link-local"
    if ip in ULA:
        return "unique local (ULA, fc00::/7): not reachable from the internet"
    flag = next((f for f in _BAD_FLAGS if f in a.flags), None)
    if flag == "temporary":
        return "temporary (privacy) address: it changes every few hours"
    if flag == "deprecated" or a.preferred_lft == 0:
        return "deprecated: its prefix is going away"
    if flag:
        return f"{flag}: duplicate address detection has not passed"
    kind = classify(ip)
    if kind is not AddrKind.PUBLIC:
        return f"{kind.value}: not a global unicast address"
    return None


def select(addrs: list[Addr6], interface: str | None = None) -> Selection:
    """This host's stable global IPv6 address: on ``interface`` when given; static (lifetime forever) before
    SLAAC ones, then the longest preferred lifetime (the newest prefix after a renumbering), then kernel order."""
    pool = [a for a in addrs if interface is None or a.ifname == interface]
    rejected = tuple((a.address, why) for a in pool if (why := why_not(a)) is not None)
    good = [a for a in pool if why_not(a) is None]
    if not good:
        where = f" on {interface}" if interface else ""
        if not pool:
            problem = f"this host has no IPv6 address{where}"
        else:
            problem = (f"this host has no stable global IPv6 address{where} ("
                       + "; ".join(f"{addr}: {why}" for addr, why in rejected[:4]) + ")")
        return Selection(None, rejected=rejected, problem=problem)
    ranked = sorted(enumerate(good), key=lambda ia: (ia[1].valid_lft != FOREVER, -ia[1].preferred_lft, ia[0]))
    best = ranked[0][1]
    return Selection(best.address, best.prefixlen, best.ifname, rejected, None,
                     tuple(a.address for _, a in ranked))


def eui64(mac: str) -> str:
    """The modified EUI-64 interface identifier of a MAC address (RFC 4291 appendix A), as ``::x:x:x:x``."""
    parts = [int(p, 16) for p in re.split(r"[:-]", mac.strip())]
    if len(parts) != 6 or any(not 0 <= p <= 255 for p in parts):
        raise ValueError(f"{mac!r} is not a MAC address (six hex bytes like 52:54:00:12:34:56)")
    raw = bytes([parts[0] ^ 0x02, *parts[1:3], 0xFF, 0xFE, *parts[3:]])
    return str(ipaddress.IPv6Address(b"\0" * 8 + raw))


def interface_id(spec: str) -> str:
    """``ipv6_host`` as an interface identifier: ``"::201"`` as given, ``"mac:52:54:00:12:34:56"`` → EUI-64."""
    if spec.lower().startswith("mac:"):
        return eui64(spec[4:])
    ip = ipaddress.IPv6Address(spec)
    if int(ip) >> 64:
        raise ValueError(f"{spec!r} has prefix bits set; give only the host part, e.g. \"::201\"")
    return str(ip)


def combine(address: str, prefixlen: int, iid: str) -> str:
    """The address with ``address``'s prefix (first ``prefixlen`` bits) and the interface identifier ``iid``."""
    net = ipaddress.IPv6Network(f"{address}/{prefixlen}", strict=False)
    host = int(ipaddress.IPv6Address(iid)) & int(net.hostmask)
    return str(net.network_address + host)


def from_ip_json(links: list[dict[str, Any]]) -> list[Addr6]:
    """Addr6 entries from `ip -j -6 addr show` output (loopback left out)."""
    out = []
    for link in links:
        name = link.get("ifname", "")
        if name == "lo":
            continue
        for info in link.get("addr_info", []):
            if info.get("family") != "inet6" or not info.get("local"):
                continue
            flags = frozenset(k for k, v in info.items() if v is True)
            out.append(Addr6(str(info["local"]), int(info.get("prefixlen", 64)), name, flags,
                             int(info.get("preferred_life_time", FOREVER)), int(info.get("valid_life_time", FOREVER))))
    return out


def read_addresses(interface: str | None = None) -> list[Addr6]:
    """This host's IPv6 addresses now (iproute2 JSON); OSError when `ip` fails (e.g. no such interface)."""
    argv = ["ip", "-j", "-6", "addr", "show"] + (["dev", interface] if interface else [])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    if proc.returncode != 0:
        raise OSError(proc.stderr.strip() or f"ip addr show failed ({proc.returncode})")
    return from_ip_json(json.loads(proc.stdout or "[]"))


def default_gateway6() -> tuple[str, str] | None:
    """(gateway, device) of the IPv6 default route, or None (no IPv6 route out)."""
    proc = subprocess.run(["ip", "-j", "-6", "route", "show", "default"], capture_output=True, text=True,
                          timeout=5, check=False)
    if proc.returncode != 0:
        return None
    for route in json.loads(proc.stdout or "[]"):
        if route.get("gateway"):
            return str(route["gateway"]), str(route.get("dev", ""))
    return None
