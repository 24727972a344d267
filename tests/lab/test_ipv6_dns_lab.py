"""IPv6 end to end in the lab: `natlink map` opens the pinhole, `natlink ddns` publishes the AAAA record in the
real knot (RFC 2136, TSIG), and the WAN host resolves the name and connects over IPv6 to what it resolved.
A renumbering is followed; the A record is never deleted for the AAAA's sake."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from dns_support import kdig
from natlink.demo.story6 import NAME, config_text

pytestmark = pytest.mark.lab



def write_config(lab: Any) -> str:
    """The config `natlink demo --scenario cgnat-ipv6` runs: a mapping with a pinhole, A + AAAA at knot."""
    path = os.path.join(lab.workdir, "natlink-v6.toml")
    Path(path).write_text(config_text(lab))
    return path


def natlink(lab: Any, cfg: str, *argv: str) -> Any:
    return lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, *argv], check=False, timeout=30)


def connect_by_name(lab: Any, port: int) -> bytes:
    """What an IPv6 client on the WAN host gets: resolve AAAA at knot, connect to it."""
    (address,) = kdig(lab, NAME, "AAAA")
    return lab.tcp_banner("wan", address, port, timeout=1.0)


def test_pinhole_aaaa_and_outside_connect_follow_a_renumbering(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("dual-stack", lan2=False)
    lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
    cfg = write_config(lab)  # public_ip.ipv6 = true: every mapping gets a pinhole by default
    with pytest.raises((TimeoutError, socket.timeout, OSError)):
        lab.tcp_banner("wan", lab.lan_ip6, 8080, timeout=0.5)

    m = natlink(lab, cfg, "map")
    assert m.returncode == 0, m.stdout + m.stderr
    d = natlink(lab, cfg, "--json", "ddns")
    assert d.returncode == 0, d.stdout + d.stderr
    assert json.loads(d.stdout)["public_ipv6"] == lab.lan_ip6
    assert kdig(lab, NAME, "AAAA") == [lab.lan_ip6] and kdig(lab, NAME, "A") == [lab.wan_ip]
    assert connect_by_name(lab, 8080) == b"SERVER6\n"

    lab.ipv6_renumber("2600:1:2::/64")
    assert natlink(lab, cfg, "map").returncode == 0
    d = natlink(lab, cfg, "ddns")
    assert d.returncode == 0, d.stdout + d.stderr
    assert kdig(lab, NAME, "AAAA") == ["2600:1:2::201"]
    assert kdig(lab, NAME, "A") == [lab.wan_ip]  # the other family's record is left alone
    assert connect_by_name(lab, 8080) == b"SERVER6\n"

    assert natlink(lab, cfg, "unmap").returncode == 0
    with pytest.raises((TimeoutError, socket.timeout, OSError)):
        connect_by_name(lab, 8080)


def test_cgnat_publishes_aaaa_and_leaves_a_alone(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("cgnat-ipv6", lan2=False)
    cfg = write_config(lab)
    d = natlink(lab, cfg, "--json", "ddns")
    doc = json.loads(d.stdout)
    assert doc["public_ipv6"] == lab.lan_ip6 and doc["public_ipv4"] is None
    assert kdig(lab, NAME, "AAAA") == [lab.lan_ip6]
    assert kdig(lab, NAME, "A") == []


def test_ip_gives_each_family_its_own_verdict(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("cgnat-ipv6", lan2=False, knot=False)
    cfg = write_config(lab)
    before = natlink(lab, cfg, "ip")
    assert "no pinhole: the router's IPv6 firewall blocks inbound connections" in before.stdout, before.stdout
    assert natlink(lab, cfg, "map").returncode == 0
    after = natlink(lab, cfg, "ip")
    assert f"IPv6:        {lab.lan_ip6}; pinholes recorded by natlink for web" in after.stdout, after.stdout
    # miniupnpd behind CGNAT reports no external address at all, so IPv4 is "unknown" there, never "public"
    assert ("families:    IPv4 has no confirmed public address; IPv6 can carry the server — clients need IPv6"
            in after.stdout)
