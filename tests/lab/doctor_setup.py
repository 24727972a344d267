"""Shared set-up for the doctor's lab tests and bench: a config for the lab, the reflector, the service,
a mapping made with the reference client (upnpc) and an A record set with knsupdate."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

REFLECTOR_PORT = 8765
HOSTNAME = "rdp.home.example"


@dataclass
class DoctorRun:
    code: int
    doc: dict[str, Any]
    text: str
    stderr: str
    elapsed: float

    def checks(self, link: int, check: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.doc["checks"] if c["link"] == link and (check is None or c["check"] == check)]

    def one(self, link: int, check: str | None = None, subject: str | None = None) -> dict[str, Any]:
        found = [c for c in self.checks(link, check) if subject is None or c["subject"] == subject]
        assert len(found) == 1, (link, check, subject, self.doc["checks"])
        return found[0]


def write_config(lab: Any, *, mappings: list[tuple[str, int, int]] = (("rdp", 3390, 3389),),
                 reflector: bool = True, ddns: bool = True) -> str:
    lines = [
        "[router]", f'lan_ip = "{lab.lan_ip}"', f'igd_url = "{lab.igd_url}"', "timeout = 2", "",
        "[public_ip]", 'sources = ["router"]', "timeout = 2", "",
        "[service]", f'state_dir = "{os.path.join(lab.workdir, "state")}"', "",
        "[doctor]", "expected_connections = 500", "nat_timeout_max = 60", "",
    ]
    for name, external, internal in mappings:
        lines += ["[[mapping]]", f'name = "{name}"', f"external_port = {external}", f"internal_port = {internal}", ""]
    if ddns:
        lines += ["[[ddns]]", 'name = "home"', 'provider = "rfc2136"', f'hostnames = ["{HOSTNAME}"]',
                  f'server = "{lab.dns_server}"', f'zone = "{lab.zone}"', f'tsig_key_file = "{lab.tsig_key_file}"', ""]
    if reflector:
        for name, _, _ in mappings:
            lines += ["[[probe]]", f'mapping = "{name}"', 'via = "reflector"',
                      f'reflector = "http://{lab.wan_host_ip}:{REFLECTOR_PORT}"', "timeout = 2", ""]
    path = os.path.join(lab.workdir, "natlink.toml")
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    return path


def start_reflector(lab: Any) -> subprocess.Popen[Any]:
    proc = lab.popen("wan", [sys.executable, "-m", "natlink", "reflector", "--listen",
                             f"{lab.wan_host_ip}:{REFLECTOR_PORT}", "--insecure-http"], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            lab.call("wan", lambda: socket.create_connection((lab.wan_host_ip, REFLECTOR_PORT), timeout=0.2).close())
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("reflector did not start")


def upnpc_map(lab: Any, external: int, internal: int = 3389, host: str = "lan") -> None:
    client = lab.lan_ip if host == "lan" else lab.lan2_ip
    out = lab.run(host, ["upnpc", "-u", lab.igd_url, "-e", "doctor-test", "-a", client, str(internal), str(external),
                         "TCP"], check=False)
    assert "is redirected to internal" in out.stdout, out.stdout


def set_a_record(lab: Any, address: str, ttl: int = 300) -> None:
    script = (f"server {lab.dns_server} {lab.dns_port}\nzone {lab.zone}\n"
              f"update delete {HOSTNAME}. A\nupdate add {HOSTNAME}. {ttl} A {address}\nsend\n")
    lab.run("lan", ["knsupdate", "-y", lab.tsig_y_arg], input=script)


def healthy_lab(lab: Any) -> str:
    """Service up, mapping made, DNS right, reflector running: everything the doctor should find ok."""
    lab.tcp_service("lan", 3389)
    upnpc_map(lab, 3390)
    set_a_record(lab, lab.wan_ip)
    start_reflector(lab)
    return write_config(lab)


def doctor(lab: Any, config: str, *extra: str, timeout: float = 60) -> DoctorRun:
    started = time.monotonic()
    proc = lab.run("lan", [sys.executable, "-m", "natlink", "-c", config, "--json", "doctor", *extra], check=False,
                   timeout=timeout)
    elapsed = time.monotonic() - started
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    text = lab.run("lan", [sys.executable, "-m", "natlink", "-c", config, "doctor", *extra], check=False,
                   timeout=timeout).stdout if not extra else ""
    return DoctorRun(proc.returncode, doc, text, proc.stderr, elapsed)
