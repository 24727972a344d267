"""`natlink init` on the lab's LAN host: the starter config names this host, the router and the protocols that
really answered (the lab's miniupnpd speaks all three), passes check-config as written, and is never
overwritten; `init --systemd` installs the units shipped in the package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab


def natlink(lab, *args: str):
    return lab.run("lan", [sys.executable, "-m", "natlink", *args], check=False, timeout=30)


def test_init_writes_what_it_saw_and_never_overwrites(lab, tmp_path: Path) -> None:
    r = natlink(lab, "init", "--root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    path = tmp_path / "etc/natlink/config.toml"  # root's standard place, below --root
    text = path.read_text()
    assert f"wrote {path}" in r.stdout
    assert 'lan_ip = "10.0.1.201"' in text
    assert '# gateway = "10.0.1.1"' in text
    assert 'protocols = ["upnp", "natpmp", "pcp"]' in text
    assert "answered when `natlink init` asked: UPnP IGD, NAT-PMP, PCP" in text
    example = text.splitlines()[1].split(" in ", 1)[1]
    assert Path(example).is_file() and "[router]" in Path(example).read_text()  # a file it names exists
    check = natlink(lab, "-c", str(path), "check-config")
    assert check.returncode == 0, check.stderr
    again = natlink(lab, "init", "--root", str(tmp_path))
    assert again.returncode == 2 and "already exists" in again.stderr and "never overwrites" in again.stderr
    assert path.read_text() == text


def test_init_with_no_router_says_so_and_keeps_all_protocols(lab, tmp_path: Path) -> None:
    lab.router_down()
    target = tmp_path / "c.toml"
    r = natlink(lab, "-c", str(target), "init")
    assert r.returncode == 0, r.stderr
    text = target.read_text()
    assert "no router protocol answered" in text and 'protocols = ["upnp", "natpmp", "pcp"]' in text
    assert "answered: nothing" in r.stdout


def test_init_systemd_installs_the_packaged_units(lab, tmp_path: Path) -> None:
    r = natlink(lab, "init", "--systemd", "--root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    unit_dir = tmp_path / "etc/systemd/system"
    names = sorted(p.name for p in unit_dir.iterdir())
    assert names == ["natlink-oneshot.service", "natlink-oneshot.timer", "natlink-reflector.service",
                     "natlink.service"]
    service = (unit_dir / "natlink.service").read_text()
    exec_line = next(ln for ln in service.splitlines() if ln.startswith("ExecStart="))
    assert Path(exec_line.split("=", 1)[1].split()[0]).exists()  # the binary the unit runs exists
    assert "systemctl enable --now natlink" in r.stdout
    again = natlink(lab, "init", "--systemd", "--root", str(tmp_path))
    assert again.returncode == 0 and "already installed" in again.stdout
    (unit_dir / "natlink.service").write_text(service + "# local edit\n")
    changed = natlink(lab, "init", "--systemd", "--root", str(tmp_path))
    assert changed.returncode == 2 and "differs" in changed.stderr
