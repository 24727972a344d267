"""Link 1: is the configured LAN address on this host, and is it static or handed out by DHCP?

A DHCP address can move to another device; the router's mapping then points at the wrong machine. The
evidence comes from the kernel (``ip -j addr``: the "dynamic" flag and a finite lifetime) and from the lease
files of whichever DHCP client is present (systemd-networkd, NetworkManager, dhclient, dhcpcd).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from natlink.doctor.model import CheckResult, fail, ok, warn

log = logging.getLogger(__name__)

LINK = 1
FOREVER = 4294967295  # `ip` reports infinite lifetimes as 2^32-1


@dataclass(frozen=True)
class HostAddr:
    ifname: str
    ifindex: int
    address: str
    prefixlen: int
    dynamic: bool  # the kernel's "dynamic" flag: a DHCP/SLAAC client manages this address's lifetime
    valid_lft: int = FOREVER
    mac: str | None = None


@dataclass(frozen=True)
class LanEvidence:
    lan_ip: str
    auto: bool  # lan_ip = "auto": found as the source address toward the gateway
    addr: HostAddr | None  # None: the address is not on any interface of this host
    leases: tuple[str, ...] = ()  # "systemd-networkd lease /run/systemd/netif/leases/2", ...
    host_addresses: tuple[str, ...] = field(default=())  # this host's IPv4 addresses, for the "not here" message


# --------------------------------------------------------------------------- reading (edges)


def _run_json(argv: list[str], timeout: float = 2.0) -> list[dict]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        return json.loads(proc.stdout or "[]") if proc.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        log.debug("%s: %s", argv, exc)
        return []


def host_addresses() -> list[HostAddr]:
    """Every IPv4 address on this host's interfaces (in this network namespace)."""
    out = []
    for link in _run_json(["ip", "-j", "addr", "show"]):
        for a in link.get("addr_info", []):
            if a.get("family") != "inet":
                continue
            out.append(HostAddr(ifname=link.get("ifname", "?"), ifindex=int(link.get("ifindex", 0)),
                                address=a["local"], prefixlen=int(a.get("prefixlen", 32)),
                                dynamic=bool(a.get("dynamic")), valid_lft=int(a.get("valid_life_time", FOREVER)),
                                mac=link.get("address")))
    return out


def auto_lan_ip(gateway: str | None) -> str | None:
    """The source address this host uses toward the gateway (a route lookup; nothing is sent)."""
    routes = _run_json(["ip", "-j", "route", "get", gateway or "1.1.1.1"])
    return routes[0].get("prefsrc") if routes else None


def _networkd_leases(root: Path, addr: HostAddr) -> list[str]:
    path = root / "run/systemd/netif/leases" / str(addr.ifindex)
    try:
        text = path.read_text()
    except OSError:
        return []
    return [f"systemd-networkd lease {path}"] if f"ADDRESS={addr.address}" in text.splitlines() else []


def _nm_state(root: Path, addr: HostAddr) -> list[str]:
    # NetworkManager keeps each device's DHCP options in /run/NetworkManager/devices/<ifindex>.
    path = root / "run/NetworkManager/devices" / str(addr.ifindex)
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    section = ""
    for line in lines:
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[dhcp4]" and line == f"ip_address={addr.address}":
            return [f"NetworkManager DHCP state {path}"]
    return []


