"""One verdict per address family (IPv4 port mappings, IPv6 pinholes) and the sentence that joins them.

Pure; `natlink map` and `natlink ip` print these. Each verdict states only what this run saw.
"""

from __future__ import annotations

from dataclasses import dataclass

from natlink.netaddr import AddrKind, classify

OPEN, BLOCKED, CGNAT, FAILED, OFF, UNKNOWN = "open", "blocked", "cgnat", "failed", "off", "unknown"


@dataclass(frozen=True)
class FamilyVerdict:
    """Whether one address family makes the server reachable from outside, and the line that says so."""

    family: int  # 4 | 6
    state: str  # open | cgnat | blocked | failed | off | unknown
    text: str

    def to_json(self) -> dict[str, object]:
        return {"family": self.family, "state": self.state, "text": self.text}


def ipv4(wan_ip: str | None, wan_problem: str | None, mapped_ok: bool | None) -> FamilyVerdict:
    """mapped_ok: every IPv4 mapping step succeeded in this run (None: nothing was asked of the router)."""
    kind = classify(wan_ip) if wan_ip else AddrKind.INVALID
    if wan_problem:
        if kind is AddrKind.CGNAT or kind is AddrKind.INVALID:
            # miniupnpd-based routers behind CGNAT report no external address at all (lab notes).
            return FamilyVerdict(4, CGNAT, "IPv4 is carrier-grade NAT" + ("" if wan_ip else
                                 " (or another NAT: the router reports no external address)"))
        return FamilyVerdict(4, BLOCKED, f"IPv4 cannot be reached from outside: {wan_problem}")
    if mapped_ok is None:
        return FamilyVerdict(4, UNKNOWN, "IPv4 unverified: no mapping was requested in this run")
    if mapped_ok:
        return FamilyVerdict(4, OPEN, f"IPv4 is open (port mappings on {wan_ip} confirmed by the router)")
    return FamilyVerdict(4, FAILED, "IPv4 mappings failed (see above)")


def ipv6(wanted: int, ok: bool, address: str | None, problem: str | None) -> FamilyVerdict:
    """wanted: how many mappings ask for IPv6; ok: every pinhole step succeeded in this run."""
    if wanted == 0:
        return FamilyVerdict(6, OFF, "IPv6 not asked for (set ipv6 = true on a mapping or in [public_ip])")
    if problem:
        return FamilyVerdict(6, FAILED, f"IPv6 is closed: {problem}")
    if ok:
        return FamilyVerdict(6, OPEN, f"IPv6 is open (pinholes for {address} confirmed by the router)")
    return FamilyVerdict(6, FAILED, "IPv6 pinholes failed (see above)")


def summary(v4: FamilyVerdict, v6: FamilyVerdict) -> str:
    """The one line that says what a client needs."""
    if v6.state == OPEN and v4.state != OPEN:
        first = v4.text.split(" (", 1)[0] if v4.state == CGNAT else v4.text
        return f"{first}; IPv6 is open — clients need IPv6"
    if v4.state == OPEN and v6.state == OPEN:
        return "IPv4 and IPv6 are open — every client can connect"
    if v4.state == OPEN:
        return v4.text.split(" (", 1)[0] + ("" if v6.state == OFF else f"; {v6.text}")
    return f"{v4.text}; {v6.text}"


def reachable(v4: FamilyVerdict, v6: FamilyVerdict) -> bool:
    return OPEN in (v4.state, v6.state)


def ip_lines(v4_verdict: str, ipv6_address: str | None, ipv6_problem: str | None,
             pinholes: list[str]) -> tuple[str, str, str]:
    """`natlink ip`'s three lines (IPv4, IPv6, summary). `natlink ip` asks the router nothing about pinholes,
    so a pinhole from natlink's state is "recorded", never "open"."""
    four = {"public": "IPv4 is public", "cgnat": "IPv4 is carrier-grade NAT", "double-nat": "IPv4 is behind another NAT"
            }.get(v4_verdict, "IPv4 has no confirmed public address")
    if ipv6_address is None:
        six = f"IPv6: no global address ({ipv6_problem or 'none found'})"
    elif pinholes:
        six = (f"IPv6: {ipv6_address}; pinholes recorded by natlink for {', '.join(pinholes)} (unverified here: "
               "`natlink map` asks the router)")
    else:
        six = (f"IPv6: {ipv6_address}; no pinhole: the router's IPv6 firewall blocks inbound connections until "
               "`natlink map` opens one (ipv6 = true)")
    if ipv6_address is not None and v4_verdict != "public":
        summary = f"{four}; IPv6 can carry the server — clients need IPv6" + (
            "" if pinholes else " (open a pinhole with natlink map)")
    elif ipv6_address is not None:
        summary = f"{four}; IPv6 has a global address too"
    else:
        summary = four
    return four, six, summary
