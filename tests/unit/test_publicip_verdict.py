"""Table tests for the pure public-IP decisions: which answers count, agreement/quorum, and the verdict."""

from __future__ import annotations

import pytest

from natlink.publicip import judge
from natlink.publicip.verdict import SourceAnswer, agree, screen, verdict


def echo(url: str, addr: str | None, error: str | None = None, family: int = 4) -> SourceAnswer:
    return SourceAnswer(url, "echo", family, address=addr, error=error)


def router(addr: str | None) -> SourceAnswer:
    return SourceAnswer("router", "router", 4, address=addr, error=None if addr else "no external address")


SCREEN = [
    ("11.0.0.2", 4, True, None),
    ("203.0.113.5", 4, False, "reserved"),  # documentation range
    ("10.1.2.3", 4, False, "private"),
    ("100.64.3.4", 4, False, "carrier-grade NAT"),
    ("127.0.0.1", 4, False, "loopback"),
    ("169.254.1.1", 4, False, "link-local"),
    ("224.0.0.1", 4, False, "multicast"),
    ("2001:db8::1", 6, False, "reserved"),
    ("fe80::1", 6, False, "link-local"),
    ("fd00::1", 6, False, "private"),
    ("2001:470:1f0b::5", 6, True, None),
    ("2001:470:1f0b::5", 4, False, "IPv6 address when asked for IPv4"),
]


@pytest.mark.parametrize("addr, family, accepted, note", SCREEN)
def test_screen(addr: str, family: int, accepted: bool, note: str | None) -> None:
    result = screen(echo("e", addr, family=family))
    assert result.accepted is accepted
    assert (note is None and result.note is None) or (note is not None and note in (result.note or ""))


AGREE = [
    # (name, answers, quorum, address, problem words)
    ("all agree", [router("11.0.0.2"), echo("a", "11.0.0.2"), echo("b", "11.0.0.2")], 0, "11.0.0.2", None),
    ("one timed out", [echo("a", "11.0.0.2"), echo("b", None, "no answer within 3s")], 0, "11.0.0.2", None),
    ("disagree", [echo("a", "11.0.0.2"), echo("b", "11.0.0.9")], 0, None, "sources disagree"),
    ("private answer ignored", [echo("a", "11.0.0.2"), echo("b", "192.168.1.4")], 0, "11.0.0.2", None),
    ("nothing usable", [echo("a", None, "answered text/html"), echo("b", "10.0.0.1")], 0, None,
     "no source gave a public address"),
    ("no sources", [], 0, None, "no sources"),
    ("quorum 2 met", [echo("a", "11.0.0.2"), echo("b", "11.0.0.2"), echo("c", "11.0.0.9")], 2, "11.0.0.2", None),
    ("quorum 2 not met", [echo("a", "11.0.0.2"), echo("b", None, "timeout")], 2, None, "only 1 source"),
    ("quorum 1 tie", [echo("a", "11.0.0.2"), echo("b", "11.0.0.9")], 1, None, "no majority"),
]


@pytest.mark.parametrize("name, answers, quorum, address, problem", AGREE, ids=[a[0] for a in AGREE])
def test_agree(name: str, answers: list[SourceAnswer], quorum: int, address: str | None, problem: str | None) -> None:
    result = agree(answers, quorum)
    assert result.address == address
    assert (problem is None and result.problem is None) or (problem is not None and problem in (result.problem or ""))


VERDICT = [
    # (name, router answered, router WAN, public, host has public, rejected echo answers, verdict, words)
    ("public", True, "11.0.0.2", "11.0.0.2", False, (), "public", None),
    ("public, router only", True, "11.0.0.2", None, False, (), "public", None),
    ("cgnat reported by router", True, "100.64.7.9", "11.0.0.2", False, (), "cgnat", "100.64.7.9"),
    ("double nat", True, "192.168.1.20", "11.0.0.2", False, (), "double-nat", "192.168.1.20"),
    ("router hides WAN", True, None, "11.0.0.2", False, (), "unknown", "no external address"),
    ("router hides WAN, echo sees cgnat", True, None, None, False, ("100.64.0.2",), "cgnat", "100.64.0.2"),
    ("router public but traffic elsewhere", True, "11.0.0.2", "11.0.0.99", False, (), "unknown", "another path"),
    ("no router, host public", False, None, "11.0.0.2", True, (), "public", None),
    ("no router, echo only", False, None, "11.0.0.2", False, (), "unknown", "no router answered"),
    ("nothing at all", False, None, None, False, (), "unknown", None),
]


@pytest.mark.parametrize("name, answered, wan, public, host, rejected, expected, words", VERDICT,
                         ids=[v[0] for v in VERDICT])
def test_verdict(name: str, answered: bool, wan: str | None, public: str | None, host: bool,
                 rejected: tuple[str, ...], expected: str, words: str | None) -> None:
    v = verdict(answered, wan, public, host, rejected)
    assert v.verdict == expected
    assert (words is None and v.problem is None) or (words is not None and words in (v.problem or ""))


def test_judge_cgnat_router_with_public_echo() -> None:
    r = judge([router("100.64.1.2"), echo("a", "11.0.0.2")], router_answered=True)
    assert (r.public_ipv4, r.router_wan_ipv4, r.verdict) == ("11.0.0.2", "100.64.1.2", "cgnat")
    assert "carrier-grade NAT" in (r.problem or "")
    doc = r.to_json()
    assert {"public_ipv4", "router_wan_ipv4", "verdict", "sources"} <= set(doc)
    assert [s["source"] for s in doc["sources"]] == ["router", "a"]


def test_judge_disagreement_publishes_nothing() -> None:
    r = judge([router("11.0.0.2"), echo("a", "11.0.0.7")], router_answered=True)
    assert r.public_ipv4 is None and "disagree" in (r.problem or "")


def test_judge_tailscale_interface_is_not_cgnat_evidence() -> None:
    ts = SourceAnswer("interface:tailscale0", "interface", 4, address="100.101.102.103")
    r = judge([router("11.0.0.2"), ts], router_answered=True)
    assert r.verdict == "public" and r.public_ipv4 == "11.0.0.2"


def test_judge_ipv6_prefers_stable_local_address_over_echo() -> None:
    stable = SourceAnswer("host", "interface", 6, address="2001:470:1f0b::5")
    temp_echo = echo("a", "2001:470:1f0b:0:8d3c:1:2:3", family=6)
    r = judge([router("11.0.0.2"), stable, temp_echo], router_answered=True)
    assert r.public_ipv6 == "2001:470:1f0b::5"
    assert next(s for s in r.sources if s.source == "a").accepted is False


def test_judge_ipv6_from_echo_when_no_local_address() -> None:
    none_local = SourceAnswer("host", "interface", 6, error="no stable global IPv6 address")
    r = judge([router("11.0.0.2"), none_local, echo("a", "2001:470:1f0b::9", family=6)], router_answered=True)
    assert r.public_ipv6 == "2001:470:1f0b::9"