def _nmcli(addr: HostAddr) -> list[str]:
    if shutil.which("nmcli") is None:
        return []
    try:
        proc = subprocess.run(["nmcli", "-t", "-f", "DHCP4.OPTION", "device", "show", addr.ifname],
                              capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if any(line.endswith(f"ip_address = {addr.address}") for line in proc.stdout.splitlines()):
        return [f"NetworkManager (nmcli device show {addr.ifname})"]
    return []


def _dhclient_leases(root: Path, addr: HostAddr) -> list[str]:
    found = []
    for pattern in ("var/lib/dhcp/dhclient*.lease*", "var/lib/dhclient/*.lease*", "var/lib/NetworkManager/dhclient-*.lease"):
        for path in sorted(root.glob(pattern)):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            # A lease file accumulates old leases; only a block for this interface and address counts.
            for block in text.split("lease {")[1:]:
                if f"fixed-address {addr.address};" in block and f'interface "{addr.ifname}";' in block:
                    found.append(f"dhclient lease {path}")
                    break
    return found


def _dhcpcd_leases(root: Path, addr: HostAddr) -> list[str]:
    packed = ipaddress.IPv4Address(addr.address).packed
    found = []
    for pattern in (f"var/lib/dhcpcd/{addr.ifname}*.lease", f"var/lib/dhcpcd/dhcpcd-{addr.ifname}*.lease",
                    f"var/db/dhcpcd/{addr.ifname}*.lease", f"var/db/dhcpcd-{addr.ifname}*.lease"):
        for path in sorted(root.glob(pattern)):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if data[16:20] == packed:  # dhcpcd stores the raw BOOTP reply; yiaddr is at offset 16
                found.append(f"dhcpcd lease {path}")
    return found


def lease_evidence(addr: HostAddr, root: Path = Path("/")) -> tuple[str, ...]:
    """Which DHCP clients on this host hold a lease for exactly this address on this interface."""
    found = _networkd_leases(root, addr) + _nm_state(root, addr) + _dhclient_leases(root, addr) + _dhcpcd_leases(root, addr)
    if not found and root == Path("/"):
        found = _nmcli(addr)
    return tuple(dict.fromkeys(found))


def gather_lan_evidence(lan_ip: str, gateway: str | None, root: Path = Path("/")) -> LanEvidence:
    auto = lan_ip == "auto"
    resolved = auto_lan_ip(gateway) if auto else lan_ip
    addrs = host_addresses()
    here = next((a for a in addrs if a.address == resolved), None)
    leases = lease_evidence(here, root) if here else ()
    return LanEvidence(lan_ip=resolved or "", auto=auto, addr=here, leases=leases,
                       host_addresses=tuple(a.address for a in addrs if not a.address.startswith("127.")))


# --------------------------------------------------------------------------- verdict (pure)


def lan_ip_check(ev: LanEvidence) -> CheckResult:
    data = {"lan_ip": ev.lan_ip, "auto": ev.auto, "leases": list(ev.leases)}
    if not ev.lan_ip:
        return fail(LINK, "lan-ip", "router.lan_ip = \"auto\" but this host has no route toward the gateway",
                    "connect this host to the LAN, or set router.lan_ip to its LAN address", data=data)
    if ev.addr is None:
        others = ", ".join(ev.host_addresses) or "none"
        return fail(LINK, "lan-ip", f"{ev.lan_ip} (router.lan_ip) is not an address of this host (this host has: {others})",
                    "run natlink on the machine that owns this address, or set router.lan_ip to one of this host's "
                    "addresses", data=data)
    a = ev.addr
    data |= {"ifname": a.ifname, "dynamic": a.dynamic, "valid_lft": a.valid_lft, "mac": a.mac}
    where = f"{a.address} on {a.ifname}" + (" (router.lan_ip = auto)" if ev.auto else "")
    reserve = (f"reserve {a.address} for this machine (MAC {a.mac}) in the router's DHCP settings (a DHCP "
               f"reservation), or give it a static address outside the DHCP pool") if a.mac else (
               f"reserve {a.address} for this machine in the router's DHCP settings, or configure it statically")
    if ev.leases or a.dynamic or a.valid_lft != FOREVER:
        how = ", ".join(ev.leases) if ev.leases else (
            f"the kernel marks it dynamic, lifetime {a.valid_lft} s" if a.valid_lft != FOREVER else "the kernel marks it dynamic")
        return warn(LINK, "lan-ip", f"{where} is DHCP-assigned ({how}): it can move to another device, and the "
                                    "mapping would then point at the wrong machine", reserve, data=data)
    return ok(LINK, "lan-ip", f"{where} is static (no DHCP lease, lifetime forever)", data=data)
