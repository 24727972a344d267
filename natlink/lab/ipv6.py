"""IPv6 beside the lab's IPv4: a LAN /64, the router's WAN /64, the WAN host, and renumbering.

The prefixes are global unicast outside every special-purpose range (like the IPv4 lab's 11.0.0.0/24): natlink
refuses to publish documentation addresses (2001:db8::/32) as it would in real life, so a lab built on them
could never show AAAA records. Nothing is routed beyond the namespaces.

No router advertisements: every address is static and added with ``nodad`` (no tentative-address delay).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from natlink.lab.netns import ip, write_sysctl

LAN_PREFIX = "2600:1:1::/64"
WAN_PREFIX = "2600:1:ff::/64"
HOST_IID = {"lan": "::201", "lan2": "::99", "rtr": "::1"}  # interface identifiers on the LAN
WAN_ROUTER_IID = "::2"
WAN_HOST_IID = "::1"


def in_prefix(prefix: str, iid: str) -> str:
    """The address with ``prefix``'s network bits and ``iid``'s host bits (both /64 here)."""
    net = ipaddress.IPv6Network(prefix)
    host = int(ipaddress.IPv6Address(iid)) & int(net.hostmask)
    return str(net.network_address + host)


@dataclass
class Ipv6Topology:
    """Interface names and namespaces of a lab, enough to (re)address it for IPv6."""

    ns: dict[str, str]  # host -> netns (lan, lan2 optional, rtr, wan)
    ifname: dict[str, str]  # host -> its LAN/WAN interface (lan, lan2, rtr = the LAN bridge, wan = the WAN host's)
    rtr_wan_if: str
    lan_prefix: str = LAN_PREFIX

    def address(self, host: str, prefix: str | None = None) -> str:
        return in_prefix(prefix or self.lan_prefix, HOST_IID[host])

    @property
    def wan_router_ip(self) -> str:
        return in_prefix(WAN_PREFIX, WAN_ROUTER_IID)

    @property
    def wan_host_ip(self) -> str:
        return in_prefix(WAN_PREFIX, WAN_HOST_IID)

    def lan_hosts(self) -> list[str]:
        return [h for h in ("lan", "lan2") if h in self.ns]

    def build(self) -> None:
        rtr, wan = self.ns["rtr"], self.ns["wan"]
        # Without forwarding a pinhole opens nothing (lab notes).
        write_sysctl(rtr, "net.ipv6.conf.all.forwarding", 1)
        self._add_lan(self.lan_prefix)
        ip("addr", "add", f"{self.wan_router_ip}/64", "dev", self.rtr_wan_if, "nodad", ns=rtr)
        ip("route", "add", "default", "via", self.wan_host_ip, "dev", self.rtr_wan_if, ns=rtr)
        ip("addr", "add", f"{self.wan_host_ip}/64", "dev", self.ifname["wan"], "nodad", ns=wan)
        ip("route", "add", self.lan_prefix, "via", self.wan_router_ip, ns=wan)
        # The first packet forwarded onto a fresh WAN link stalled ~2 s in neighbour discovery (seen here, cause
        # not found); the ISP link's neighbours are fixed, so say so up front.
        self._static_neighbour(rtr, self.rtr_wan_if, self.wan_host_ip, wan, self.ifname["wan"])
        self._static_neighbour(wan, self.ifname["wan"], self.wan_router_ip, rtr, self.rtr_wan_if)

    @staticmethod
    def _static_neighbour(ns: str, dev: str, addr: str, peer_ns: str, peer_dev: str) -> None:
        links = json.loads(ip("-j", "link", "show", peer_dev, ns=peer_ns).stdout or "[]")
        if links and links[0].get("address"):
            ip("neigh", "replace", addr, "lladdr", links[0]["address"], "dev", dev, "nud", "permanent", ns=ns)

    def _add_lan(self, prefix: str) -> None:
        rtr = self.ns["rtr"]
        ip("addr", "add", f"{self.address('rtr', prefix)}/64", "dev", self.ifname["rtr"], "nodad", ns=rtr)
        for host in self.lan_hosts():
            ip("addr", "add", f"{self.address(host, prefix)}/64", "dev", self.ifname[host], "nodad", ns=self.ns[host])
            ip("route", "replace", "default", "via", self.address("rtr", prefix), "dev", self.ifname[host],
               ns=self.ns[host])

    def renumber(self, new_prefix: str) -> None:
        """The ISP delegates another prefix: the LAN gets the new addresses, the old ones go away (a host
        keeps its interface identifier, as with SLAAC), and the WAN side routes the new prefix."""
        old = self.lan_prefix
        if ipaddress.IPv6Network(new_prefix) == ipaddress.IPv6Network(old):
            return
        self._add_lan(new_prefix)
        ip("route", "replace", new_prefix, "via", self.wan_router_ip, ns=self.ns["wan"])
        for host in self.lan_hosts():
            ip("addr", "del", f"{self.address(host, old)}/64", "dev", self.ifname[host], ns=self.ns[host])
        ip("addr", "del", f"{self.address('rtr', old)}/64", "dev", self.ifname["rtr"], ns=self.ns["rtr"])
        ip("route", "del", old, ns=self.ns["wan"], check=False)
        self.lan_prefix = new_prefix
