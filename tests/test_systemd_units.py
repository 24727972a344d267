"""The systemd units pass `systemd-analyze verify` (no warnings) and keep the promised settings. How they behave
under a real systemd as PID 1 is tests/lab/test_systemd_real.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNITS = ["natlink.service", "natlink-oneshot.service", "natlink-oneshot.timer", "natlink-reflector.service"]
INSTALLED = "/usr/local/bin/natlink"
# natlink.service's sandbox; the reflector must match it (RestrictAddressFamilies may be narrower).
HARDENING = ["NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities", "ProtectSystem", "ProtectHome",
             "PrivateTmp", "PrivateDevices", "ProtectHostname", "ProtectClock", "ProtectKernelTunables",
             "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc", "ProcSubset",
             "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
             "MemoryDenyWriteExecute", "RemoveIPC", "SystemCallArchitectures", "SystemCallFilter",
             "SystemCallErrorNumber", "UMask"]

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")


def natlink_binary(tmp_path: Path) -> str:
    """verify insists that ExecStart exists: the installed entry point, else a launcher for this checkout."""
    if os.access(INSTALLED, os.X_OK):
        return INSTALLED
    beside = Path(sys.executable).with_name("natlink")
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("natlink")
    if found:
        return os.path.realpath(found)
    launcher = tmp_path / "natlink-launcher"
    launcher.write_text(f"#!/bin/sh\ncd {REPO} && exec {sys.executable} -m natlink \"$@\"\n")
    launcher.chmod(0o755)
    return str(launcher)


def verify(tmp_path: Path, names: list[str], texts: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = natlink_binary(tmp_path)
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


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value in order (systemd keys such as ExecReload= may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    text = (REPO / "systemd" / name).read_text().replace("\\\n", " ")  # continuation lines
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(section: dict[str, list[str]], key: str) -> str:
    return section[key][-1]


def test_service_unit_settings():
    s = unit("natlink.service")["Service"]
    assert one(s, "Type") == "notify" and one(s, "NotifyAccess") == "main"
    assert one(s, "ExecStart").endswith(" run")
    assert one(s, "Restart") == "on-failure" and one(s, "WatchdogSec")
    assert one(s, "DynamicUser") == "yes" and one(s, "StateDirectory") == "natlink"
    assert one(s, "NoNewPrivileges") == "yes" and one(s, "ProtectSystem") == "strict" and one(s, "ProtectHome") == "yes"
    assert one(s, "PrivateTmp") == "yes" and one(s, "CapabilityBoundingSet") == ""
    assert set(one(s, "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert "@system-service" in s["SystemCallFilter"]


def test_reload_validates_before_signalling():
    """D3: `systemctl reload` runs check-config on the same file first, then `natlink reload`, which signals the
    service and fails the reload when the service itself rejects the config (a broken credential)."""
    s = unit("natlink.service")["Service"]
    first, *_, last = s["ExecReload"]
    config = re.search(r" -c (\S+) ", one(s, "ExecStart"))
    # systemd 252 gives ExecReload= an unreadable $CREDENTIALS_DIRECTORY: check-config runs without it
    assert config and first == f"/usr/bin/env -u CREDENTIALS_DIRECTORY /usr/local/bin/natlink -c {config.group(1)} check-config"
    assert last == f"/usr/local/bin/natlink -c {config.group(1)} reload --pid $MAINPID"


def test_config_error_does_not_restart_forever():
    """D2: exit 2 (config/usage error) is not restarted; the reflector unit likewise."""
    for name in ("natlink.service", "natlink-reflector.service"):
        s = unit(name)["Service"]
        assert one(s, "Restart") == "on-failure"
        assert "2" in one(s, "RestartPreventExitStatus").split(), name


def test_service_and_oneshot_share_one_dynamic_user():
    """D1: both units use the state directory; with one User= name they share one dynamic UID."""
    svc, oneshot = unit("natlink.service")["Service"], unit("natlink-oneshot.service")["Service"]
    for s in (svc, oneshot):
        assert one(s, "DynamicUser") == "yes" and one(s, "StateDirectory") == "natlink"
    assert one(svc, "User") == one(oneshot, "User") and one(svc, "User")
    assert one(svc, "Group") == one(oneshot, "Group")


def test_oneshot_pair():
    svc = unit("natlink-oneshot.service")["Service"]
    assert one(svc, "Type") == "oneshot" and one(svc, "ExecStart").endswith("run --once")
    timer = unit("natlink-oneshot.timer")
    assert one(timer["Timer"], "OnUnitActiveSec") and one(timer["Timer"], "RandomizedDelaySec")
    assert one(timer["Install"], "WantedBy") == "timers.target"


def test_oneshot_hardened_like_the_service():
    svc, oneshot = unit("natlink.service")["Service"], unit("natlink-oneshot.service")["Service"]
    assert {k: svc.get(k) for k in HARDENING} == {k: oneshot.get(k) for k in HARDENING}


def test_reflector_unit():
    """D6-D8: its own log name (not `env`), natlink.service's sandbox, no header that locks /etc/natlink."""
    text = (REPO / "systemd" / "natlink-reflector.service").read_text()
    s, svc = unit("natlink-reflector.service")["Service"], unit("natlink.service")["Service"]
    assert one(s, "SyslogIdentifier") == "natlink-reflector"  # its ExecStart goes through /usr/bin/env
    assert " reflector --listen " in one(s, "ExecStart")
    same = [k for k in HARDENING if k != "SystemCallFilter"]
    assert {k: s.get(k) for k in same} == {k: svc.get(k) for k in same}
    # the service's filter minus its one extra allowance (capset, for `ip`): the reflector runs no `ip`
    assert s["SystemCallFilter"] == [f for f in svc["SystemCallFilter"] if f != "capset"]
    assert set(one(s, "RestrictAddressFamilies").split()) <= set(one(svc, "RestrictAddressFamilies").split())
    assert one(s, "DynamicUser") == "yes" and any(c.startswith("token:") for c in s["LoadCredential"])
    # /etc/natlink is shared with natlink.service, whose unprivileged user must read config.toml in it
    assert not re.search(r"install -d -m 0?7[0-4]0 /etc/natlink", text)
    assert "install -d -m 0755 /etc/natlink" in text


def exposure(name: str) -> float:
    result = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(REPO / "systemd" / name)],
                            capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


@needs_analyze
def test_security_exposure_is_low_for_every_service():
    """`systemd-analyze security` (offline: the unit files alone) rates every unit OK (< 2.0 of 10)."""
    scores = {name: exposure(name) for name in UNITS if name.endswith(".service")}
    assert all(score < 2.0 for score in scores.values()), scores
