"""Pure decisions over what the sources answered: which address (if any) is the public IP, and what the
router's WAN address says about reachability. No I/O here; table-tested in tests/unit."""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, replace

from natlink.netaddr import AddrKind, classify, explain_wan

VERDICTS = ("public", "cgnat", "double-nat", "unknown")


@dataclass(frozen=True)
class SourceAnswer:
    """What one source said. `address` is set only when it answered with exactly one address."""

    source: str  # "router", "interface:eth0", "host", or the echo URL
    kind: str  # "router" | "echo" | "interface"
    family: int  # 4 | 6
    address: str | None = None
    error: str | None = None  # why there is no usable answer (timeout, HTML, ...)
    elapsed: float = 0.0
    accepted: bool = False  # counted as evidence of the public IP (set by `judge`)
    note: str | None = None  # why an answer was not counted

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "kind": self.kind, "family": self.family, "address": self.address,
                "accepted": self.accepted, "error": self.error, "note": self.note,
                "elapsed": round(self.elapsed, 4)}


@dataclass(frozen=True)
class Agreement:
    address: str | None
    problem: str | None
    answers: tuple[SourceAnswer, ...]


def _family_of(addr: str) -> int:
    return ipaddress.ip_address(addr).version


def screen(answer: SourceAnswer) -> SourceAnswer:
    """Mark whether an answer can count as a public address (evidence, not truth)."""
    if answer.address is None:
        return replace(answer, accepted=False)
    if _family_of(answer.address) != answer.family:
        return replace(answer, accepted=False, note=f"answered an IPv{_family_of(answer.address)} address "
                                                    f"when asked for IPv{answer.family}")
    kind = classify(answer.address)
    if kind is not AddrKind.PUBLIC:
        what = {AddrKind.CGNAT: "a carrier-grade NAT (100.64.0.0/10) address",
                AddrKind.PRIVATE: "a private address"}.get(kind, f"a {kind.value} address")
        return replace(answer, accepted=False, note=f"{answer.address} is {what}, not a public IP")
    return replace(answer, accepted=True, note=None)


def agree(answers: list[SourceAnswer], quorum: int = 0) -> Agreement:
    """Pick the public address for one family.

    quorum 0: every accepted answer must name the same address (at least one answer).
    quorum N: at least N accepted answers name it and no other address has as many.
    Disagreement is reported and nothing is picked: publishing a wrong address is worse than none.
    """
    screened = tuple(screen(a) for a in answers)
    votes = Counter(a.address for a in screened if a.accepted)
    if not votes:
        tried = ", ".join(f"{a.source}: {a.error or a.note or 'no address'}" for a in screened) or "no sources"
        return Agreement(None, f"no source gave a public address ({tried})", screened)
    ranked = votes.most_common()
    best, count = ranked[0]
    if quorum <= 0:
        if len(ranked) > 1:
            return Agreement(None, "sources disagree: " + _who_said(screened) + "; not publishing any of them "
                             "(fix or remove the wrong source, or set public_ip.quorum)", screened)
        return Agreement(best, None, screened)
    if count < quorum:
        return Agreement(None, f"only {count} source(s) agree on {best}, public_ip.quorum is {quorum} ("
                         + _who_said(screened) + ")", screened)
    if len(ranked) > 1 and ranked[1][1] == count:
        return Agreement(None, "sources disagree with no majority: " + _who_said(screened), screened)
    return Agreement(best, None, screened)


def _who_said(answers: tuple[SourceAnswer, ...]) -> str:
    return ", ".join(f"{a.source} says {a.address}" for a in answers if a.accepted)


@dataclass(frozen=True)
class WanVerdict:
    """Whether the internet reaches this network through the router: public | cgnat | double-nat | unknown."""

    verdict: str  # one of VERDICTS
    problem: str | None


def verdict(router_answered: bool, router_wan: str | None, public_ipv4: str | None,
            host_has_public: bool = False, rejected: tuple[str, ...] = ()) -> WanVerdict:
    """Can the internet reach us through this router?

    router_answered: a router gave an answer (possibly an empty address, as miniupnpd does behind NAT).
    host_has_public: an interface of this host carries the public address (no NAT at all).
    rejected: non-public addresses that sources reported (a 100.64/10 one is evidence of CGNAT).
    """
    if host_has_public and public_ipv4 is not None:
        return WanVerdict("public", None)
    if router_answered:
        kind = classify(router_wan)
        if kind is AddrKind.CGNAT:
            return WanVerdict("cgnat", _explain_cgnat(router_wan))
        if kind is AddrKind.PRIVATE:
            return WanVerdict("double-nat", explain_wan(router_wan))
        if kind is AddrKind.PUBLIC:
            if public_ipv4 is None or public_ipv4 == router_wan:
                return WanVerdict("public", None)
            return WanVerdict("unknown", f"the router's WAN address {router_wan} differs from the address the internet "
                                         f"sees ({public_ipv4}): traffic leaves through another path (VPN, second "
                                         "uplink?); mappings on this router will not be reached at " + public_ipv4)
        if any(classify(r) is AddrKind.CGNAT for r in rejected):
            return WanVerdict("cgnat", _explain_cgnat(next(r for r in rejected if classify(r) is AddrKind.CGNAT)))
        # the same sentences natlink map and the prober use for a router WAN address that cannot be reached
        return WanVerdict("unknown", explain_wan(router_wan if kind is not AddrKind.INVALID else None))
    if any(classify(r) is AddrKind.CGNAT for r in rejected):
        return WanVerdict("cgnat", _explain_cgnat(next(r for r in rejected if classify(r) is AddrKind.CGNAT)))
    if public_ipv4 is None:
        return WanVerdict("unknown", None)
    return WanVerdict("unknown", "no router answered, so natlink cannot tell whether the public address reaches this "
                                 "network; check [router] (natlink mappings) or add an interface: source")


def _explain_cgnat(addr: str | None) -> str:
    return (f"the WAN address {addr} is carrier-grade NAT (100.64.0.0/10): nothing from the internet can reach a "
            "port mapping; ask your ISP for a public IPv4 address, or use IPv6")
