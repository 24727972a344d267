"""This host's LAN side: the default gateway, the source address toward it ("auto"), and whether that
address looks DHCP-assigned (then mappings break when the lease hands out another address)."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from natlink.errors import NatlinkError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LanSide:
    """The gateway to ask and this host's address toward it, each with where it came from."""

    gateway: str
    gateway_source: str  # "config" | "default route"
    lan_ip: str
    lan_ip_source: str  # "config" | "auto"


def parse_route_table(text: str) -> str | None:
    """The default IPv4 gateway from /proc/net/route text (little-endian hex), or None."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[1] != "00000000" or (len(fields) > 7 and fields[7] != "00000000"):
            continue  # not the default route
        flags = int(fields[3], 16)
        if not flags & 0x2:  # RTF_GATEWAY
            continue
        return str(ipaddress.IPv4Address(int(fields[2], 16).to_bytes(4, "little")))
    return None


def default_gateway() -> str | None:
    # thread-self: a thread switched into another network namespace must see that namespace's routes.
    for path in ("/proc/thread-self/net/route", "/proc/net/route"):
        try:
            return parse_route_table(Path(path).read_text())
        except OSError:
            continue
    return None


def source_address(gateway: str) -> str:
    """The address the kernel would send from toward ``gateway`` (UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((gateway, 9))
        except OSError as exc:
            raise NatlinkError(f"no route to the gateway {gateway}: {exc.strerror or exc}",
                               "check the network connection, or set router.gateway") from None
        return sock.getsockname()[0]


def resolve(gateway: str | None, lan_ip: str) -> LanSide:
    gw_source = "config"
    if not gateway:
        gateway, gw_source = default_gateway(), "default route"
        if not gateway:
            raise NatlinkError("this host has no IPv4 default route, so natlink cannot tell which router to ask",
                               "connect to the network, or set router.gateway = \"ROUTER-IP\" in [router]")
    if lan_ip == "auto":
        return LanSide(gateway, gw_source, source_address(gateway), "auto")
    return LanSide(gateway, gw_source, lan_ip, "config")


def parse_ip_addr_json(text: str, address: str) -> bool | None:
    """From `ip -j addr` output: True if ``address`` has a finite lifetime or the dynamic flag (DHCP, SLAAC),
    False if it is static, None if the address is not on this host."""
    try:
        links = json.loads(text)
    except ValueError:
        return None
    for link in links if isinstance(links, list) else []:
        for info in link.get("addr_info", []):
            if info.get("local") != address:
                continue
            if info.get("dynamic"):
                return True
            lft = info.get("valid_life_time")
            return isinstance(lft, int) and lft < 0xFFFFFFFF
    return None


def looks_dhcp(address: str) -> bool | None:
    """Whether the kernel holds ``address`` with a lease lifetime (set by DHCP clients). None: cannot tell."""
    import subprocess  # only when a plan changes something: not worth its import on every start

    try:
        proc = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_ip_addr_json(proc.stdout, address) if proc.returncode == 0 else None
