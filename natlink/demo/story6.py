"""`natlink demo --scenario cgnat-ipv6`: the common case today — no public IPv4 (carrier-grade NAT) but a public
IPv6 prefix. The real `natlink map` / `ddns` / `unmap` run on the LAN host; every check is made from the internet
host: DNS asked at knot, TCP connects over IPv6 to what DNS answered.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from natlink.output import Output

from natlink.demo.render import FAILED, OK, Printer, StepResult
from natlink.demo.sandbox import python_m

PORT = 8080
NAME = "web.home.example"
NEW_PREFIX = "2600:1:2::/64"


def config_text(lab: Any) -> str:
    return f"""[router]
protocols = ["upnp", "pcp"]
timeout = 2
[public_ip]
sources = ["router"]
ipv6 = true
[[mapping]]
name = "web"
external_port = {PORT}
[[ddns]]
name = "home"
provider = "rfc2136"
hostnames = ["{NAME}"]
server = "{lab.dns_server}"
tsig_key_file = "{lab.tsig_key_file}"
ipv6 = true
[service]
state_dir = "{lab.workdir}/state"
"""


@dataclass
class Ipv6Story:
    out: Output
    printer: Printer = field(init=False)
    results: list[StepResult] = field(default_factory=list)
    lab: Any = None
    config: str = ""

    def __post_init__(self) -> None:
        self.printer = Printer(self.out)

    def step(self, key: str, title: str, fn: Callable[[], tuple[bool, str]]) -> bool:
        started = time.monotonic()
        try:
            good, detail = fn()
        except Exception as exc:  # noqa: BLE001 - a failed line, never a traceback; the teardown still runs
            good, detail = False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        r = StepResult(key, title, OK if good else FAILED, detail, time.monotonic() - started)
        self.results.append(r)
        self.printer.step(r)
        return good

    def natlink(self, *argv: str) -> Any:
        return self.lab.run("lan", [*python_m("natlink"), "-c", self.config, *argv], check=False, timeout=60)

    def aaaa(self) -> list[str]:
        out = self.lab.run("wan", ["kdig", f"@{self.lab.dns_server}", NAME, "AAAA", "+short", "+timeout=1"],
                           check=False).stdout
        return [ln.strip() for ln in out.splitlines() if ln.strip()]

    def connect(self, address: str) -> str:
        try:
            got = self.lab.tcp_banner("wan", address, PORT, timeout=1.0)
            return "connected" if got == b"SERVER6\n" else f"unexpected answer {got!r}"
        except (TimeoutError, socket.timeout):
            return "timed out"
        except OSError as exc:
            return exc.strerror or type(exc).__name__

    # ------------------------------------------------------------------ the steps

    def build(self) -> tuple[bool, str]:
        from natlink.lab import Lab

        self.lab = Lab("cgnat-ipv6", lan2=False)
        self.lab.start()
        self.lab.tcp_service("lan", PORT, b"SERVER6\n", ipv6=True)
        self.config = str(Path(self.lab.workdir) / "natlink.toml")
        Path(self.config).write_text(config_text(self.lab))
        return True, (f"router WAN {self.lab.wan_ip} (carrier-grade NAT), LAN IPv6 {self.lab.lan_prefix6}, "
                      f"server [{self.lab.lan_ip6}]:{PORT}")

    def blocked_before(self) -> tuple[bool, str]:
        seen = self.connect(self.lab.lan_ip6)
        return seen != "connected", f"from the internet host: {seen} (the router's IPv6 firewall drops it)"

    def map(self) -> tuple[bool, str]:
        r = self.natlink("map")
        verdict = next((ln for ln in r.stdout.splitlines() if "IPv6 is" in ln), r.stderr.strip()[-200:])
        return r.returncode == 0, verdict

    def ddns(self) -> tuple[bool, str]:
        r = self.natlink("ddns")
        got = self.aaaa()
        return r.returncode == 0 and got == [self.lab.lan_ip6], f"knot answers {NAME} AAAA {', '.join(got) or 'nothing'}"

    def outside(self) -> tuple[bool, str]:
        got = self.aaaa()
        seen = self.connect(got[0]) if got else "no AAAA"
        return seen == "connected", f"resolved {NAME} → {got[0] if got else '-'}, TCP over IPv6: {seen}"

    def renumber(self) -> tuple[bool, str]:
        self.lab.ipv6_renumber(NEW_PREFIX)
        ok = self.natlink("map").returncode == 0 and self.natlink("ddns").returncode == 0
        good, detail = self.outside()
        return ok and good, f"new prefix {NEW_PREFIX}: " + detail

    def unmap(self) -> tuple[bool, str]:
        r = self.natlink("unmap")
        seen = self.connect(self.lab.lan_ip6)
        return r.returncode == 0 and seen != "connected", f"pinhole closed; from outside: {seen}"

    def run(self) -> int:
        self.printer.line(self.printer.text("natlink demo — carrier-grade NAT with public IPv6 (no public IPv4)"))
        started = time.monotonic()
        try:
            if self.step("sandbox", "sandbox built", self.build):
                steps = [("before", "outside IPv6 connect before natlink", self.blocked_before),
                         ("map", "natlink map (IPv6 pinhole)", self.map),
                         ("ddns", "natlink ddns (AAAA)", self.ddns),
                         ("reach", "outside IPv6 connect by name", self.outside),
                         ("renumber", "ISP changes the IPv6 prefix", self.renumber),
                         ("unmap", "natlink unmap", self.unmap)]
                for key, title, fn in steps:
                    if not self.step(key, title, fn):
                        break
        finally:
            if self.lab is not None:
                self.step("teardown", "sandbox torn down", lambda: (self.lab.stop() or True, ""))
        self.printer.summary(self.results, time.monotonic() - started)
        self.out.json({"ok": all(r.ok for r in self.results), "scenario": "cgnat-ipv6",
                       "steps": [r.to_json() for r in self.results]})
        return 0 if all(r.ok for r in self.results) else 1
