"""Missing prerequisites: one line, the exact install commands, exit 2 — decided before anything is built.
The check is pure over an injectable Host; tests/lab/test_demo_lab.py runs the real paths (not root, binaries
hidden) end to end."""

from __future__ import annotations

import pytest

from natlink.demo import prereq
from natlink.errors import NatlinkError

ALL = {"ip", "nft", "miniupnpd", "knotd", "knotc"}


def host(platform: str = "linux", euid: int = 0, present: set[str] = ALL, modules: bool = True) -> prereq.Host:
    return prereq.Host(platform=platform, euid=euid, which=lambda n: f"/usr/sbin/{n}" if n in present else None,
                       importable=lambda m: modules)


def test_all_present_means_no_problem() -> None:
    assert prereq.problems(host()) == []
    prereq.require(host())  # does not raise


@pytest.mark.parametrize("h, expected", [
    (host(platform="darwin"), "needs Linux network namespaces (this is darwin)"),
    (host(platform="win32", euid=1000, present=set()), "needs Linux network namespaces (this is win32)"),
    (host(euid=1000), "must run as root (it builds network namespaces): sudo natlink demo"),
    (host(present=ALL - {"miniupnpd"}), "missing programs: miniupnpd — install them"),
    (host(present={"ip"}), "missing programs: nft, miniupnpd, knotd, knotc — install them"),
    (host(modules=False), "missing Python packages: miniupnpc, dnspython, apscheduler"),
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
    assert "missing programs: nft, knotd" in text
    assert "apt-get install miniupnpd-nftables nftables iproute2 knot knot-dnsutils" in text
    assert "dnf install miniupnpd nftables iproute knot knot-utils" in text


def test_this_host_is_described() -> None:
    h = prereq.this_host()
    assert isinstance(h.euid, int) and h.importable("json") and not h.importable("no_such_module_natlink")
