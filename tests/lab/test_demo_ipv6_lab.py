"""`natlink demo --scenario cgnat-ipv6` end to end: the real commands in a sandbox behind CGNAT with IPv6."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.lab


def test_cgnat_ipv6_demo_tells_the_story_and_tears_down() -> None:
    r = subprocess.run([sys.executable, "-m", "natlink", "--json", "demo", "--scenario", "cgnat-ipv6"],
                       capture_output=True, text=True, timeout=120)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"], r.stdout + r.stderr
    steps = {s["key"]: s for s in doc["steps"]}
    assert list(steps) == ["sandbox", "before", "map", "ddns", "reach", "renumber", "unmap", "teardown"]
    assert "timed out" in steps["before"]["detail"]
    assert steps["map"]["detail"] == "IPv4 is carrier-grade NAT; IPv6 is open — clients need IPv6"
    assert "TCP over IPv6: connected" in steps["renumber"]["detail"] and "2600:1:2::201" in steps["renumber"]["detail"]


def test_scenario_refuses_keep() -> None:
    r = subprocess.run([sys.executable, "-m", "natlink", "demo", "--scenario", "cgnat-ipv6", "--keep"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "takes no --keep" in r.stderr
