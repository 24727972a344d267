"""`natlink probe` over IPv6 against the real lab: the reflector on the WAN host dials back the LAN host's global
IPv6 address through the pinhole `natlink map` opened (nonce-verified), beside the IPv4 verdict — and the doctor
joins both families into one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.lab
PORT = 8080


def start_reflector(lab: Any, host: str, port: int) -> None:
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lab.popen("wan", [sys.executable, "-m", "natlink", "reflector", "--listen", listen, "--insecure-http"],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            lab.call("wan", lambda: socket.create_connection((host, port), 0.5).close())
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def write_config(lab: Any, tmp_path: Path, reflectors: list[str]) -> str:
    probes = "".join(f'[[probe]]\nname = "web{i}"\nmapping = "web"\nvia = "reflector"\nreflector = "{url}"\n'
                     "allow_insecure_http = true\ntimeout = 2\n" for i, url in enumerate(reflectors))
    path = tmp_path / "natlink.toml"
    path.write_text(f"""[router]
protocols = ["upnp", "pcp"]
lan_ip = "{lab.lan_ip}"
timeout = 2
[public_ip]
sources = ["router"]
[[mapping]]
name = "web"
external_port = {PORT}
ipv6 = true
{probes}[service]
state_dir = "{tmp_path / 'state'}"
""")
    return str(path)


def natlink(lab: Any, cfg: str, *argv: str) -> Any:
    return lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, *argv], check=False, timeout=60)


def probe(lab: Any, cfg: str) -> dict[str, dict[str, Any]]:
    r = natlink(lab, cfg, "--json", "probe")
    assert "Traceback" not in r.stderr, r.stderr
    return {res["family"]: res for res in json.loads(r.stdout)["results"]}


def test_cgnat_ipv4_and_an_ipv6_dial_back_each_get_their_own_verdict(lab_factory: Callable[..., Any],
                                                                      tmp_path: Path) -> None:
    lab = lab_factory("cgnat-ipv6", lan2=False, knot=False)
    start_reflector(lab, lab.wan_host_ip6, 8765)
    cfg = write_config(lab, tmp_path, [f"http://[{lab.wan_host_ip6}]:8765"])

    before = probe(lab, cfg)  # no pinhole yet: the router's IPv6 firewall drops the dial-back
    assert before["ipv6"]["verdict"] != "verified" and not before["ipv6"]["ok"], before

    assert natlink(lab, cfg, "map").returncode == 0
    got = probe(lab, cfg)
    six, four = got["ipv6"], got["ipv4"]
    assert six["verdict"] == "verified" and six["identity"] == "nonce", six
    assert six["seen_as"] == lab.lan_ip6 and six["external_port"] == PORT, six
    assert four["verdict"] == "cgnat" and not four["ok"] and four["outcome"] == "not-tried", four
    # miniupnpd behind CGNAT reports no external address at all: that is the reason the verdict gives
    assert "the router reports no external address" in four["detail"], four


def test_dual_stack_verifies_both_families(lab_factory: Callable[..., Any], tmp_path: Path) -> None:
    lab = lab_factory("dual-stack", lan2=False, knot=False)
    start_reflector(lab, lab.wan_host_ip, 8765)
    start_reflector(lab, lab.wan_host_ip6, 8766)
    cfg = write_config(lab, tmp_path, [f"http://{lab.wan_host_ip}:8765", f"http://[{lab.wan_host_ip6}]:8766"])
    assert natlink(lab, cfg, "map").returncode == 0
    got = probe(lab, cfg)
    assert set(got) == {"ipv4", "ipv6"}, got
    for fam in ("ipv4", "ipv6"):
        assert got[fam]["verdict"] == "verified" and got[fam]["identity"] == "nonce", got[fam]
    assert got["ipv4"]["seen_as"] == lab.wan_ip and got["ipv6"]["seen_as"] == lab.lan_ip6, got


def test_doctor_says_ipv6_only_when_ipv4_is_cgnat(lab_factory: Callable[..., Any], tmp_path: Path) -> None:
    lab = lab_factory("cgnat-ipv6", lan2=False, knot=False)
    lab.tcp_service("lan", PORT, b"SERVER6\n", ipv6=True)
    start_reflector(lab, lab.wan_host_ip6, 8765)
    cfg = write_config(lab, tmp_path, [f"http://[{lab.wan_host_ip6}]:8765"])
    assert natlink(lab, cfg, "map").returncode == 0
    d = natlink(lab, cfg, "doctor")
    assert "IPv4 is carrier-grade NAT; IPv6 is open — clients need IPv6" in d.stdout.splitlines(), d.stdout
    j = json.loads(natlink(lab, cfg, "--json", "doctor").stdout)
    assert j["families"] == "IPv4 is carrier-grade NAT; IPv6 is open — clients need IPv6", j
