"""`natlink run` and IPv6: the service opens the pinhole and publishes AAAA, and an IPv6 prefix change (a netlink
address event, not a poll: the schedule is 10 minutes) moves both; unmap_on_stop closes the pinhole."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable

import pytest

from service_support import rfc2136_entry, start_natlink, wait_for

pytestmark = pytest.mark.lab

HOST = "rdp.home.example"
# Every job's schedule is 10 minutes: within a test only an event can explain a reaction.
SCHEDULE = """[schedule]
mappings = "10m"
ddns = "10m"
probe = "10m"
public_ip = "10m"
jitter = 0
"""


def write_config(lab: Any, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "natlink.toml"
    path.write_text(f"""
[router]
protocols = ["upnp", "pcp"]
lease = "1h"
timeout = 2

[[mapping]]
name = "web"
external_port = 8080

[public_ip]
sources = ["router"]
ipv6 = true
{rfc2136_entry(lab)}
ipv4 = true
ipv6 = true

{SCHEDULE}
[service]
state_dir = "{directory / "state"}"
unmap_on_stop = true
""")
    return path


def aaaa(lab: Any) -> str:
    out = lab.run("wan", ["kdig", f"@{lab.dns_server}", HOST, "AAAA", "+short", "+timeout=1", "+retry=0"], check=False)
    return out.stdout.strip()


def connects(lab: Any, address: str) -> bool:
    try:
        return lab.tcp_banner("wan", address, 8080, timeout=0.5) == b"SERVER6\n"
    except (TimeoutError, ConnectionRefusedError, socket.timeout, OSError):
        return False


def test_prefix_change_moves_aaaa_and_pinhole_by_event(lab_factory: Callable[..., Any], tmp_path: Path) -> None:
    lab = lab_factory("cgnat-ipv6", lan2=False)
    lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
    service = start_natlink(lab, write_config(lab, tmp_path))
    try:
        wait_for(lambda: aaaa(lab) == lab.lan_ip6, 20, "the first AAAA record")
        wait_for(lambda: connects(lab, lab.lan_ip6), 10, "the first pinhole")

        lab.ipv6_renumber("2600:1:2::/64")
        new = "2600:1:2::201"
        # Only the netlink event can explain these within the wait: every job's schedule is 10 minutes.
        wait_for(lambda: aaaa(lab) == new, 10, "the AAAA record of the new prefix")
        wait_for(lambda: connects(lab, new), 10, "an outside IPv6 connect to the new address")
        assert "IPv6 pinhole web: opened TCP [2600:1:2::201]:8080" in service.log
    finally:
        code, _ = service.stop()
    assert code == 0, service.log[-3000:]
    assert not connects(lab, "2600:1:2::201")  # unmap_on_stop closed the pinhole


def test_ipv4_interface_source_change_updates_the_a_record_by_event(lab_factory: Callable[..., Any],
                                                                    tmp_path: Path) -> None:
    """natlink on a host that holds the public IPv4 itself (here: the router namespace, `interface:` source): an
    address change reaches knot through the netlink event, not the 10-minute schedule."""
    lab = lab_factory("normal", lan2=False, miniupnpd=False)
    path = interface_config(lab, tmp_path)
    service = start_natlink(lab, path, host="rtr")
    try:
        wait_for(lambda: a_record(lab) == lab.wan_ip, 20, "the first A record")
        lab.ip_change("11.0.0.9")
        wait_for(lambda: a_record(lab) == "11.0.0.9", 10, "the A record of the new interface address")
    finally:
        service.stop()


def a_record(lab: Any) -> str:
    out = lab.run("wan", ["kdig", f"@{lab.dns_server}", HOST, "A", "+short", "+timeout=1", "+retry=0"], check=False)
    return out.stdout.strip()


def interface_config(lab: Any, directory: Path) -> Path:
    """natlink on the router namespace, the public IPv4 read from its WAN interface (`interface:` source)."""
    path = directory / "natlink.toml"
    path.write_text(f"""
[public_ip]
sources = ["interface:{lab.wan_ifname}"]
{rfc2136_entry(lab)}
{SCHEDULE}
[service]
state_dir = "{directory / "state"}"
""")
    return path
