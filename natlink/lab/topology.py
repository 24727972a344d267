"""The lab's shape: the scenarios (WAN addressing per kind of home connection) and building the namespaces,
veths, bridge, addresses and routes of one Lab (see natlink/lab/lab.py for the picture)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from dataclasses import dataclass
from typing import Any

from natlink.lab.errors import LabError
from natlink.lab.netns import add_netns, add_veth, ip, write_sysctl


@dataclass(frozen=True)
class Scenario:
    """Default WAN addressing per scenario; miniupnpd's reaction to the address does the rest."""

    wan_ip: str
    wan_host_ip: str
    prefix: int = 24
    ipv6: bool = False  # a LAN /64 and a WAN /64 beside IPv4 (natlink.lab.ipv6)
    ipv6_firewall_control: bool = True  # False: the router offers no pinholes (no WANIPv6FirewallControl, no PCP over IPv6)


SCENARIOS = {
    # 11.0.0.0/24 is not reserved, so miniupnpd treats it as a public address.
    "normal": Scenario("11.0.0.2", "11.0.0.1"),
    # Carrier-grade NAT: miniupnpd sees 100.64/10, reports no external IP and refuses mappings (501).
    "cgnat": Scenario("100.64.0.2", "100.64.0.1"),
    # Behind another home router: same miniupnpd behaviour, private WAN address.
    "double-nat": Scenario("192.168.100.2", "192.168.100.1"),
    # Public IPv4 and a public IPv6 prefix.
    "dual-stack": Scenario("11.0.0.2", "11.0.0.1", ipv6=True),
    # The common case today: no public IPv4 (CGNAT), but a public IPv6 prefix.
    "cgnat-ipv6": Scenario("100.64.0.2", "100.64.0.1", ipv6=True),
    # IPv6 is routed, but the router's IPv6 firewall cannot be opened from the LAN (pinholes off).
    "ipv6-no-pinholes": Scenario("11.0.0.2", "11.0.0.1", ipv6=True, ipv6_firewall_control=False),
}


def wan_host_for(wan_ip: str, preset: Scenario) -> str:
    net = ipaddress.ip_network(f"{wan_ip}/{preset.prefix}", strict=False)
    if ipaddress.ip_address(preset.wan_host_ip) in net and preset.wan_host_ip != wan_ip:
        return preset.wan_host_ip
    first = str(net.network_address + 1)
    return first if first != wan_ip else str(net.network_address + 2)


def build_network(lab: Any) -> None:
    """Create the namespaces and wire them: LAN bridge in the router, LAN hosts on it, the WAN link."""
    for host in lab.hosts:
        add_netns(lab.ns(host))
    rtr, lan, wan = lab.ns("rtr"), lab.ns("lan"), lab.ns("wan")
    # LAN: a bridge in the router carries 10.0.1.1; each LAN host hangs off a bridge port.
    ip("link", "add", lab.lan_bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0", ns=rtr)
    ip("addr", "add", f"{lab.gateway}/{lab.lan_prefix}", "dev", lab.lan_bridge, ns=rtr)
    ip("link", "set", lab.lan_bridge, "up", ns=rtr)
    # If br_netfilter is loaded on the host (Docker loads it), bridged LAN-to-LAN frames
    # would hit the router's forward chain (policy drop). A home router's switch does not
    # filter; the knobs are per netns.
    for knob in ("iptables", "ip6tables", "arptables"):
        with contextlib.suppress(LabError):
            if os.path.exists(f"/proc/sys/net/bridge/bridge-nf-call-{knob}"):
                write_sysctl(rtr, f"net.bridge.bridge-nf-call-{knob}", 0)
    lan_hosts = [(lan, lab.lan_ifname, lab._rtr_lan_port, lab.lan_ip)]
    if lab.with_lan2:
        lan_hosts.append((lab.ns("lan2"), lab.lan2_ifname, lab._rtr_lan2_port, lab.lan2_ip))
    for host_ns, ifname, port, addr in lan_hosts:
        add_veth(ifname, host_ns, port, rtr)
        ip("link", "set", port, "master", lab.lan_bridge, "up", ns=rtr)
        ip("addr", "add", f"{addr}/{lab.lan_prefix}", "dev", ifname, ns=host_ns)
        ip("link", "set", ifname, "up", ns=host_ns)
        ip("route", "add", "default", "via", lab.gateway, ns=host_ns)
    # WAN: router <-> the outside host (ISP / internet / carrier side).
    add_veth(lab.wan_ifname, rtr, lab.wan_host_ifname, wan)
    write_sysctl(rtr, f"net.ipv4.conf.{lab.wan_ifname}.promote_secondaries", 1)
    write_sysctl(rtr, "net.ipv4.ip_forward", 1)
    ip("addr", "add", f"{lab.wan_ip}/{lab.wan_prefix}", "dev", lab.wan_ifname, ns=rtr)
    ip("link", "set", lab.wan_ifname, "up", ns=rtr)
    ip("route", "add", "default", "via", lab.wan_host_ip, "dev", lab.wan_ifname, ns=rtr)
    ip("addr", "add", f"{lab.wan_host_ip}/{lab.wan_prefix}", "dev", lab.wan_host_ifname, ns=wan)
    ip("link", "set", lab.wan_host_ifname, "up", ns=wan)
    if lab._ipv6 is not None:
        lab._ipv6.build()
