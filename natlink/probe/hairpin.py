"""Hairpin check: connect from inside to our own public address. It shows whether the router loops such
connections back (hairpin NAT / NAT loopback) — never proof that the outside can reach us."""

from __future__ import annotations

from natlink.probe.dial import DialOutcome, dial_tcp, dial_udp


def check(public_address: str, port: int, protocol: str, timeout: float, read: int = 0) -> DialOutcome:
    if protocol == "udp":
        return dial_udp(public_address, port, timeout, read=max(read, 1))
    return dial_tcp(public_address, port, timeout, read=read, read_timeout=min(timeout, 1.0))
