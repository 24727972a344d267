"""Can the demo run here? One line naming what is missing, its package and the exact command that fixes it —
as root (`su -`) and with sudo — decided before anything is built."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from natlink.errors import NatlinkError
from natlink.lab.prereq import os_release, distro_family, install_command

EXIT_PREREQ = 2
PYTHON_MODULES = {"miniupnpc": "miniupnpc", "dns": "dnspython", "apscheduler": "apscheduler"}


@dataclass(frozen=True)
class Host:
    """What the check looks at; tests pass their own."""

    platform: str
    euid: int
    which: Callable[[str], str | None]
    importable: Callable[[str], bool]
    distro: str = ""  # "debian" | "fedora" | "" (unknown: both commands are named)


def this_host() -> Host:
    from natlink.lab.prereq import find_binary  # the lab's own search (PATH plus the sbin dirs); it runs that path

    return Host(platform=sys.platform, euid=os.geteuid() if hasattr(os, "geteuid") else -1,
                which=find_binary, importable=lambda m: importlib.util.find_spec(m) is not None,
                distro=distro_family(os_release()))


def problems(host: Host, binaries: Sequence[str] | None = None) -> list[str]:
    """PURE over `host`: each entry is one missing piece with its fix; empty = the demo can run."""
    if not host.platform.startswith("linux"):
        return [f"the demo needs Linux network namespaces (this is {host.platform}); "
                "run it on a Linux machine or VM"]
    if binaries is None:
        from natlink.lab.prereq import REQUIRED_BINARIES

        binaries = REQUIRED_BINARIES
    found: list[str] = []
    if host.euid != 0:
        found.append("the demo must run as root (it builds network namespaces): `su -` then `natlink demo`, "
                     "or `sudo natlink demo`")
    missing = [name for name in binaries if host.which(name) is None]
    if missing:
        names = " and ".join(", ".join(missing).rsplit(", ", 1))
        found.append(f"{names} {'is' if len(missing) == 1 else 'are'} not installed — "
                     + install_command(missing, host.distro))
    modules = [pkg for mod, pkg in PYTHON_MODULES.items() if not host.importable(mod)]
    if modules:
        found.append(f"the Python packages {', '.join(modules)} are missing — install natlink with its "
                     "dependencies (`/opt/natlink/bin/pip install .`, see the README)")
    return found


def require(host: Host | None = None) -> None:
    """Raise the one-line NatlinkError (exit 2) before anything is built."""
    found = problems(host or this_host())
    if found:
        raise NatlinkError("the demo cannot run here: " + "; ".join(found), exit_code=EXIT_PREREQ)
