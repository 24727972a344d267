"""What the lab needs from the machine, as a list of human-readable problems."""

from __future__ import annotations

import os
import shutil
import sys

REQUIRED_BINARIES = ("ip", "nft", "miniupnpd", "knotd", "knotc")
INSTALL_HINT = (
    "install: Debian/Ubuntu: apt-get install miniupnpd-nftables nftables iproute2 knot knot-dnsutils ; "
    "Fedora: dnf install miniupnpd nftables iproute knot knot-utils"
)
# Daemons live in sbin, which is often missing from a non-login PATH.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"]
)


def find_binary(name: str) -> str | None:
    return shutil.which(name, path=_SEARCH_PATH)


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
        problems.append(f"missing programs: {', '.join(missing)} — {INSTALL_HINT}")
    return problems
