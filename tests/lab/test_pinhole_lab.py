"""IPv6 pinholes against the lab's real miniupnpd + nftables: `natlink map/unmap` on the LAN host, TCP connects
from the WAN host over IPv6 (times out before, works after, fails after unmap)."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.lab


def write_config(tmp_path: Path, *, protocols=("upnp", "pcp"), mappings=None, lease="1h", public_ipv6=False) -> str:
    mappings = mappings or [dict(name="web", external_port=8080, ipv6=True)]
    lines = ["[router]", f"protocols = {json.dumps(list(protocols))}", f'lease = "{lease}"', "timeout = 2", ""]
    for m in mappings:
        lines.append("[[mapping]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in m.items()]
        lines.append("")
    if public_ipv6:
        lines += ["[public_ip]", "ipv6 = true", ""]
    lines += ["[service]", f'state_dir = "{tmp_path / "state"}"', ""]
    path = tmp_path / "natlink.toml"
    path.write_text("\n".join(lines))
    return str(path)


def natlink(lab: Any, cfg: str, *args: str) -> Any:
    return lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, *args], check=False, timeout=30)


def reaches(lab: Any, addr: str, port: int) -> bool:
    try:
        return lab.tcp_banner("wan", addr, port, timeout=0.7) == b"SERVER6\n"
    except (TimeoutError, ConnectionRefusedError, socket.timeout, OSError):
        return False


def state(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "state" / "pinholes.json"
    return json.loads(path.read_text()).get("pinholes", {}) if path.exists() else {}


@pytest.mark.parametrize("protocols, via", [(("upnp", "pcp"), "UPnP"), (("pcp", "upnp"), "PCP")])
def test_map_opens_renews_and_unmap_closes(lab_factory: Callable[..., Any], tmp_path: Path,
                                            protocols: tuple[str, ...], via: str) -> None:
    lab = lab_factory("dual-stack", lan2=False, knot=False)
    lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
    cfg = write_config(tmp_path, protocols=protocols)
    assert not reaches(lab, lab.lan_ip6, 8080)

    r = natlink(lab, cfg, "map")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"IPv6 pinholes for {lab.lan_ip6} (via {via}):" in r.stdout
    assert "IPv4 and IPv6 are open" in r.stdout
    assert reaches(lab, lab.lan_ip6, 8080)
    held = state(tmp_path)["web"]
    assert (held["address"], held["port"], held["via"]) == (lab.lan_ip6, 8080, via.lower())

    again = natlink(lab, cfg, "map")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "  renew    web" in again.stdout
    assert ("UpdatePinhole" if via == "UPnP" else "re-requested over PCP") in again.stdout
    assert reaches(lab, lab.lan_ip6, 8080)

    gone = natlink(lab, cfg, "unmap")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "1 IPv6 pinhole closed" in gone.stdout
    assert not reaches(lab, lab.lan_ip6, 8080)
    assert state(tmp_path) == {}


def test_cgnat_ipv4_with_public_ipv6_is_reachable_over_ipv6_only(lab_factory: Callable[..., Any],
                                                                  tmp_path: Path) -> None:
    lab = lab_factory("cgnat-ipv6", lan2=False, knot=False)
    lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
    r = natlink(lab, write_config(tmp_path), "map")
    assert "IPv4 is carrier-grade NAT; IPv6 is open — clients need IPv6" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    assert reaches(lab, lab.lan_ip6, 8080)


def test_router_without_ipv6_firewall_control_is_one_line_and_records_nothing(
        lab_factory: Callable[..., Any], tmp_path: Path) -> None:
    lab = lab_factory("ipv6-no-pinholes", lan2=False, knot=False)
    r = natlink(lab, write_config(tmp_path), "map")
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if "IPv6" in ln]
    assert len(lines) == 1 and "the router offers no IPv6 firewall control" in lines[0], r.stderr
    assert "open the port in its IPv6 firewall settings" in lines[0]
    assert "Traceback" not in r.stderr
    assert state(tmp_path) == {}


def test_no_global_address_is_one_line(lab_factory: Callable[..., Any], tmp_path: Path) -> None:
    lab = lab_factory("normal", lan2=False, knot=False)
    r = natlink(lab, write_config(tmp_path), "map")
    assert r.returncode == 1
    assert "ipv6 = true but this host has no stable global IPv6 address" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and state(tmp_path) == {}


@pytest.mark.parametrize("mapping, lease, code, fix", [
    (dict(name="low", external_port=8443, internal_port=443, ipv6=True), "1h", "606", "internal_port of 1024"),
    (dict(name="long", external_port=8080, ipv6=True), "2d", "402", "between 1 s and 1d"),
])
def test_refusals_are_one_line_with_the_fix(lab_factory: Callable[..., Any], tmp_path: Path,
                                            mapping: dict[str, Any], lease: str, code: str, fix: str) -> None:
    lab = lab_factory("cgnat-ipv6", lan2=False, knot=False)
    r = natlink(lab, write_config(tmp_path, protocols=("upnp",), mappings=[mapping], lease=lease), "map")
    assert r.returncode == 1
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith(f"natlink: {mapping['name']}:"))
    assert code in line and fix in line, r.stderr
    assert state(tmp_path) == {}


def test_external_port_differs_says_ipv6_has_no_port_translation(lab_factory: Callable[..., Any],
                                                                  tmp_path: Path) -> None:
    lab = lab_factory("dual-stack", lan2=False, knot=False)
    lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
    cfg = write_config(tmp_path, mappings=[dict(name="web", external_port=18080, internal_port=8080, ipv6=True)])
    r = natlink(lab, cfg, "map")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "IPv6 has no port translation: over IPv6 clients connect to port 8080, not 18080" in r.stdout + r.stderr
    assert reaches(lab, lab.lan_ip6, 8080)


def test_prefix_change_moves_the_pinhole(lab_factory: Callable[..., Any], tmp_path: Path) -> None:
    lab = lab_factory("dual-stack", lan2=False, knot=False)
    lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
    cfg = write_config(tmp_path)
    assert natlink(lab, cfg, "map").returncode == 0
    old = lab.lan_ip6
    lab.ipv6_renumber("2600:1:2::/64")
    assert not reaches(lab, lab.lan_ip6, 8080)
    r = natlink(lab, cfg, "map")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "  move     web" in r.stdout and f"moved from TCP [{old}]:8080" in r.stdout
    assert reaches(lab, lab.lan_ip6, 8080)
    assert state(tmp_path)["web"]["address"] == "2600:1:2::201"


def test_a_router_restart_forgets_the_pinhole_and_map_opens_it_again(lab_factory: Callable[..., Any],
                                                                      tmp_path: Path) -> None:
    lab = lab_factory("dual-stack", lan2=False, knot=False)
    lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
    cfg = write_config(tmp_path, protocols=("upnp",))
    assert natlink(lab, cfg, "map").returncode == 0
    lab.router_reboot()
    assert not reaches(lab, lab.lan_ip6, 8080)
    r = natlink(lab, cfg, "map")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the router had forgotten pinhole" in r.stdout
    assert reaches(lab, lab.lan_ip6, 8080)
