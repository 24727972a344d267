"""The lab router: nftables NAT/filter ruleset plus a miniupnpd (UPnP IGD, NAT-PMP, PCP).

The ruleset mirrors what miniupnpd's own ``nft_init.sh`` builds (one ``inet filter``
table holding the forward filter and the nat hooks, with the three ``*miniupnpd``
chains it fills in; masquerading is IPv4 only, as on a home router: IPv6 has no NAT), plus a separate ``inet natlink_isp`` table that emulates the ISP
dropping inbound ports *before* the router's DNAT — it survives router reboots.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import uuid
from dataclasses import dataclass, field

from natlink.lab.errors import LabError
from natlink.lab.netns import run_cmd
from natlink.lab.prereq import tool
from natlink.lab.procs import Daemon

FILTER_TABLE = "filter"
ISP_TABLE = "natlink_isp"
MINIUPNPD_CHAINS = ("miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd")


@dataclass(frozen=True)
class RouterConfig:
    """What the router needs to know about its interfaces and LAN."""

    ns: str
    lan_if: str  # the LAN bridge; miniupnpd listens here
    wan_if: str
    lan_subnet: str = "10.0.1.0/24"
    http_port: int = 5000
    # False: the NAT-PMP/PCP epoch counts from miniupnpd's start, which a simulated reboot resets. True (what many
    # OpenWrt builds ship): the epoch is the host's uptime, so a daemon restart keeps it growing while every
    # mapping is lost.
    system_uptime: bool = False
    pcp_allow_thirdparty: bool = False
    ipv6: bool = False  # pinholes in the IPv6 firewall (WANIPv6FirewallControl, PCP over IPv6)
    ipv6_firewall_control: bool = True  # False with ipv6: IPv6 is routed but the firewall cannot be opened
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


def nft_ruleset(cfg: RouterConfig) -> str:
    """The router's nftables ruleset (``nft -f`` wants one statement per line)."""
    lan, wan = cfg.lan_if, cfg.wan_if
    return f"""\
table inet {FILTER_TABLE} {{
    chain forward {{
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "{lan}" oifname "{wan}" accept
        jump miniupnpd
    }}
    chain miniupnpd {{
    }}
    chain prerouting {{
        type nat hook prerouting priority -100; policy accept;
        jump prerouting_miniupnpd
    }}
    chain postrouting {{
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
        oifname "{wan}" meta nfproto ipv4 masquerade
    }}
    chain prerouting_miniupnpd {{
    }}
    chain postrouting_miniupnpd {{
    }}
}}
table inet {ISP_TABLE} {{
    set blocked_tcp {{
        type inet_service;
    }}
    set blocked_udp {{
        type inet_service;
    }}
    chain prerouting {{
        type filter hook prerouting priority -300; policy accept;
        iifname "{wan}" tcp dport @blocked_tcp drop
        iifname "{wan}" udp dport @blocked_udp drop
    }}
}}
"""


def miniupnpd_conf(cfg: RouterConfig) -> str:
    """miniupnpd.conf: secure mode, only unprivileged ports for the LAN, NAT-PMP/PCP on.

    ``system_uptime=no`` by default: with ``yes`` the NAT-PMP/PCP epoch is the *host's*
    uptime, which a simulated reboot cannot reset. With ``no`` it counts from miniupnpd's
    start, which is what a real router reboot resets.
    """
    yes_no = {True: "yes", False: "no"}
    return f"""\
ext_ifname={cfg.wan_if}
listening_ip={cfg.lan_if}
port={cfg.http_port}
enable_upnp=yes
enable_natpmp=yes
secure_mode=yes
system_uptime={yes_no[cfg.system_uptime]}
pcp_allow_thirdparty={yes_no[cfg.pcp_allow_thirdparty]}
notify_interval=60
clean_ruleset_interval=600
uuid={cfg.uuid}
friendly_name=natlink lab router
model_name=natlink-lab
# external ports 1024-65535 only (like many routers); any internal port, e.g. a web server on 443
allow 1024-65535 {cfg.lan_subnet} 1-65535
deny 0-65535 0.0.0.0/0 0-65535
""" + _ipv6_conf(cfg)


