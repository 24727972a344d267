"""What the DNS lab tests share: natlink's --json answer, and the lab's knot asked (kdig) or changed by hand
(knsupdate) from the WAN host, the way an outside resolver or the zone's admin would."""

from __future__ import annotations

import json
import sys
from typing import Any


def natlink_json(lab: Any, cfg: str, *argv: str) -> tuple[int, dict[str, Any], str]:
    """`natlink -c CFG --json ARGV` on the LAN host: (exit code, the JSON document, stderr)."""
    proc = lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, "--json", *argv], check=False)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def kdig(lab: Any, name: str, rtype: str = "A") -> list[str]:
    """The records knot serves for name/rtype, sorted (empty: none)."""
    out = lab.run("wan", ["kdig", f"@{lab.dns_server}", name, rtype, "+short"]).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def knsupdate(lab: Any, name: str, ip: str) -> None:
    """Replace name's A record by hand, with the zone's TSIG key."""
    script = (f"server {lab.dns_server} {lab.dns_port}\nzone {lab.zone}.\nupdate delete {name}. A\n"
              f"update add {name}. 60 A {ip}\nsend\n")
    lab.run("wan", ["knsupdate", "-k", lab.tsig_knot_key_file], input=script)
