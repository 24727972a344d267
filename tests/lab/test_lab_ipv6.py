"""The lab's IPv6 behaves like a home network with a public prefix — checked with the reference client
(upnpc) and plain sockets, never with natlink's own code."""

from __future__ import annotations

import re
import socket
from typing import Any, Callable

import pytest

from natlink.lab import LabError

pytestmark = pytest.mark.lab


def upnpc6(lab: Any, *args: str) -> Any:
    url = f"http://[{lab.gateway6}]:5000/rootDesc.xml"
    return lab.run("lan", ["upnpc", "-6", "-u", url, *args], check=False, timeout=15)


def closed(lab: Any, addr: str, port: int) -> bool:
    try:
        lab.tcp_banner("wan", addr, port, timeout=0.5)
    except (TimeoutError, ConnectionRefusedError, socket.timeout):
        return True
    return False


def test_dual_stack_addresses_and_outbound(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("dual-stack")
    assert lab.with_ipv6 and lab.lan_prefix6 == "2600:1:1::/64"
    assert (lab.lan_ip6, lab.gateway6, lab.wan_ip6, lab.wan_host_ip6) == (
        "2600:1:1::201", "2600:1:1::1", "2600:1:ff::2", "2600:1:ff::1")
    # LAN -> outside over IPv6 is routed and allowed (no NAT66: the WAN host sees the LAN address).
    svc = lab.tcp_service("wan", 0, b"OUT6\n", ipv6=True)
    assert lab.tcp_banner("lan", lab.wan_host_ip6, svc.port) == b"OUT6\n"
    assert svc.peers[-1][0] == lab.lan_ip6
    # The IPv4 side is the normal lab, unchanged.
    assert lab.wan_ip == "11.0.0.2"
    assert "IPv6  LAN 2600:1:1::/64" in lab.describe()


def test_pinhole_opens_and_closes_the_ipv6_firewall(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("dual-stack")
    lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
    assert closed(lab, lab.lan_ip6, 8080), "the router's IPv6 firewall must drop inbound connections"
    added = upnpc6(lab, "-A", "", "0", lab.lan_ip6, "8080", "TCP", "600")
    match = re.search(r"Pinhole ID = (\d+)", added.stdout)
    assert match, added.stdout + added.stderr
    assert lab.tcp_banner("wan", lab.lan_ip6, 8080) == b"SERVER6\n"
    upnpc6(lab, "-D", match.group(1))
    assert closed(lab, lab.lan_ip6, 8080)


def test_cgnat_ipv4_with_public_ipv6(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("cgnat-ipv6")
    assert lab.wan_ip == "100.64.0.2"
    lab.tcp_service("lan", 8081, b"ONLY6\n", ipv6=True)
    added = upnpc6(lab, "-A", "", "0", lab.lan_ip6, "8081", "TCP", "600")
    assert "Pinhole ID = " in added.stdout, added.stdout + added.stderr
    assert lab.tcp_banner("wan", lab.lan_ip6, 8081) == b"ONLY6\n"


def test_renumbering_moves_the_lan_to_the_new_prefix(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("dual-stack", lan2=False)
    old = lab.lan_ip6
    lab.ipv6_renumber("2600:1:2::/64")
    assert (lab.lan_prefix6, lab.lan_ip6, lab.gateway6) == ("2600:1:2::/64", "2600:1:2::201", "2600:1:2::1")
    shown = lab.run("lan", ["ip", "-6", "addr", "show", "scope", "global"]).stdout
    assert "2600:1:2::201/64" in shown and old not in shown
    svc = lab.tcp_service("wan", 0, b"OUT6\n", ipv6=True)
    assert lab.tcp_banner("lan", lab.wan_host_ip6, svc.port) == b"OUT6\n"


def test_router_without_ipv6_firewall_control(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("ipv6-no-pinholes")


    from natlink.lab.probes import http_get_status

    assert lab.call("lan", http_get_status, lab.gateway, 5000, "/rootDesc.xml") == 200
    desc = lab.call("lan", _fetch, lab.gateway, 5000, "/rootDesc.xml")
    assert b"WANIPv6FirewallControl" not in desc
    lab.tcp_service("lan", 8082, b"X\n", ipv6=True)
    assert closed(lab, lab.lan_ip6, 8082)


def test_ipv4_only_lab_has_no_ipv6_attributes(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("normal", lan2=False, knot=False)
    with pytest.raises(LabError, match="no IPv6"):
        _ = lab.lan_ip6


def _fetch(host: str, port: int, path: str) -> bytes:
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
