"""`natlink doctor` as a person watches it, on the lab's LAN host: each link is printed as it finishes (link 1
is on screen while the router is still being waited for), Ctrl-C ends it at once with 130, -q keeps the first
broken link and its fix, an unconfigured feature is "not configured" (not a consequence), and a missing default
route is fixed on this host, not in the router's settings."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab


def write_config(tmp_path: Path) -> str:
    path = tmp_path / "c.toml"
    path.write_text(f'[router]\ntimeout = 2\n\n[[mapping]]\nname = "rdp"\nexternal_port = 3390\n'
                    f'internal_port = 3389\n\n[service]\nstate_dir = "{tmp_path / "state"}"\n')
    return str(path)


def doctor(lab, cfg: str, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, *args, "doctor", "--no-hairpin"],
                   check=False, timeout=60)


def test_links_appear_as_they_finish_and_ctrl_c_stops_it(lab, tmp_path: Path) -> None:
    lab.router_down()  # link 2 now waits for the router's timeout
    proc = lab.popen("lan", [sys.executable, "-m", "natlink", "-c", write_config(tmp_path), "doctor"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    first = [proc.stdout.readline() for _ in range(2)]
    assert first[0].startswith("1. Config and LAN address"), first
    assert proc.poll() is None  # link 1 was shown while the doctor still waited for the router
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=10)
    err = proc.stderr.read()
    assert code == 130 and "interrupted" in err and "Traceback" not in err


def test_quiet_keeps_the_first_broken_link_and_its_fix(lab, tmp_path: Path) -> None:
    lab.router_down()
    r = doctor(lab, write_config(tmp_path), "-q")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert any(ln.startswith("First broken link: 2. Router") for ln in lines), r.stdout
    assert any(ln.startswith("Fix: enable UPnP IGD or NAT-PMP/PCP") for ln in lines), r.stdout
    assert not any(ln.startswith("1. ") for ln in lines)  # the checklist itself is what -q drops


def test_unconfigured_features_are_not_consequences(lab, tmp_path: Path) -> None:
    lab.router_down()
    out = doctor(lab, write_config(tmp_path)).stdout
    ddns = next(ln for ln in out.splitlines() if "[[ddns]]" in ln)
    probe = next(ln for ln in out.splitlines() if "[[probe]]" in ln)
    assert "[skip]" in ddns and "cannot work because" not in ddns
    assert "[skip]" in probe and "cannot work because" not in probe


def test_no_default_route_is_fixed_on_this_host(lab, tmp_path: Path) -> None:
    lab.run("lan", ["ip", "route", "del", "default"])
    r = doctor(lab, write_config(tmp_path))
    assert r.returncode == 1
    text = " ".join(r.stdout.split())
    link2 = text.split("2. Router", 1)[1].split("3. Router WAN", 1)[0]
    assert "[FAIL] this host has no IPv4 default route" in link2
    assert "fix: connect to the network, or set router.gateway" in link2 and "enable UPnP" not in text
