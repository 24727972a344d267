"""What the lab needs from the machine, as a list of human-readable problems."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence

REQUIRED_BINARIES = ("ip", "nft", "miniupnpd", "knotd", "knotc")
# program -> (Debian/Ubuntu package, Fedora package)
PACKAGES = {"ip": ("iproute2", "iproute"), "nft": ("nftables", "nftables"),
            "miniupnpd": ("miniupnpd-nftables", "miniupnpd"), "knotd": ("knot", "knot"), "knotc": ("knot", "knot")}

# Daemons live in sbin, which is often missing from a non-login PATH.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"]
)


def find_binary(name: str) -> str | None:
    return shutil.which(name, path=_SEARCH_PATH)


def tool(name: str) -> str:
    """The path the lab runs ``name`` by: the one the prerequisite check found, so a PATH without /usr/sbin
    (Debian's `su` without `-`) cannot pass the check and then fail to exec."""
    return find_binary(name) or name


def os_release() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


def distro_family(os_release: str) -> str:
    """PURE: "debian" or "fedora" from /etc/os-release's ID and ID_LIKE; "" when neither."""
    words: list[str] = []
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            words += value.strip().strip('"').split()
    if any(w in ("debian", "ubuntu") for w in words):
        return "debian"
    if any(w in ("fedora", "rhel", "centos") for w in words):
        return "fedora"
    return ""


def install_command(programs: Sequence[str], distro: str) -> str:
    """PURE: "as root (`su -`): apt-get install X Y, or with sudo: sudo apt-get install X Y"."""
    def both(tool: str, packages: list[str]) -> str:
        cmd = f"{tool} install {' '.join(packages)}"
        return f"as root (`su -`, not plain `su`): `{cmd}`, or `sudo {cmd}`"

    debian = list(dict.fromkeys(PACKAGES.get(p, (p, p))[0] for p in programs))
    fedora = list(dict.fromkeys(PACKAGES.get(p, (p, p))[1] for p in programs))
    if distro == "debian":
        return f"package{'s' * (len(debian) > 1)} {', '.join(debian)}: " + both("apt-get", debian)
    if distro == "fedora":
        return f"package{'s' * (len(fedora) > 1)} {', '.join(fedora)}: " + both("dnf", fedora)
    return f"Debian/Ubuntu: {both('apt-get', debian)}; Fedora: {both('dnf', fedora)}"


def check_prerequisites() -> list[str]:
    """Empty list = the lab can run here. Each entry says what is missing and how to fix it."""
    problems: list[str] = []
    if not sys.platform.startswith("linux"):
        problems.append(f"the lab needs Linux network namespaces (this is {sys.platform})")
        return problems
    if os.geteuid() != 0:
        problems.append("the lab must run as root (network namespaces, nftables, setns)")
    missing = [name for name in REQUIRED_BINARIES if find_binary(name) is None]
    if missing:
        problems.append(f"not installed: {', '.join(missing)} — {install_command(missing, distro_family(os_release()))}")
    return problems