def _ipv6_conf(cfg: RouterConfig) -> str:
    """IPv6 keys verified in the lab notes: ext_ifname6 and IGD v2 (WANIPv6FirewallControl:1). No
    ipv6_listening_ip (it breaks IPv4 SOAP) and no lease_file6 (it re-adds deleted pinholes on restart)."""
    if not cfg.ipv6:
        return ""
    if not cfg.ipv6_firewall_control:
        # A router without IPv6 firewall control: IGD v1 (no WANIPv6FirewallControl), nothing on IPv6 (no PCP).
        return "ipv6_disable=yes\nforce_igd_desc_v1=yes\n"
    return f"ext_ifname6={cfg.wan_if}\nforce_igd_desc_v1=no\n"


def nft(ns: str, *args: str, input: str | None = None) -> str:
    """Run ``nft`` inside ``ns``."""
    return run_cmd([tool("ip"), "netns", "exec", ns, tool("nft"), *args], input=input, timeout=10).stdout


def install_ruleset(cfg: RouterConfig) -> None:
    nft(cfg.ns, "-f", "-", input=nft_ruleset(cfg))


def flush_miniupnpd_chains(ns: str) -> None:
    """What a reboot does to the router's port mappings: they vanish."""
    script = "".join(f"flush chain inet {FILTER_TABLE} {chain}\n" for chain in MINIUPNPD_CHAINS)
    nft(ns, "-f", "-", input=script)


def set_port_blocked(ns: str, port: int, proto: str, blocked: bool) -> None:
    proto = proto.lower()
    if proto not in ("tcp", "udp"):
        raise LabError(f"blocked_port: proto must be tcp or udp, not {proto!r}")
    element = ("element", "inet", ISP_TABLE, f"blocked_{proto}", f"{{ {int(port)} }}")
    if blocked:
        nft(ns, "add", *element)
    else:
        with contextlib.suppress(LabError):  # unblocking a port that is not blocked is fine
            nft(ns, "delete", *element)


@dataclass
class Miniupnpd(Daemon):
    """One miniupnpd process in the router namespace, run in the foreground (-d: also a debug log).

    Foreground keeps the Popen pid equal to the daemon's pid (``ip netns exec`` execs).
    """

    stem = "miniupnpd"
    cfg: RouterConfig
    workdir: str
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch miniupnpd (does not wait for readiness; see Lab.wait_ready)."""
        if self.pid is not None:
            return
        with open(self.conf_path, "w", encoding="ascii") as fh:
            fh.write(miniupnpd_conf(self.cfg))
        pidfile = os.path.join(self.workdir, "miniupnpd.pid")
        # With no /dev/log, syslog(LOG_CONS) copies every -d debug line to /dev/console, which is the serial
        # console on these machines: with 20 mappings that cost ~50 ms per request (several log lines per rule)
        # and swamped miniupnpd's real work (~1-6 ms). A private mount namespace points it at /dev/null; the
        # log file still gets everything via stderr. sh and unshare exec, so the pid stays the daemon's. A
        # machine without /dev/console (a container started without a terminal) has nothing to point away.
        daemon = shlex.join([tool("miniupnpd"), "-d", "-f", self.conf_path, "-P", pidfile])
        self.launch([tool("ip"), "netns", "exec", self.cfg.ns, "unshare", "--mount", "sh", "-c",
                     f"if [ -e /dev/console ]; then mount --bind /dev/null /dev/console || exit 1; fi; exec {daemon}"])

    def signal(self, sig: int) -> None:
        pid = self.pid
        if pid is None:
            raise LabError("miniupnpd is not running")
        os.kill(pid, sig)

