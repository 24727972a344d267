"""What happens to a home network, as Lab methods a test calls: the ISP changes the WAN address or the IPv6
prefix, the router goes down / reboots / is reconfigured, a port is blocked upstream, the NAT forgets idle
flows. A mixin of Lab (natlink/lab/lab.py); natlink/lab/faults.py builds rarer router faults on these."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import signal
import time
from collections.abc import Callable
from typing import Any

from natlink.lab import probes
from natlink.lab.errors import LabError
from natlink.lab.netns import ip, write_sysctl
from natlink.lab.router import flush_miniupnpd_chains, set_port_blocked


class NetworkEvents:
    """Lab's scenario methods; Lab owns the namespaces, daemons and addresses they change."""

    wan_ip: str
    wan_prefix: int
    wan_host_ip: str
    wan_ifname: str
    wan_host_ifname: str
    gateway: str
    _miniupnpd: Any
    _router_cfg: Any
    ns: Callable[[str], str]
    call: Callable[..., Any]
    wait_ready: Callable[..., None]
    _v6: Callable[[], Any]

    def ip_change(self, new_ip: str) -> None:
        """The ISP hands the router a new WAN address (like a PPPoE reconnect)."""
        rtr, wan = self.ns("rtr"), self.ns("wan")
        old_ip = self.wan_ip
        if new_ip == old_ip:
            return
        ip("addr", "add", f"{new_ip}/{self.wan_prefix}", "dev", self.wan_ifname, ns=rtr)
        ip("addr", "del", f"{old_ip}/{self.wan_prefix}", "dev", self.wan_ifname, ns=rtr)
        # Removing the old address may take routes with it; re-assert them (onlink copes with
        # a new address outside the WAN host's subnet).
        ip("route", "replace", "default", "via", self.wan_host_ip, "dev", self.wan_ifname, "onlink", ns=rtr)
        wan_net = ipaddress.ip_network(f"{self.wan_host_ip}/{self.wan_prefix}", strict=False)
        if ipaddress.ip_address(new_ip) not in wan_net:
            ip("route", "replace", f"{new_ip}/32", "dev", self.wan_host_ifname, ns=wan)
        self.wan_ip = new_ip
        if self._miniupnpd is not None and self._miniupnpd.pid is not None:
            self._miniupnpd.signal(signal.SIGUSR1)  # miniupnpd re-reads the external address
            self._wait_natpmp_sees(new_ip)

    def _wait_natpmp_sees(self, new_ip: str, timeout: float = 2.0) -> None:
        """Return once miniupnpd has handled SIGUSR1, so callers never race the signal.

        It has when NAT-PMP reports the new address, or an error (a reserved address)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                answer = self.call("lan", probes.natpmp_public_address, self.gateway)
                if answer.result != 0 or answer.address == new_ip:
                    return
            time.sleep(0.005)
        raise LabError(f"miniupnpd did not pick up the new WAN address {new_ip} within {timeout}s")

    def ipv6_renumber(self, new_prefix: str) -> None:
        """The ISP delegates a new IPv6 prefix: the LAN is renumbered (hosts keep their interface identifiers),
        the old addresses vanish. miniupnpd keeps its old pinholes (for addresses nobody has now)."""
        self._v6().renumber(new_prefix)

    def router_down(self) -> None:
        """Stop miniupnpd only (UPnP/NAT-PMP/PCP stop answering; NAT keeps working)."""
        if self._miniupnpd is not None:
            self._miniupnpd.stop()

    def router_up(self, timeout: float = 3.0) -> None:
        """Start miniupnpd again and wait until it answers."""
        if self._miniupnpd is None:
            raise LabError("lab not started")
        self._miniupnpd.start()
        self.wait_ready(timeout=timeout)

    def router_reboot(self, timeout: float = 3.0, while_down: Callable[[], object] | None = None) -> None:
        """Mappings vanish and miniupnpd restarts (new NAT-PMP epoch); waits until it answers.

        ``while_down`` runs while the router is down with its mappings gone (e.g. to show that)."""
        self.router_down()
        flush_miniupnpd_chains(self.ns("rtr"))
        if while_down is not None:
            while_down()
        self.router_up(timeout=timeout)

    def reconfigure_router(self, timeout: float = 3.0, **changes: Any) -> None:
        """Restart miniupnpd with RouterConfig ``changes`` (e.g. http_port, system_uptime); its mappings vanish
        as on a daemon restart. natlink.lab.faults builds the scenarios on this."""
        self.router_down()
        self._router_cfg = dataclasses.replace(self._router_cfg, **changes)
        if self._miniupnpd is not None:
            self._miniupnpd.cfg = self._router_cfg
        flush_miniupnpd_chains(self.ns("rtr"))
        self.router_up(timeout=timeout)

    def blocked_port(self, port: int, proto: str = "tcp") -> None:
        """The ISP silently drops inbound ``port`` before the router (clients see a timeout)."""
        set_port_blocked(self.ns("rtr"), port, proto, blocked=True)

    def unblock_port(self, port: int, proto: str = "tcp") -> None:
        set_port_blocked(self.ns("rtr"), port, proto, blocked=False)

    def set_conntrack_timeout(self, established_seconds: int, loose: bool = False) -> None:
        """Router NAT idle timeout; with loose=False idle flows are really forgotten (RST)."""
        rtr = self.ns("rtr")
        write_sysctl(rtr, "net.netfilter.nf_conntrack_tcp_timeout_established", int(established_seconds))
        write_sysctl(rtr, "net.netfilter.nf_conntrack_tcp_loose", 1 if loose else 0)
