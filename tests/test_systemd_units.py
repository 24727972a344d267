"""The systemd units pass `systemd-analyze verify` (no warnings) and keep the promised settings."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNITS = ["natlink.service", "natlink-oneshot.service", "natlink-oneshot.timer", "natlink-reflector.service"]
MINE = UNITS[:3]
INSTALLED = "/usr/local/bin/natlink"

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")


def natlink_binary() -> str:
    """verify insists that ExecStart exists: use the installed entry point (pip puts it next to python)."""
    if os.access(INSTALLED, os.X_OK):
        return INSTALLED
    beside = Path(sys.executable).with_name("natlink")
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("natlink")
    if not found:
        pytest.skip("the natlink entry point is not installed (pip install -e .)")
    return os.path.realpath(found)


def verify(tmp_path: Path, names: list[str], texts: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = natlink_binary()
    for name in names:
        text = texts[name] if texts and name in texts else (REPO / "systemd" / name).read_text()
        (tmp_path / name).write_text(text.replace(INSTALLED, binary))
    return subprocess.run([analyze, "verify", "--man=no", *(f"./{n}" for n in names)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})


def ours(output: str, names: list[str]) -> list[str]:
    """Warnings about our files (a container may add unrelated noise about the host's own units)."""
    return [line for line in output.splitlines() if any(n in line for n in names)]


@needs_analyze
def test_units_verify_without_warnings(tmp_path):
    result = verify(tmp_path, UNITS)
    problems = ours(result.stdout + result.stderr, UNITS + ["natlink"])
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


@needs_analyze
def test_verify_really_catches_mistakes(tmp_path):
    """The check above is not vacuous: a typo in our unit is reported."""
    broken = (REPO / "systemd" / "natlink.service").read_text().replace("Type=notify", "Type=notfy\nBogusKey=1")
    result = verify(tmp_path, ["natlink.service"], {"natlink.service": broken})
    assert any("notfy" in line for line in ours(result.stderr, ["natlink.service"]))
    assert any("BogusKey" in line for line in ours(result.stderr, ["natlink.service"]))


def unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string((REPO / "systemd" / name).read_text())
    return cp


def test_service_unit_settings():
    s = unit("natlink.service")["Service"]
    assert s["Type"] == "notify" and s["NotifyAccess"] == "main"
    assert s["ExecStart"].endswith(" run") and s["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert s["Restart"] == "on-failure" and s["WatchdogSec"]
    assert s["DynamicUser"] == "yes" and s["StateDirectory"] == "natlink"
    assert s["NoNewPrivileges"] == "yes" and s["ProtectSystem"] == "strict" and s["ProtectHome"] == "yes"
    assert s["PrivateTmp"] == "yes" and s["CapabilityBoundingSet"] == ""
    assert set(s["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert "@system-service" in (REPO / "systemd" / "natlink.service").read_text()


def test_oneshot_pair():
    svc = unit("natlink-oneshot.service")["Service"]
    assert svc["Type"] == "oneshot" and svc["ExecStart"].endswith("run --once")
    assert svc["DynamicUser"] == "yes" and svc["StateDirectory"] == "natlink"
    timer = unit("natlink-oneshot.timer")
    assert timer["Timer"]["OnUnitActiveSec"] and timer["Timer"]["RandomizedDelaySec"]
    assert timer["Install"]["WantedBy"] == "timers.target"
