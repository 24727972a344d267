"""`natlink doctor` walks the IPv6 chain (link 10) against the real lab: global address → natlink's pinhole →
AAAA in knot → the reflector on the WAN host dialling back over IPv6 through the router's firewall."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any, Callable

import pytest
from test_ipv6_dns_lab import NAME
from test_ipv6_dns_lab import write_config as dns_lab_config

pytestmark = pytest.mark.lab


def write_config(lab: Any) -> str:
    """test_ipv6_dns_lab's config (pinhole + AAAA) and a reflector probe on the WAN host's IPv6 address."""
    path = dns_lab_config(lab)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"""
[[probe]]
mapping = "web"
via = "reflector"
reflector = "http://[{lab.wan_host_ip6}]:8765"
allow_insecure_http = true
timeout = 2
""")
    return path


def natlink(lab: Any, cfg: str, *argv: str) -> Any:
    return lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, *argv], check=False, timeout=60)


def link10(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("10. IPv6"))
    return [ln for ln in lines[start + 1:] if ln.startswith(" ")]


def test_doctor_walks_the_ipv6_chain(lab_factory: Callable[..., Any]) -> None:
    lab = lab_factory("cgnat-ipv6", lan2=False)
    lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
    lab.popen("wan", [sys.executable, "-m", "natlink", "reflector", "--listen", f"[{lab.wan_host_ip6}]:8765",
                      "--insecure-http"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            lab.call("wan", lambda: socket.create_connection((lab.wan_host_ip6, 8765), 0.5).close())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cfg = write_config(lab)

    before = link10(natlink(lab, cfg, "doctor").stdout)
    assert any(f"stable global IPv6 address {lab.lan_ip6}" in ln for ln in before), before
    assert any("natlink holds no pinhole for TCP" in ln for ln in before), before
    assert any("no AAAA record" in ln for ln in before), before

    assert natlink(lab, cfg, "map").returncode == 0
    assert natlink(lab, cfg, "ddns").returncode == 0
    after = link10(natlink(lab, cfg, "doctor").stdout)
    assert any("pinhole" in ln and "works: the outside connect came through" in ln for ln in after), after
    assert any(f"the reflector connected to [{lab.lan_ip6}]:8080 over IPv6" in ln for ln in after), after
    assert any(f"{NAME} AAAA → {lab.lan_ip6}" in ln for ln in after), after
