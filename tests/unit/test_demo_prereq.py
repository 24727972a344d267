"""Missing prerequisites: one line, the exact install commands, exit 2 — decided before anything is built.
The check is pure over an injectable Host; tests/lab/test_demo_lab.py runs the real paths (not root, binaries
hidden) end to end."""

from __future__ import annotations

import pytest

from natlink.demo import prereq
from natlink.errors import NatlinkError

ALL = {"ip", "nft", "miniupnpd", "knotd", "knotc"}


def host(platform: str = "linux", euid: int = 0, present: set[str] = ALL, modules: bool = True,
         distro: str = "") -> prereq.Host:
    return prereq.Host(platform=platform, euid=euid, which=lambda n: f"/usr/sbin/{n}" if n in present else None,
                       importable=lambda m: modules, distro=distro)


def test_all_present_means_no_problem() -> None:
    assert prereq.problems(host()) == []
    prereq.require(host())  # does not raise


@pytest.mark.parametrize("h, expected", [
    (host(platform="darwin"), "needs Linux network namespaces (this is darwin)"),
    (host(platform="win32", euid=1000, present=set()), "needs Linux network namespaces (this is win32)"),
    (host(euid=1000), "must run as root (it builds network namespaces): `su -` then `natlink demo`, or "
                      "`sudo natlink demo`"),
    (host(present=ALL - {"miniupnpd"}, distro="debian"), "miniupnpd is not installed — package miniupnpd-nftables: "
     "as root (`su -`, not plain `su`): `apt-get install miniupnpd-nftables`, or "
     "`sudo apt-get install miniupnpd-nftables`"),
    (host(present={"ip"}, distro="fedora"), "nft, miniupnpd, knotd and knotc are not installed — packages "
     "nftables, miniupnpd, knot: as root (`su -`, not plain `su`): `dnf install nftables miniupnpd knot`"),
    (host(modules=False), "the Python packages miniupnpc, dnspython, apscheduler are missing"),
])
def test_each_problem_is_named(h: prereq.Host, expected: str) -> None:
    assert expected in " ".join(prereq.problems(h))


def test_not_linux_stops_at_that() -> None:
    assert len(prereq.problems(host(platform="darwin", euid=1000, present=set()))) == 1


def test_one_line_exit_2_with_both_install_commands() -> None:
    with pytest.raises(NatlinkError) as info:
        prereq.require(host(euid=1000, present=ALL - {"knotd", "nft"}))
    exc = info.value
    assert exc.exit_code == 2 and "\n" not in str(exc)
    text = str(exc)
    assert text.startswith("the demo cannot run here: the demo must run as root")
    assert "nft and knotd are not installed" in text and "Error" not in text
    assert "Debian/Ubuntu: as root (`su -`, not plain `su`): `apt-get install nftables knot`" in text
    assert "Fedora: as root (`su -`, not plain `su`): `dnf install nftables knot`, or `sudo dnf install" in text


@pytest.mark.parametrize("os_release,family", [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n', "debian"),
    ('ID=ubuntu\nID_LIKE=debian\n', "debian"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora"),
    ("ID=arch\n", ""),
    ("", ""),
])
def test_distro_family(os_release: str, family: str) -> None:
    assert prereq.distro_family(os_release) == family


def test_this_host_is_described() -> None:
    h = prereq.this_host()
    assert isinstance(h.euid, int) and h.importable("json") and not h.importable("no_such_module_natlink")
