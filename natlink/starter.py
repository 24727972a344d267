"""What `natlink init` writes and where: the starter config (from what was detected on this network) and the
systemd units shipped inside the package. Pure text and path decisions; the command does the I/O."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from natlink.portmap.base import MAPPER_LABELS

UNITS = ("natlink.service", "natlink-oneshot.service", "natlink-oneshot.timer", "natlink-reflector.service")
UNIT_BINARY = "/usr/local/bin/natlink"  # what the shipped units' ExecStart runs


@dataclass(frozen=True)
class Detected:
    """What this run saw of the network (None / empty: not seen)."""

    gateway: str | None = None
    lan_ip: str | None = None
    lan_ip_dhcp: bool | None = None  # None: cannot tell
    answered: tuple[str, ...] = ()  # protocols that answered, in preference order
    silent: dict[str, str] = field(default_factory=dict)  # protocol -> why it did not answer


def default_config_path(euid: int, home: str | None = None) -> Path:
    """Where natlink looks without -c (and where `natlink init` writes): the system path for root."""
    if euid == 0:
        return Path("/etc/natlink/config.toml")
    return Path(home or os.path.expanduser("~")) / ".config" / "natlink" / "config.toml"


def default_state_dir(euid: int, home: str | None = None) -> str:
    """The service's /var/lib/natlink for root (and systemd's StateDirectory=); a user's own otherwise."""
    if euid == 0:
        return "/var/lib/natlink"
    return str(Path(home or os.path.expanduser("~")) / ".local" / "state" / "natlink")


def data_file(*parts: str) -> Path:
    """A file shipped in the package (natlink/data: the example config, the systemd units)."""
    return Path(str(resources.files("natlink").joinpath("data", *parts)))


def example_config() -> Path:
    return data_file("config.example.toml")


def starter_config(d: Detected, *, state_dir: str | None = None) -> str:
    """A config that works as written (no mapping yet), with what was detected filled in and commented
    examples of the rest; every key is documented in the example config named at the top."""
    protocols = d.answered or tuple(MAPPER_LABELS)
    if d.answered:
        seen = ", ".join(MAPPER_LABELS[p] for p in d.answered)
        quiet = "; ".join(f"{MAPPER_LABELS[p]}: {why}" for p, why in d.silent.items())
        proto_note = f"# answered when `natlink init` asked: {seen}" + (f" (no answer: {quiet})" if quiet else "")
    else:
        proto_note = ("# no router protocol answered when `natlink init` asked: enable UPnP IGD or NAT-PMP/PCP "
                      "in the router,\n# then run `natlink doctor`")
    if d.lan_ip:
        dhcp = (" (it looks DHCP-assigned: give it a reservation in the router, or mappings break when it changes)"
                if d.lan_ip_dhcp else "")
        lan_line = _commented(f'lan_ip = "{d.lan_ip}"', "this host, detected" + dhcp)
    else:
        lan_line = _commented('lan_ip = "auto"', "this host's address toward the router (not detected)")
    gateway = _commented(f'# gateway = "{d.gateway or "ROUTER-IP"}"',
                         ("detected; " if d.gateway else "") + "default: the default route's gateway")
    lines = [
        "# natlink configuration, written by `natlink init`. Check it with: natlink check-config",
        f"# Every key is explained in {example_config()}",
        "# Durations: \"90s\", \"10m\", \"1h\", \"2d\". Secrets never go here: use <key>_file / <key>_env.",
        "",
        "[router]",
        proto_note,
        "protocols = [" + ", ".join(f'"{p}"' for p in protocols) + "]",
        gateway,
        lan_line,
        'lease = "1h"                          # renewed at half; 0 = permanent',
        "",
        "# One [[mapping]] per port to open; remove the # to use it. ISPs often block 80, 25, 445: use a high",
        "# external port. `natlink map --dry-run` shows what would happen, `natlink map` does it.",
        "# [[mapping]]",
        '# name = "rdp"                        # letters, digits, - _ . (shown in the router as natlink:rdp)',
        '# protocol = "tcp"                    # tcp | udp',
        "# external_port = 3390                # the port the internet connects to",
        "# internal_port = 3389                # the port on this host (default: external_port)",
        "",
        "# A name that follows your public address (see the example config for every provider):",
        "# [[ddns]]",
        '# name = "home"',
        '# provider = "duckdns"',
        '# hostnames = ["myhome"]',
        '# token_file = "/etc/natlink/duckdns.token"',
        "",
        "# Proof from outside: run `natlink reflector --listen 0.0.0.0:8765` on a machine outside your network.",
        "# [[probe]]",
        '# mapping = "rdp"',
        '# reflector = "https://reflector.example.net:8765"',
    ]
    if state_dir is not None:
        lines += ["", "[service]", f'state_dir = "{state_dir}"']
    return "\n".join(lines) + "\n"


def _commented(setting: str, comment: str) -> str:
    return f"{setting:<37} # {comment}"


def unit_text(text: str, binary: str) -> str:
    """A shipped unit, pointed at ``binary`` when natlink is not installed where the unit expects it."""
    if binary == UNIT_BINARY:
        return text
    return text.replace(f"ExecStart={UNIT_BINARY} ", f"ExecStart={binary} ").replace(
        "ExecStart=/usr/bin/env natlink ", f"ExecStart={binary} ")
